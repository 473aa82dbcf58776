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

{{- define "storefront.postgresql.secretName" -}}
{{- default (include "storefront.postgresql.fullname" .) .Values.postgresql.auth.existingSecret }}
{{- end }}

{{- define "storefront.externalDatabase.secretName" -}}
{{- default (printf "%s-external-database" (include "storefront.fullname" .)) .Values.externalDatabase.existingSecret }}
{{- end }}

{{/* Where the app role's password lives: "secret/key". */}}
{{- define "storefront.database.appPasswordSecret" -}}
{{- if .Values.postgresql.enabled -}}
{{ include "storefront.postgresql.secretName" . }}/password
{{- else if .Values.externalDatabase.existingSecret -}}
{{ .Values.externalDatabase.existingSecret }}/{{ .Values.externalDatabase.passwordKey }}
{{- else -}}
{{ include "storefront.externalDatabase.secretName" . }}/password
{{- end }}
{{- end }}

{{/* Where the owner role's password lives: "secret/key" (the app's when there is one pair). */}}
{{- define "storefront.database.ownerPasswordSecret" -}}
{{- $owner := .Values.externalDatabase.owner -}}
{{- if .Values.postgresql.enabled -}}
{{ include "storefront.postgresql.secretName" . }}/owner-password
{{- else if not $owner.username -}}
{{ include "storefront.database.appPasswordSecret" . }}
{{- else if $owner.existingSecret -}}
{{ $owner.existingSecret }}/{{ $owner.passwordKey }}
{{- else if .Values.externalDatabase.existingSecret -}}
{{ .Values.externalDatabase.existingSecret }}/{{ $owner.passwordKey }}
{{- else -}}
{{ include "storefront.externalDatabase.secretName" . }}/owner-password
{{- end }}
{{- end }}

{{- define "storefront.database.ownerUsername" -}}
{{- if .Values.postgresql.enabled -}}
{{ .Values.postgresql.auth.ownerUsername }}
{{- else -}}
{{ default .Values.externalDatabase.username .Values.externalDatabase.owner.username }}
{{- end }}
{{- end }}

{{/* DATABASE_URL for a role, without the password (that comes from a mounted file):
     (dict "ctx" $ "username" "...") */}}
{{- define "storefront.database.urlFor" -}}
{{- $ := .ctx -}}
{{- if $.Values.postgresql.enabled -}}
postgresql://{{ .username }}@{{ include "storefront.postgresql.fullname" $ }}:5432/{{ $.Values.postgresql.auth.database }}
{{- else -}}
{{- $db := $.Values.externalDatabase -}}
{{- if not $db.host }}{{ fail "postgresql.enabled=false needs externalDatabase.host" }}{{ end -}}
postgresql://{{ .username }}@{{ $db.host }}:{{ $db.port }}/{{ $db.database }}{{ if $db.sslMode }}?ssl={{ $db.sslMode }}{{ end }}
{{- end }}
{{- end }}

{{/* DATABASE_URL of the app role. */}}
{{- define "storefront.database.url" -}}
{{- $user := ternary .Values.postgresql.auth.username .Values.externalDatabase.username .Values.postgresql.enabled -}}
{{- include "storefront.database.urlFor" (dict "ctx" . "username" $user) }}
{{- end }}

{{/* DATABASE_URL of the migrations (the owner role). */}}
{{- define "storefront.database.ownerUrl" -}}
{{- include "storefront.database.urlFor" (dict "ctx" . "username" (include "storefront.database.ownerUsername" .)) }}
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

{{/* A PING that passes only on PONG (redis-cli exits 0 on NOAUTH too). */}}
{{- define "storefront.redis.ping" -}}
{{- if .Values.redis.auth.enabled -}}
[ "$(REDISCLI_AUTH="$(cat /var/run/secrets/redis/password)" redis-cli -h 127.0.0.1 ping)" = PONG ]
{{- else -}}
[ "$(redis-cli -h 127.0.0.1 ping)" = PONG ]
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
{{- range $path, $value := dict "secrets.secretKey" .Values.secrets.secretKey "postgresql.auth.password" .Values.postgresql.auth.password "postgresql.auth.ownerPassword" .Values.postgresql.auth.ownerPassword "redis.auth.password" .Values.redis.auth.password "externalDatabase.password" .Values.externalDatabase.password "externalDatabase.owner.password" .Values.externalDatabase.owner.password -}}
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
{{- $owner := .Values.externalDatabase.owner -}}
{{- if and (not .Values.postgresql.enabled) $owner.username (not $owner.existingSecret) (not .Values.externalDatabase.existingSecret) (not $owner.password) -}}
{{ fail "externalDatabase.owner.username needs owner.existingSecret, externalDatabase.existingSecret (key owner.passwordKey) or, in development, owner.password" }}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) $owner.username (not $owner.existingSecret) (not .Values.externalDatabase.existingSecret) (not .Values.externalDatabase.password) -}}
{{ fail "externalDatabase.owner.password (plain text) needs externalDatabase.password too: both go into one chart-made Secret" }}
{{- end -}}
{{- if and .Values.postgresql.enabled (eq .Values.postgresql.auth.username .Values.postgresql.auth.ownerUsername) -}}
{{ fail "postgresql.auth.username and ownerUsername must differ: the app role gets DML only, the owner role owns the schema" }}
{{- end -}}
{{- if has "*" .Values.trustedProxies -}}
{{ fail "trustedProxies must list proxy addresses, never '*'" }}
{{- end -}}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) -}}
{{ fail "httpRoute.enabled needs httpRoute.parentRefs (the Gateway to attach to)" }}
{{- end -}}
{{- if eq (int .Values.server.metricsPort) (int .Values.server.port) -}}
{{ fail "server.metricsPort must differ from server.port: /metrics is served on its own port only" }}
{{- end -}}
{{- if and .Values.prometheusRule.enabled (not (has (toString .Values.prometheusRule.slo.latencyThresholdSeconds) (list "0.005" "0.01" "0.025" "0.05" "0.1" "0.25" "0.5" "1.0" "2.5" "5.0" "10.0"))) -}}
{{ fail (printf "prometheusRule.slo.latencyThresholdSeconds %v is not a bucket of http_request_duration_seconds (0.005 0.01 0.025 0.05 0.1 0.25 0.5 1.0 2.5 5.0 10.0)" .Values.prometheusRule.slo.latencyThresholdSeconds) }}
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

{{/* Where the app image reads its secrets (SECRETS_DIR): files, never env vars. */}}
{{- define "storefront.secretsDir" -}}
/var/run/secrets/storefront
{{- end }}

{{/*
The secrets of a pod running the app image, as files named like the settings
(SECRET_KEY, DATABASE_PASSWORD, ...), projected from however many Secrets hold
them. (dict "ctx" $ "role" "app"|"owner"): the migration Job connects as the owner.
*/}}
{{- define "storefront.secretsVolume" -}}
{{- $ := .ctx -}}
{{- $db := split "/" (ternary (include "storefront.database.ownerPasswordSecret" $) (include "storefront.database.appPasswordSecret" $) (eq .role "owner")) -}}
- name: secrets
  projected:
    # Readable by the pod's group (fsGroup) only.
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "storefront.secretName" $ }}
          items:
            - key: SECRET_KEY
              path: SECRET_KEY
      {{- if $.Values.secrets.existingSecret }}
      # Optional keys: present only when the Secret has them.
      - secret:
          name: {{ $.Values.secrets.existingSecret }}
          optional: true
          items:
            - key: SECRET_KEY_PREVIOUS
              path: SECRET_KEY_PREVIOUS
            - key: EMAIL_API_TOKEN
              path: EMAIL_API_TOKEN
      {{- end }}
      - secret:
          name: {{ $db._0 }}
          items:
            - key: {{ $db._1 }}
              path: DATABASE_PASSWORD
      {{- with include "storefront.redis.passwordSecret" $ }}
      {{- $redis := split "/" . }}
      - secret:
          name: {{ $redis._0 }}
          items:
            - key: {{ $redis._1 }}
              path: REDIS_PASSWORD
      {{- end }}
{{- end }}

{{- define "storefront.secretsVolumeMount" -}}
- name: secrets
  mountPath: {{ include "storefront.secretsDir" . }}
  readOnly: true
{{- end }}

{{/* PromQL label matchers of this release's series (alerts, dashboard). */}}
{{- define "storefront.seriesSelector" -}}
{{- default (printf "job=%q,namespace=%q" (include "storefront.fullname" .) .Release.Namespace) .Values.metrics.seriesSelector }}
{{- end }}

{{/* "host port" of a URL's authority, the port defaulting by scheme. */}}
{{- define "storefront.urlPort" -}}
{{- $url := urlParse . -}}
{{- $parts := splitList ":" $url.host -}}
{{- if gt (len $parts) 1 -}}
{{ last $parts }}
{{- else -}}
{{ ternary "443" "80" (eq $url.scheme "https") }}
{{- end }}
{{- end }}

{{/* Checkov findings the chart accepts, one reason each (annotations on workloads). */}}
{{- define "storefront.checkovSkips" -}}
checkov.io/skip1: "CKV_K8S_43=Digests are optional (image.digest); tags are pinned and latest is refused"
checkov.io/skip2: "CKV_K8S_15=IfNotPresent is deliberate, images are loaded without a registry (kind load, air-gapped)"
{{- end }}
