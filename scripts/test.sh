#!/usr/bin/env bash
# The test command of the README: makes sure Redis, Postgres and Chromium are there (starting
# or installing them when they are not), then runs the whole suite with the race detector.
#   scripts/test.sh            # all tests
#   scripts/test.sh ./gateway  # some packages (extra args go to `go test`)
# With CI set, a missing service is an error, never a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Go toolchain go.mod names (its "toolchain" line); the go command fetches it once through
# the module proxy. Exported because a machine whose GOTOOLCHAIN is "local" ignores that line.
export GOTOOLCHAIN="$(awk '$1 == "toolchain" { print $2 }' go.mod)"

log() { printf '== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  log "installing $*"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Redis (sessions)
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

# Postgres (users)
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  log "starting postgres"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "postgres is not reachable on 127.0.0.1:5432" >&2; exit 1; }

# Chromium (browser tests) and nginx (forward-auth tests)
command -v chromium >/dev/null || apt_install chromium
command -v chromium >/dev/null || { echo "chromium is not installed" >&2; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is not installed" >&2; exit 1; }

go_args=("$@")
[ ${#go_args[@]} -gt 0 ] || go_args=(./...)
log "go test -race ${go_args[*]}"
# -p 1: one package at a time; the fault and browser suites measure timings, and on a 2-core
# machine parallel packages would make them compete for the CPU.
exec go test -race -count=1 -p 1 -timeout 20m "${go_args[@]}"
