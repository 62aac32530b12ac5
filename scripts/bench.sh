#!/usr/bin/env bash
# The load harness of docs/benchmarks.md, in one command:
#   scripts/bench.sh                         # 3 rounds × 10s, 100,000 sessions, 16 login clients
#   scripts/bench.sh -rounds 5 -duration 20s # extra flags go to the harness (see: -h)
#   BENCH_REF=HEAD scripts/bench.sh          # measure a commit (with this tree's test/bench), not the work tree
# Needs Redis on 127.0.0.1:6379 (its DB 15 is FLUSHED) and Postgres on 127.0.0.1:5432 (a database
# authgate_bench_<random> is created and dropped), as scripts/test.sh starts them. Installs wrk
# with apt-get when it is missing. Builds the static authgate binary and the harness, then runs
# the harness pinned to CPU 1; it pins the proxies under test to CPU 0 (on a 1-CPU machine
# nothing is pinned). Results: the markdown table on stdout, logs and results.md in $BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Go toolchain go.mod names (its "toolchain" line); see scripts/test.sh.
export GOTOOLCHAIN="$(awk '$1 == "toolchain" { print $2 }' go.mod)"

log() { printf '== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is missing" >&2; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "redis is not reachable on 127.0.0.1:6379 (scripts/test.sh starts it)" >&2; exit 1; }
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "postgres is not reachable on 127.0.0.1:5432 (scripts/test.sh starts it)" >&2; exit 1; }

out=${BENCH_OUT:-$(mktemp -d /tmp/authgate-bench.XXXXXX)}
mkdir -p "$out"
src=.
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "${BENCH_REF:-}" ]; then
  src=$(mktemp -d /tmp/authgate-bench-src.XXXXXX)
  trap 'rm -rf "$src"' EXIT
  git archive "$BENCH_REF" | tar -x -C "$src"
  cp -r test/bench/. "$src/test/bench/"
  rev="$(git rev-parse --short "$BENCH_REF") (git archive) + work-tree test/bench"
else
  dirty=$(git status --porcelain 2>/dev/null | grep -c . || true)
  [ "${dirty:-0}" -gt 0 ] && rev="$rev + $dirty uncommitted files"
fi
log "building authgate (as the Dockerfile does) and the harness from $src into $out"
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out/authgate" ./cmd/authgate && go build -o "$out/harness" ./test/bench/harness)

pin=(-proxy-cpu 0 -load-cpu 1)
runner=(taskset -c 1)
if [ "$(nproc)" -lt 2 ]; then
  log "only $(nproc) CPU: running unpinned (figures are then only comparable to each other)"
  pin=(-proxy-cpu= -load-cpu=)
  runner=()
fi
log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the figures)"
"${runner[@]}" "$out/harness" -authgate "$out/authgate" -out "$out" -revision "$rev" "${pin[@]}" "$@"
