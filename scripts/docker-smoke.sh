#!/usr/bin/env bash
# The Docker image, built and run for real (`.ci/run` calls this after `npm test`).
#
# No container registry is reachable from CI, so `node:20-slim` is stood in for by a local image
# (docs/operations.md, "The Docker image in CI"): a `debootstrap --variant=minbase` bookworm with this
# machine's Node 20 and npm, a `node` user (uid 1000), and an offline npm cache of the lockfile. The
# repository's Dockerfile is then built unchanged on top of it and run with the default rule set on the
# host network; the script fails unless the container runs as uid 1000, a message sent with swaks lands
# in alice's Maildir on the data volume, SIGHUP reloads the rule set, the HEALTHCHECK turns healthy, and
# `docker stop` ends it with exit code 0 after logging the drain and the exit.
#
# Needs root, docker.io and debootstrap (as `.ci/run` installs), swaks, and ports 2525-2527 and 9325
# free on the host. A private dockerd (no iptables, no bridge: host network) runs for the duration only.
# The debootstrap root is cached in $PORTCULLIS_CI_CACHE (default /var/cache/portcullis-ci).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${PORTCULLIS_CI_CACHE:-/var/cache/portcullis-ci}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d /tmp/portcullis-docker.XXXXXX)"
export DOCKER_HOST="unix://$work/docker.sock"
# The Dockerfile needs nothing BuildKit-only; the classic builder is what Debian's docker.io ships ready.
export DOCKER_BUILDKIT=0
image=portcullis-smoke
container=portcullis-smoke
started=$(date +%s)

say() { echo "docker-smoke: $*"; }
fail() {
  echo "docker-smoke: FAILED: $*" >&2
  if docker inspect "$container" >/dev/null 2>&1; then docker logs "$container" >&2 2>&1; fi
  exit 1
}
dockerd_pid=""
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  # dockerd leaves its network namespace mounted.
  umount "$work/exec/netns/default" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root: it starts dockerd and sets up the base image with chroot"
for port in 2525 2526 2527 9325; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port is taken on the host; the container uses the host network"; fi
done

# --- the private docker daemon ---
# overlay2 where the filesystem allows it (an image build copies nothing); vfs where it does not, as
# on a CI machine that is itself an overlayfs container: vfs copies the whole root for every build
# step, about four times slower (9.7 min against 2.3 min for this build on a busy 2-core machine).
start_dockerd() {
  rm -rf "$work/data-root" "$work/exec"
  dockerd --storage-driver "$1" --iptables=false --bridge=none \
    --data-root "$work/data-root" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
    -H "$DOCKER_HOST" >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 150); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=""
  umount "$work/exec/netns/default" 2>/dev/null || true
  return 1
}
if start_dockerd overlay2; then driver=overlay2
elif start_dockerd vfs; then driver=vfs
else
  cat "$work/dockerd.log" >&2
  fail "dockerd did not start with overlay2 nor vfs storage"
fi
say "dockerd runs with $driver storage"

# --- the stand-in for node:20-slim ---
base="$cache/bookworm-minbase.tar"
if [ ! -s "$base" ]; then
  say "debootstrap --variant=minbase bookworm from $mirror (cached in $base)"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$work/debootstrap" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  # What the slim image leaves out too: package lists, docs, man pages, locales.
  rm -rf "$work/debootstrap"/var/lib/apt/lists/* "$work/debootstrap"/var/cache/apt/*.bin \
    "$work/debootstrap"/usr/share/{doc,man,info,locale}/*
  tar -C "$work/debootstrap" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$work/debootstrap"
fi
rootfs="$work/rootfs"
mkdir -p "$rootfs"
tar -C "$rootfs" -xf "$base"
# node:20-slim keeps node in /usr/local/bin and npm in /usr/local/lib/node_modules/npm.
node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
"$node_bin" -e 'process.exit(process.versions.node.split(".")[0] === "20" ? 0 : 1)' || fail "the host's node is not Node 20: $("$node_bin" --version)"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules"
cp "$node_bin" "$rootfs/usr/local/bin/node"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
# Every package of the lockfile in an npm cache inside the image; npm_config_offline makes the
# Dockerfile's `npm ci` take them from there.
mkdir -p "$work/npm-ci"
cp "$root/package.json" "$root/package-lock.json" "$work/npm-ci/"
(cd "$work/npm-ci" && npm ci --cache "$rootfs/usr/local/share/npm-cache" --no-audit --no-fund --ignore-scripts >"$work/npm-ci.log" 2>&1) \
  || { tail -20 "$work/npm-ci.log" >&2; fail "npm ci --cache on the host"; }
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV npm_config_cache=/usr/local/share/npm-cache' \
  --change 'ENV npm_config_offline=true' \
  --change 'CMD ["node"]' \
  - node:20-slim >/dev/null
rm -rf "$rootfs" "$work/npm-ci"
say "stand-in node:20-slim imported ($(docker run --rm --network none node:20-slim node --version), npm $(docker run --rm --network none node:20-slim npm --version)) after $(($(date +%s) - started)) s"

# --- the real Dockerfile, unchanged ---
docker build --network host -q -t "$image" "$root" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "docker build"; }
say "image built after $(($(date +%s) - started)) s"

docker volume create portcullis-smoke-data >/dev/null
docker run -d --name "$container" --network host -v portcullis-smoke-data:/app/data "$image" >/dev/null
for _ in $(seq 1 150); do
  (exec 3<>/dev/tcp/127.0.0.1/2525) 2>/dev/null && break
  [ "$(docker inspect -f '{{.State.Running}}' "$container")" = true ] || fail "the container exited before listening"
  sleep 0.2
done

# The process itself, seen from the host: the Dockerfile's USER node.
pid="$(docker inspect -f '{{.State.Pid}}' "$container")"
uid="$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")"
[ "$uid" = 1000 ] || fail "serve runs as uid $uid, not 1000 (node)"
say "serve runs as uid $uid"

swaks --server 127.0.0.1:2525 --to alice@example.test --from smoke@example.org \
  --header "Subject: docker smoke" --body "delivered from the docker smoke test" >"$work/swaks.log" 2>&1 \
  || { cat "$work/swaks.log" >&2; fail "swaks"; }
grep -q "<- *250 2.6.0" "$work/swaks.log" || { cat "$work/swaks.log" >&2; fail "the edge did not accept the message"; }
maildir="$(docker volume inspect -f '{{.Mountpoint}}' portcullis-smoke-data)/mailboxes/alice@example.test/new"
for _ in $(seq 1 100); do
  ls "$maildir"/* >/dev/null 2>&1 && break
  sleep 0.1
done
grep -l "delivered from the docker smoke test" "$maildir"/* >/dev/null 2>&1 || fail "nothing in alice's Maildir on the data volume"
owner="$(stat -c %u "$(ls "$maildir"/* | head -1)")"
[ "$owner" = 1000 ] || fail "the delivered file belongs to uid $owner, not 1000"
say "swaks message delivered into alice's Maildir on the volume"

# (`docker logs | grep -q` would fail under pipefail when grep stops reading early: logs are read whole.)
reloaded() { grep -q '"msg":"rule set reloaded"' <<<"$(docker logs "$container" 2>&1)"; }
docker kill -s HUP "$container" >/dev/null
for _ in $(seq 1 50); do
  reloaded && break
  sleep 0.2
done
reloaded || fail "docker kill -s HUP did not reload the rule set"
say "SIGHUP reloaded the rule set"

# The image's own HEALTHCHECK timing: the first probe runs 30 s after the start.
for _ in $(seq 1 90); do
  health="$(docker inspect -f '{{.State.Health.Status}}' "$container")"
  [ "$health" = healthy ] && break
  [ "$health" = unhealthy ] && fail "the health check says unhealthy"
  sleep 1
done
[ "$health" = healthy ] || fail "the health check is still '$health' after 90 s"
say "health check: healthy"

docker stop -t 35 "$container" >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$container")"
[ "$code" = 0 ] || fail "docker stop: the container exited with $code"
logs="$(docker logs "$container" 2>&1)"
grep -q '"event":"drain"' <<<"$logs" || fail "no drain line in docker logs"
grep -q '"event":"exit","signal":"SIGTERM","code":0' <<<"$logs" || fail "no exit line in docker logs"
say "docker stop: exit code 0, drain and exit logged"
say "passed in $(($(date +%s) - started)) s"
