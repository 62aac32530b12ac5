{{/* Names and labels. */}}

{{- define "authgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-authgate, or the release name when it already contains the chart name. */}}
{{- define "authgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "authgate.instanceLabels" -}}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The gateway pods; the component keeps the migrate Job's pods out of Services and the PDB. */}}
{{- define "authgate.selectorLabels" -}}
{{ include "authgate.instanceLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/* Metadata labels of every object (each adds its own app.kubernetes.io/component). */}}
{{- define "authgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "authgate.instanceLabels" . }}
app.kubernetes.io/version: {{ include "authgate.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "authgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authgate.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "authgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "authgate.imageTag" .) }}
{{- end }}

{{/* Ports, read from the listen addresses of the config so there is one source of truth. */}}

{{- define "authgate.httpPort" -}}
{{- $listen := dig "server" "listen" ":8080" .Values.config | toString }}
{{- regexFind "[0-9]+$" $listen | required (printf "config.server.listen %q has no port" $listen) }}
{{- end }}

{{/* The ops listener must be on the pod network: the probes and Prometheus reach the pod IP. */}}
{{- define "authgate.opsPort" -}}
{{- $listen := dig "admin" "listen" "" .Values.config | toString }}
{{- if not $listen }}
{{- fail "config.admin.listen is empty: the chart's probes need the ops listener, e.g. \"0.0.0.0:9091\"" }}
{{- end }}
{{- if regexMatch "^(127\\.|localhost:|\\[::1\\]:)" $listen }}
{{- fail (printf "config.admin.listen %q is loopback: the kubelet's probes reach the pod IP, use e.g. \"0.0.0.0:9091\"" $listen) }}
{{- end }}
{{- regexFind "[0-9]+$" $listen | required (printf "config.admin.listen %q has no port" $listen) }}
{{- end }}

{{/* server.shutdown_grace in whole seconds; accepts Go durations made of h, m and s parts. */}}
{{- define "authgate.shutdownGraceSeconds" -}}
{{- $d := dig "server" "shutdown_grace" "15s" .Values.config | toString }}
{{- if eq $d "0" }}0
{{- else if not (regexMatch "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$" $d) }}
{{- fail (printf "config.server.shutdown_grace %q: the chart reads whole h, m and s parts only (e.g. 15s, 1m30s)" $d) }}
{{- else }}
{{- $h := regexFind "[0-9]+h" $d | trimSuffix "h" | default "0" | atoi }}
{{- $m := regexFind "[0-9]+m" $d | trimSuffix "m" | default "0" | atoi }}
{{- $s := regexFind "[0-9]+s" $d | trimSuffix "s" | default "0" | atoi }}
{{- add (mul $h 3600) (mul $m 60) $s }}
{{- end }}
{{- end }}

{{/* Longer than the preStop sleep plus the drain, so the kubelet never kills a draining pod. */}}
{{- define "authgate.terminationGracePeriodSeconds" -}}
{{- $needed := add (include "authgate.shutdownGraceSeconds" . | atoi) (int .Values.preStopSleepSeconds) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds must exceed preStopSleepSeconds + config.server.shutdown_grace (%d s)" $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Secrets. */}}

{{- define "authgate.secretName" -}}
{{- .Values.secret.existingSecret | default (include "authgate.fullname" .) }}
{{- end }}

{{- define "authgate.secretMountPath" -}}/run/secrets/authgate{{- end }}

{{/* The data of the Secret the chart creates; fails when a required value is missing. */}}
{{- define "authgate.secretData" -}}
{{- $s := .Values.secret }}
{{- $sessionSecrets := $s.sessionSecrets }}
{{- if kindIs "string" $sessionSecrets }}
{{- $sessionSecrets = regexSplit "[,\\s]+" $sessionSecrets -1 }}
{{- end }}
{{- $sessionSecrets = compact $sessionSecrets }}
{{- if not $s.oidcClientSecret }}
{{- fail "secret.oidcClientSecret is required (or set secret.existingSecret)" }}
{{- end }}
{{- if not $sessionSecrets }}
{{- fail "secret.sessionSecrets is required: one or more `openssl rand -base64 32` (or set secret.existingSecret)" }}
{{- end }}
{{- if lt (len (default "" $s.adminToken)) 16 }}
{{- fail "secret.adminToken is required, 16+ characters: `openssl rand -hex 24` (or set secret.existingSecret)" }}
{{- end }}
{{- $sep := ternary "\n" "," (eq $s.mountAs "file") }}
{{ $s.keys.oidcClientSecret }}: {{ $s.oidcClientSecret | b64enc | quote }}
{{ $s.keys.sessionSecrets }}: {{ join $sep $sessionSecrets | b64enc | quote }}
{{ $s.keys.adminToken }}: {{ $s.adminToken | b64enc | quote }}
{{- with $s.databaseUrl }}
{{ $s.keys.databaseUrl }}: {{ . | b64enc | quote }}
{{- end }}
{{- with $s.redisUrl }}
{{ $s.keys.redisUrl }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/* The data of the ConfigMap. */}}
{{- define "authgate.configData" -}}
authgate.yaml: |
  # Rendered by the authgate Helm chart from .Values.config; secrets come from the Secret.
{{ toYaml .Values.config | indent 2 }}
{{- end }}

{{/*
The pod parts shared by the Deployment and the migrate Job.
Call with (dict "root" $ "configMap" NAME "secret" NAME).
*/}}

{{- define "authgate.env" -}}
{{- $root := .root }}
{{- $s := $root.Values.secret }}
{{- if eq $s.mountAs "env" }}
- name: AUTHGATE_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .secret | quote }}, key: {{ $s.keys.oidcClientSecret | quote }}}
- name: AUTHGATE_SESSION_SECRETS
  valueFrom:
    secretKeyRef: {name: {{ .secret | quote }}, key: {{ $s.keys.sessionSecrets | quote }}}
- name: AUTHGATE_ADMIN_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .secret | quote }}, key: {{ $s.keys.adminToken | quote }}}
{{- else if eq $s.mountAs "file" }}
{{- $dir := include "authgate.secretMountPath" $root }}
- name: AUTHGATE_OIDC_CLIENT_SECRET_FILE
  value: {{ printf "%s/%s" $dir $s.keys.oidcClientSecret }}
- name: AUTHGATE_SESSION_SECRETS_FILE
  value: {{ printf "%s/%s" $dir $s.keys.sessionSecrets }}
- name: AUTHGATE_ADMIN_TOKEN_FILE
  value: {{ printf "%s/%s" $dir $s.keys.adminToken }}
{{- else }}
{{- fail (printf "secret.mountAs must be env or file, not %q" $s.mountAs) }}
{{- end }}
{{- with $s.keys.databaseUrl }}
- name: AUTHGATE_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ $.secret | quote }}, key: {{ . | quote }}, optional: true}
{{- end }}
{{- with $s.keys.redisUrl }}
- name: AUTHGATE_SESSION_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ $.secret | quote }}, key: {{ . | quote }}, optional: true}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "authgate.volumeMounts" -}}
- name: config
  mountPath: /etc/authgate
  readOnly: true
{{- if eq .root.Values.secret.mountAs "file" }}
- name: secrets
  mountPath: {{ include "authgate.secretMountPath" .root }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- with .root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "authgate.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
{{- if eq .root.Values.secret.mountAs "file" }}
- name: secrets
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 16Mi
{{- with .root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
