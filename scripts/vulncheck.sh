#!/usr/bin/env bash
# govulncheck over ./... against the Go vulnerability database, offline:
#   - the database is built from the golang.org/x/vulndb module (its data/osv/*.json, fetched
#     through the Go module proxy) with vulndb's own cmd/indexdb, which writes the v1 layout that
#     `govulncheck -db file://...` reads (index/db.json, index/modules.json, index/vulns.json,
#     ID/<id>.json). Built once per vulndb version into the cache dir (about a minute cold).
#   - govulncheck itself is built once per version into the cache dir.
#   - fails on every finding whose vulnerable symbol the code calls ("affects the code"), except
#     the ones listed in ALLOW below; imported-but-not-called findings are only counted.
# Env: VULNCHECK_DB (a database URL instead, e.g. https://vuln.go.dev where it is reachable),
# VULNCHECK_CACHE (cache dir), VULNCHECK_JSON (also keep govulncheck's JSON output there).
# See docs/security.md "Known vulnerabilities".
set -euo pipefail
cd "$(dirname "$0")/.."
# The Go toolchain go.mod names (its "toolchain" line); the go command fetches it once through
# the module proxy. Exported because a machine whose GOTOOLCHAIN is "local" ignores that line.
export GOTOOLCHAIN="$(awk '$1 == "toolchain" { print $2 }' go.mod)"

# Newest vulndb pseudo-version the module proxy serves here; its commit time is the DB's date.
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
GOVULNCHECK_VERSION=v1.9.0

# Called findings accepted for now: ID, then why. Only Go standard-library findings belong here,
# fixed by a newer Go toolchain than the one the project builds with; remove each line once the
# toolchain has the fix (the script says which lines no longer match anything).
ALLOW='
'

log() { printf '== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v jq >/dev/null; then
  log "installing jq"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq jq >/dev/null
fi

cache=${VULNCHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authgate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Built with the toolchain it analyses with (its type checker must read that standard library).
gvc=$cache/govulncheck-$GOVULNCHECK_VERSION-$(go env GOVERSION)/govulncheck
if [ ! -x "$gvc" ]; then
  log "building govulncheck $GOVULNCHECK_VERSION into ${gvc%/*}"
  (cd "$work" && GOBIN=${gvc%/*} go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION")
fi

db=${VULNCHECK_DB:-}
if [ -z "$db" ]; then
  dir=$cache/vulndb-$VULNDB_VERSION
  if [ ! -s "$dir/index/db.json" ]; then
    log "building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION into $dir"
    start=$SECONDS
    info=$(cd "$work" && go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION")
    src=$(jq -r .Dir <<<"$info")
    date=$(jq -r .Time "$(jq -r .Info <<<"$info")")
    [[ $date =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || { echo "vulncheck: no commit time for vulndb@$VULNDB_VERSION" >&2; exit 1; }
    rm -rf "$dir.tmp"
    (cd "$work" && go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$dir.tmp")
    # The module's OSV files carry no timestamps (vulndb's deploy sets them from git history), so
    # index/db.json says year 1; record the vulndb commit time as the database's date instead.
    printf '{"modified":"%s"}' "$date" >"$dir.tmp/index/db.json"
    gzip -9nc "$dir.tmp/index/db.json" >"$dir.tmp/index/db.json.gz"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    log "database built in $((SECONDS - start))s"
  fi
  db=file://$dir
  log "database of $(jq -r .modified "$dir/index/db.json") (golang.org/x/vulndb@$VULNDB_VERSION)"
fi

log "govulncheck $GOVULNCHECK_VERSION -db $db ./... ($(go env GOVERSION))"
out=${VULNCHECK_JSON:-$work/govulncheck.json}
"$gvc" -db "$db" -format json ./... >"$out"

# One line per finding at its deepest level: symbol (called), package (imported) or module.
jq -r --arg main "$(go list -m)" 'select(.finding) | .finding
       | [.osv, (if .trace[0].function then "called" elif .trace[0].package then "imported" else "required" end),
          "\(.trace[0].module)@\(.trace[0].version // "")", (.fixed_version // "none"),
          ((.trace | map(select(.module == $main and .position)) | first | .position | "\(.filename):\(.line)") // "")] | @tsv' "$out" \
  | sort -u | sort -k1,1 -k2,2 | awk -F'\t' '
      # keep the deepest level seen per ID
      { lvl = ($2 == "called") ? 3 : ($2 == "imported") ? 2 : 1
        if (lvl > best[$1]) { best[$1] = lvl; line[$1] = $0 } }
      END { for (id in line) print line[id] }' | sort >"$work/findings.tsv"

allowed() { grep -qE "^$1( |$)" <<<"$ALLOW"; }
called=0; accepted=0; imported=0; required=0
while IFS=$'\t' read -r id level mod fixed pos; do
  case $level in
    called)
      called=$((called + 1))
      if allowed "$id"; then accepted=$((accepted + 1)); printf 'allowed %s %s (fixed in %s) called at %s\n' "$id" "$mod" "$fixed" "$pos"
      else printf 'FAIL    %s %s (fixed in %s) called at %s\n' "$id" "$mod" "$fixed" "$pos"; fi ;;
    imported) imported=$((imported + 1)) ;;
    *) required=$((required + 1)) ;;
  esac
done <"$work/findings.tsv"
while read -r id _; do
  [ -n "$id" ] || continue
  awk -F'\t' -v id="$id" '$1 == id && $2 == "called" { f = 1 } END { exit !f }' "$work/findings.tsv" ||
    printf 'note    %s is in ALLOW but no longer found: remove it from scripts/vulncheck.sh\n' "$id"
done <<<"$ALLOW"

printf 'vulncheck: %d called (%d allowed, %d not), %d in imported packages only, %d in required modules only\n' \
  "$called" "$accepted" "$((called - accepted))" "$imported" "$required"
[ "$called" -eq "$accepted" ]
