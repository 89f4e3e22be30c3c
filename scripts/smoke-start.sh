#!/usr/bin/env bash
# Smoke test of what `npm start` and the Dockerfile run: the compiled build, started with the default
# rule set in a scratch folder; one message sent with swaks must land in alice's Maildir, and SIGTERM
# must end the process with exit code 0.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT
mkdir -p "$scratch/rules"
cp "$root/rules/portcullis.yaml" "$scratch/rules/"
cd "$scratch"
node "$root/dist/src/cli/main.js" serve --config rules/portcullis.yaml > serve.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break
  kill -0 "$pid" || { cat serve.log; exit 1; }
  sleep 0.1
done
swaks --server 127.0.0.1:2525 --to alice@example.test --from smoke@example.org --body "smoke test" > swaks.log
grep -q "250 2.6.0" swaks.log || { cat swaks.log serve.log; exit 1; }
for _ in $(seq 1 100); do
  ls data/mailboxes/alice@example.test/new/* >/dev/null 2>&1 && break
  sleep 0.1
done
grep -l "smoke test" data/mailboxes/alice@example.test/new/* >/dev/null || { echo "not delivered"; cat serve.log; exit 1; }
kill -TERM "$pid"
wait "$pid"
echo "smoke: compiled serve with the default rules delivered to alice's Maildir and stopped cleanly on SIGTERM"
