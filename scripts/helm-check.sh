#!/usr/bin/env bash
# Validates the Helm chart in deploy/helm/authgate without a cluster:
#   - builds helm from the Go module proxy into a cache dir the first time (a few minutes cold),
#   - helm lint --strict with the default values and with every option on,
#   - helm template of those two (ci/*.yaml) and checks of the rendered objects (probes on the ops
#     port, secrets wiring, checksums, security context, hooks ...),
#   - runs `authgate check-config` on each rendered authgate.yaml with the environment and the
#     secret files a pod would get from the rendered Secret, so the chart's config is proven valid,
#   - checks that bad values are refused at render time.
# Exits non-zero when any check fails. Env: HELM (use that binary), HELM_CHECK_CACHE (cache dir),
# HELM_CHECK_CHART (another copy of the chart, e.g. to see a check fail).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
# What an official build of that release reports as the cluster version when there is none
# (its k8s.io/client-go is v0.37): `helm template` and lint's deprecation rules use it.
HELM_K8S_MINOR=37
CHART=${HELM_CHECK_CHART:-deploy/helm/authgate}

log() { printf '== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  log "installing $*"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

command -v jq >/dev/null || apt_install jq
command -v yq >/dev/null || apt_install yq
# Debian's yq (a jq wrapper), not the Go yq of the same name, whose flags differ.
if yq --version 2>&1 | grep -qi mikefarah; then
  echo "helm-check needs the jq-wrapper yq (Debian package yq), not mikefarah/yq" >&2; exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data

helm=${HELM:-}
if [ -z "$helm" ]; then
  cache=${HELM_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authgate/helm-$HELM_VERSION}
  helm=$cache/helm
  if [ ! -x "$helm" ]; then
    log "building helm $HELM_VERSION into $cache (go install; a few minutes the first time)"
    start=$SECONDS
    pkg=helm.sh/helm/v3
    (cd "$work" && GOBIN=$cache go install -ldflags "-s -w \
        -X $pkg/internal/version.version=$HELM_VERSION \
        -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR \
        -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR" \
        "$pkg/cmd/helm@$HELM_VERSION")
    log "helm built in $((SECONDS - start))s"
  fi
fi
"$helm" version --short >&2

log "building authgate (check-config)"
go build -o "$work/authgate" ./cmd/authgate

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; }

# render NAME [helm template args...]: the manifests as $work/NAME.yaml and a JSON array of
# objects as $work/NAME.json. A render that fails is a failed check.
render() {
  local name=$1; shift
  if "$helm" template ag "$CHART" --namespace authgate "$@" >"$work/$name.yaml" 2>"$work/$name.err"; then
    yq -s 'map(select(. != null))' "$work/$name.yaml" >"$work/$name.json"
    ok "$name: helm template"
  else
    bad "$name: helm template: $(cat "$work/$name.err")"
    echo '[]' >"$work/$name.json"
  fi
}

# expect NAME DESCRIPTION JQ: JQ, run on the objects of render NAME, must print true.
expect() {
  if jq -e "$3" "$work/$1.json" >/dev/null 2>"$work/jq.err"; then ok "$1: $2"; else bad "$1: $2 $(cat "$work/jq.err")"; fi
}

# refused DESCRIPTION PATTERN [helm template args...]: the render must fail naming PATTERN.
refused() {
  local desc=$1 pattern=$2; shift 2
  if "$helm" template ag "$CHART" "$@" >/dev/null 2>"$work/refused.err"; then
    bad "refused: $desc (rendered)"
  elif grep -q -- "$pattern" "$work/refused.err"; then
    ok "refused: $desc"
  else
    bad "refused: $desc: unexpected error: $(cat "$work/refused.err")"
  fi
}

# check_config NAME: lays out what a pod of render NAME would see (authgate.yaml from the
# ConfigMap, the Secret's keys as files behind ..data symlinks like the kubelet makes them, the
# env from values and secretKeyRefs) and runs `authgate check-config` on it. Prints the output.
check_config() {
  local name=$1 root=$work/$1-pod
  mkdir -p "$root/etc" "$root/secrets/..data"
  jq -r '.[] | select(.kind == "ConfigMap" and (.metadata.annotations["helm.sh/hook"] == null))
         | .data["authgate.yaml"]' "$work/$name.json" >"$root/etc/authgate.yaml"
  local secret
  secret=$(jq -c '[.[] | select(.kind == "Secret" and .metadata.annotations["helm.sh/hook"] == null)][0].data // {}' "$work/$name.json")
  local key
  for key in $(jq -r 'keys[]' <<<"$secret"); do
    jq -r --arg k "$key" '.[$k] | @base64d' <<<"$secret" >"$root/secrets/..data/$key"
    ln -s "..data/$key" "$root/secrets/$key"
  done
  local -a envs=()
  mapfile -d '' envs < <(jq -j --argjson secret "$secret" --arg dir "$root/secrets" '
      .[] | select(.kind == "Deployment") | .spec.template.spec.containers[0].env[]
      | if .valueFrom.secretKeyRef then
          (.valueFrom.secretKeyRef.key as $k
           | if $secret[$k] then "\(.name)=\($secret[$k] | @base64d)\u0000" else empty end)
        else "\(.name)=\(.value | sub("^/run/secrets/authgate"; $dir))\u0000" end' "$work/$name.json")
  env -i PATH="$PATH" "${envs[@]}" "$work/authgate" check-config --config "$root/etc/authgate.yaml" 2>&1
}

# ---------------------------------------------------------------------------------------------
log "helm lint"
for values in "" ci/default-values.yaml ci/full-values.yaml; do
  if "$helm" lint --strict "$CHART" ${values:+-f "$CHART/$values"} >"$work/lint.out" 2>&1; then
    ok "lint --strict ${values:-(chart defaults)}"
  else
    bad "lint --strict ${values:-(chart defaults)}: $(cat "$work/lint.out")"
  fi
done

# ---------------------------------------------------------------------------------------------
log "defaults (+ the required secrets), on the oldest supported Kubernetes"
render default -f "$CHART/ci/default-values.yaml" --kube-version 1.30.0
D='.[] | select(.kind == "Deployment")'
C="$D | .spec.template.spec.containers[0]"
expect default "objects: ConfigMap, Deployment, PDB, Secret, 2 Services, ServiceAccount" \
  '[.[].kind] | sort == ["ConfigMap","Deployment","PodDisruptionBudget","Secret","Service","Service","ServiceAccount"]'
expect default "2 replicas" "$D | .spec.replicas == 2"
expect default "args serve --config /etc/authgate/authgate.yaml" "$C | .args == [\"serve\",\"--config\",\"/etc/authgate/authgate.yaml\"]"
expect default "ports http 8080, ops 9091" "$C | [.ports[] | {(.name): .containerPort}] | add == {http: 8080, ops: 9091}"
expect default "startup and liveness probes GET /healthz on ops" \
  "$C | [.startupProbe.httpGet, .livenessProbe.httpGet] | all(. == {path: \"/healthz\", port: \"ops\"})"
expect default "readiness probe GET /readyz on ops" "$C | .readinessProbe.httpGet == {path: \"/readyz?check=redis\", port: \"ops\"}"
expect default "checksum annotations on config and secret" \
  "$D | .spec.template.metadata.annotations | (.\"checksum/config\" | test(\"^[0-9a-f]{64}\$\")) and (.\"checksum/secret\" | test(\"^[0-9a-f]{64}\$\"))"
expect default "runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, drop ALL" \
  "($D | .spec.template.spec.securityContext.runAsNonRoot == true) and ($C | .securityContext |
    .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == [\"ALL\"])"
expect default "preStop sleep 5s, terminationGracePeriodSeconds 30 > 5 + shutdown_grace 15" \
  "($C | .lifecycle.preStop.sleep.seconds == 5) and ($D | .spec.template.spec.terminationGracePeriodSeconds == 30)"
expect default "Service: port 80 -> http only" \
  '.[] | select(.kind == "Service" and .metadata.name == "ag-authgate") | .spec.ports == [{name: "http", port: 80, targetPort: "http", protocol: "TCP"}]'
expect default "ops Service: ClusterIP, 9091 -> ops" \
  '.[] | select(.kind == "Service" and .metadata.name == "ag-authgate-ops") | .spec.type == "ClusterIP" and .spec.ports == [{name: "ops", port: 9091, targetPort: "ops", protocol: "TCP"}]'
expect default "secrets as env from keys the Secret holds" \
  "([.[] | select(.kind == \"Secret\")][0].data | keys) as \$keys | [$C | .env[] | select(.valueFrom.secretKeyRef.optional != true)]
   | map({(.name): .valueFrom.secretKeyRef.key}) | add == {AUTHGATE_OIDC_CLIENT_SECRET: \"oidc-client-secret\",
     AUTHGATE_SESSION_SECRETS: \"session-secrets\", AUTHGATE_ADMIN_TOKEN: \"admin-token\"} and (map(.[]) - \$keys == [])"
expect default "config mounted from the ConfigMap at /etc/authgate" \
  "($D | .spec.template.spec.volumes[] | select(.name == \"config\") | .configMap.name == \"ag-authgate\") and
   ($C | .volumeMounts[] | select(.name == \"config\") | .mountPath == \"/etc/authgate\")"
expect default "authgate.yaml: server.listen :8080, admin.listen 0.0.0.0:9091" \
  '.[] | select(.kind == "ConfigMap") | .data["authgate.yaml"] | test("\n  listen: :8080\n") and test("\n  listen: 0.0.0.0:9091\n")'
if out=$(check_config default); then ok "default: check-config accepts the rendered config ($out)"; else bad "default: check-config: $out"; fi

render default-debug -f "$CHART/ci/default-values.yaml" --set config.server.log_level=debug
render default-rotated -f "$CHART/ci/default-values.yaml" --set secret.adminToken=another-dummy-token-0123456789
sum() { jq -r ".[] | select(.kind == \"Deployment\") | .spec.template.metadata.annotations[\"checksum/$2\"]" "$work/$1.json"; }
if [ "$(sum default config)" != "$(sum default-debug config)" ] && [ "$(sum default secret)" = "$(sum default-debug secret)" ]; then
  ok "a config change changes checksum/config only"; else bad "a config change changes checksum/config only"; fi
if [ "$(sum default secret)" != "$(sum default-rotated secret)" ] && [ "$(sum default config)" = "$(sum default-rotated config)" ]; then
  ok "a secret change changes checksum/secret only"; else bad "a secret change changes checksum/secret only"; fi

# ---------------------------------------------------------------------------------------------
log "every option on (ci/full-values.yaml)"
render full -f "$CHART/ci/full-values.yaml"
expect full "HPA, Ingress, ServiceMonitor, NetworkPolicy and the migrate Job are rendered" \
  '[.[].kind] | contains(["HorizontalPodAutoscaler","Ingress","ServiceMonitor","NetworkPolicy","Job"])'
expect full "no replicas with autoscaling; HPA targets the Deployment, 2..10" \
  "($D | .spec | has(\"replicas\") | not) and (.[] | select(.kind == \"HorizontalPodAutoscaler\") | .spec |
    .scaleTargetRef.name == \"ag-authgate\" and .minReplicas == 2 and .maxReplicas == 10 and (.metrics | length) == 2)"
expect full "Ingress to the main Service, port http, with TLS" \
  '.[] | select(.kind == "Ingress") | .spec.rules[0].http.paths[0].backend.service == {name: "ag-authgate", port: {name: "http"}}
   and .spec.tls[0].hosts == ["auth.example.org"] and .spec.ingressClassName == "nginx"'
expect full "ServiceMonitor scrapes /metrics on port ops of the ops Service only" \
  '(.[] | select(.kind == "ServiceMonitor") | .spec) as $sm | ($sm.endpoints == [{port: "ops", path: "/metrics", interval: "30s", scrapeTimeout: "10s"}])
   and ([.[] | select(.kind == "Service") | select(.metadata.labels as $l | $sm.selector.matchLabels | to_entries | all($l[.key] == .value))
        | .metadata.name] == ["ag-authgate-ops"])'
expect full "NetworkPolicy: http open, ops only from the monitoring namespace" \
  '.[] | select(.kind == "NetworkPolicy") | .spec.ingress | length == 2 and (.[0] | has("from") | not)
   and .[1].ports == [{port: "ops", protocol: "TCP"}] and (.[1].from | length) == 1'
expect full "secrets as files: *_FILE env and the Secret mounted read-only at /run/secrets/authgate" \
  "($C | ([.env[].name] | contains([\"AUTHGATE_OIDC_CLIENT_SECRET_FILE\",\"AUTHGATE_SESSION_SECRETS_FILE\",\"AUTHGATE_ADMIN_TOKEN_FILE\"])
     and (index(\"AUTHGATE_ADMIN_TOKEN\") | not)) and (.volumeMounts[] | select(.name == \"secrets\") | .mountPath == \"/run/secrets/authgate\" and .readOnly))
   and ($D | .spec.template.spec.volumes[] | select(.name == \"secrets\") | .secret.secretName == \"ag-authgate\")"
expect full "terminationGracePeriodSeconds 105 = 5 + shutdown_grace 1m30s + 10" "$D | .spec.template.spec.terminationGracePeriodSeconds == 105"
expect full "migrate Job: pre-install/pre-upgrade hook running authgate migrate" \
  '.[] | select(.kind == "Job") | (.metadata.annotations["helm.sh/hook"] == "pre-install,pre-upgrade")
   and .spec.template.spec.containers[0].args == ["migrate","--config","/etc/authgate/authgate.yaml"]'
expect full "migrate Job reads hook copies of the ConfigMap and Secret, created before it" \
  '([.[] | select(.kind != "Job" and .metadata.name == "ag-authgate-migrate")
     | select(.metadata.annotations["helm.sh/hook-weight"] == "-10") | .kind] | sort == ["ConfigMap","Secret"])
   and (.[] | select(.kind == "Job") | .spec.template.spec.volumes | map(.configMap.name // .secret.secretName // empty)
     == ["ag-authgate-migrate","ag-authgate-migrate"])'
expect full "Services, PDB and NetworkPolicy select the gateway pods, never the migrate Job's" \
  '[.[] | select(.kind == "Deployment" or .kind == "Job") | {kind, labels: .spec.template.metadata.labels}] as $pods
   | [.[] | select(.kind != "ServiceMonitor") | (.spec.selector.matchLabels // .spec.podSelector.matchLabels // (select(.kind == "Service") | .spec.selector)) // empty
      | . as $sel | [$pods[] | select(.labels as $l | $sel | to_entries | all($l[.key] == .value)) | .kind]]
   | length == 5 and all(. == ["Deployment"])'
if out=$(check_config full); then ok "full: check-config accepts the rendered config with secret files ($out)"; else bad "full: check-config: $out"; fi

# ---------------------------------------------------------------------------------------------
log "other values"
render existing --set secret.existingSecret=my-authgate
expect existing "existingSecret: no Secret, no checksum/secret, env from my-authgate" \
  "([.[].kind] | index(\"Secret\") | not) and ($D | .spec.template.metadata.annotations | has(\"checksum/secret\") | not)
   and ([$C | .env[].valueFrom.secretKeyRef.name] | unique == [\"my-authgate\"])"
render single -f "$CHART/ci/default-values.yaml" --set replicaCount=1
expect single "one replica: no PodDisruptionBudget" '[.[].kind] | index("PodDisruptionBudget") | not'

render broken -f "$CHART/ci/default-values.yaml" --set config.session.same_site=none --set config.session.secure=false
if out=$(check_config broken); then bad "check-config refuses an invalid rendered config (it passed)"
elif grep -q '^session' <<<"$out"; then ok "check-config refuses an invalid rendered config"
else bad "check-config refuses an invalid rendered config: unexpected output: $out"; fi

refused "no secrets and no existingSecret" "secret.oidcClientSecret is required"
refused "a short admin token" "secret.adminToken is required" -f "$CHART/ci/default-values.yaml" --set secret.adminToken=short
refused "admin.listen on loopback" "is loopback" -f "$CHART/ci/default-values.yaml" --set config.admin.listen=127.0.0.1:9091
refused "no ops listener" "config.admin.listen is empty" -f "$CHART/ci/default-values.yaml" --set config.admin.listen=
refused "terminationGracePeriodSeconds below the drain" "terminationGracePeriodSeconds must exceed" \
  -f "$CHART/ci/default-values.yaml" --set terminationGracePeriodSeconds=20
refused "an unknown secret.mountAs" "secret.mountAs must be env or file" -f "$CHART/ci/default-values.yaml" --set secret.mountAs=volume
refused "Kubernetes older than 1.30" "incompatible with Kubernetes" -f "$CHART/ci/default-values.yaml" --kube-version 1.29.9

printf 'helm-check: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
