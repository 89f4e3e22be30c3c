#!/bin/sh
# Runs every test file under test/ with Node's own runner; tsx compiles TypeScript on the fly.
set -e
files=$(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=1 --test-timeout=120000 $files
