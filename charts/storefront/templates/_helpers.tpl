{{/* Names, labels and the guards that refuse unsafe values. */}}

{{- define "storefront.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "storefront.fullname" -}}
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

{{- define "storefront.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: immutable, so only name, instance and component. */}}
{{- define "storefront.selectorLabels" -}}
app.kubernetes.io/name: {{ include "storefront.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "storefront.labels" -}}
helm.sh/chart: {{ include "storefront.chart" .ctx }}
{{ include "storefront.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: storefront
{{- end }}

{{- define "storefront.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}{{ fail "image.tag must be pinned, not 'latest'" }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "storefront.secretName" -}}
{{- default (include "storefront.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "storefront.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "storefront.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "storefront.redis.fullname" -}}
{{- printf "%s-redis" (include "storefront.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Where the password of the database lives: [secret name, key]. */}}
{{- define "storefront.database.passwordSecret" -}}
{{- if .Values.postgresql.enabled -}}
{{ default (include "storefront.postgresql.fullname" .) .Values.postgresql.auth.existingSecret }}/password
{{- else if .Values.externalDatabase.existingSecret -}}
{{ .Values.externalDatabase.existingSecret }}/{{ .Values.externalDatabase.passwordKey }}
{{- else -}}
{{ include "storefront.fullname" . }}-external-database/password
{{- end }}
{{- end }}

{{/* DATABASE_URL without the password (DATABASE_PASSWORD comes from a Secret). */}}
{{- define "storefront.database.url" -}}
{{- if .Values.postgresql.enabled -}}
postgresql://{{ .Values.postgresql.auth.username }}@{{ include "storefront.postgresql.fullname" . }}:5432/{{ .Values.postgresql.auth.database }}
{{- else -}}
{{- $db := .Values.externalDatabase -}}
{{- if not $db.host }}{{ fail "postgresql.enabled=false needs externalDatabase.host" }}{{ end -}}
postgresql://{{ $db.username }}@{{ $db.host }}:{{ $db.port }}/{{ $db.database }}{{ if $db.sslMode }}?ssl={{ $db.sslMode }}{{ end }}
{{- end }}
{{- end }}

{{- define "storefront.redis.enabled" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.host }}true{{ end }}
{{- end }}

{{/* [secret name, key] of the Redis password, empty when there is none. */}}
{{- define "storefront.redis.passwordSecret" -}}
{{- if and .Values.redis.enabled .Values.redis.auth.enabled -}}
{{ default (include "storefront.redis.fullname" .) .Values.redis.auth.existingSecret }}/password
{{- else if and (not .Values.redis.enabled) .Values.externalRedis.existingSecret -}}
{{ .Values.externalRedis.existingSecret }}/{{ .Values.externalRedis.passwordKey }}
{{- end }}
{{- end }}

{{- define "storefront.redis.url" -}}
{{- if .Values.redis.enabled -}}
redis://{{ include "storefront.redis.fullname" . }}:6379/0
{{- else if .Values.externalRedis.host -}}
{{ ternary "rediss" "redis" .Values.externalRedis.tls }}://{{ .Values.externalRedis.host }}:{{ .Values.externalRedis.port }}/{{ .Values.externalRedis.database }}
{{- end }}
{{- end }}

{{/* Keep a generated secret value across upgrades: reuse what the cluster has. */}}
{{- define "storefront.keptSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $existing (index ($existing.data | default dict) .key) -}}
{{ index $existing.data .key | b64dec }}
{{- else -}}
{{ randAlphaNum 48 }}
{{- end }}
{{- end }}

{{- define "storefront.terminationGracePeriodSeconds" -}}
{{- $s := .Values.server -}}
{{- $needed := add $s.preStopSleepSeconds $s.shutdownDrainSeconds $s.gracefulShutdownSeconds 5 -}}
{{- if eq (int $s.terminationGracePeriodSeconds) 0 -}}
{{ $needed }}
{{- else if lt (int $s.terminationGracePeriodSeconds) (int $needed) -}}
{{ fail (printf "server.terminationGracePeriodSeconds=%d is shorter than preStopSleepSeconds + shutdownDrainSeconds + gracefulShutdownSeconds + 5 = %d: in-flight requests would be killed" (int $s.terminationGracePeriodSeconds) (int $needed)) }}
{{- else -}}
{{ $s.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
The connection budget: at the HPA's maximum, during a rollout (maxSurge),
every API pod may hold pool size + overflow connections. With the reserve,
that must fit in PostgreSQL's max_connections, or pods get "too many
connections" exactly when load peaks.
*/}}
{{- define "storefront.validate" -}}
{{- $pool := .Values.database.pool -}}
{{- $perPod := add $pool.size $pool.maxOverflow -}}
{{- $pods := add (ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled) .Values.rollingUpdate.maxSurge -}}
{{- $apiConnections := mul $pods $perPod -}}
{{- if .Values.postgresql.enabled -}}
{{- $budget := sub .Values.postgresql.maxConnections .Values.postgresql.reservedConnections -}}
{{- if gt (int $apiConnections) (int $budget) -}}
{{ fail (printf "database connection budget exceeded: %d API pods (max replicas + maxSurge) x %d connections (pool size + overflow) = %d, but postgresql.maxConnections %d - reservedConnections %d leaves %d. Raise postgresql.maxConnections, or lower autoscaling.maxReplicas or database.pool." (int $pods) (int $perPod) (int $apiConnections) (int .Values.postgresql.maxConnections) (int .Values.postgresql.reservedConnections) (int $budget)) }}
{{- end -}}
{{- else if gt (int .Values.externalDatabase.maxConnections) 0 -}}
{{- if gt (int $apiConnections) (int .Values.externalDatabase.maxConnections) -}}
{{ fail (printf "database connection budget exceeded: %d API pods x %d connections = %d > externalDatabase.maxConnections %d" (int $pods) (int $perPod) (int $apiConnections) (int .Values.externalDatabase.maxConnections)) }}
{{- end -}}
{{- end -}}
{{- if eq .Values.environment "production" -}}
{{- range $path, $value := dict "secrets.secretKey" .Values.secrets.secretKey "postgresql.auth.password" .Values.postgresql.auth.password "redis.auth.password" .Values.redis.auth.password "externalDatabase.password" .Values.externalDatabase.password -}}
{{- if $value -}}
{{ fail (printf "%s is a plain-text secret in production values: use the matching existingSecret, or leave it empty to have one generated" $path) }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.devMode (eq .Values.environment "production") -}}
{{ fail "devMode (source synced into the pod, --reload) is refused with environment: production" }}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.existingSecret) (not .Values.externalDatabase.password) -}}
{{ fail "externalDatabase needs existingSecret (or, in development, password)" }}
{{- end -}}
{{- if and (.Values.app.corsAllowCredentials) (has "*" .Values.app.corsOrigins) (eq .Values.environment "production") -}}
{{ fail "app.corsOrigins '*' with corsAllowCredentials is refused in production" }}
{{- end -}}
{{- end }}

{{/* Pod-level security: the Pod Security Standard "restricted". */}}
{{- define "storefront.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "storefront.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Environment of every pod running the app image (API, migrations, wait). */}}
{{- define "storefront.appEnv" -}}
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "storefront.secretName" . }}
      key: SECRET_KEY
{{- $db := split "/" (include "storefront.database.passwordSecret" .) }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $db._0 }}
      key: {{ $db._1 }}
{{- with include "storefront.redis.passwordSecret" . }}
{{- $redis := split "/" . }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $redis._0 }}
      key: {{ $redis._1 }}
{{- end }}
{{- if .Values.secrets.existingSecret }}
- name: SECRET_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: SECRET_KEY_PREVIOUS
      optional: true
- name: EMAIL_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: EMAIL_API_TOKEN
      optional: true
{{- end }}
{{- end }}
