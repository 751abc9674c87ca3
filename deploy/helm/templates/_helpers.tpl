{{/*
Names, labels and shared fragments of the openfn-stream chart.

Helpers that concern one service take a dict: "root" (the chart's root
context), "key" (the service's values key), "meta" (its fixed facts from
"openfn-stream.components") and "values" (its values block).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "openfn-stream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: "<release>-<chart>" unless the release
name already contains the chart name. Cut to leave room for the longest
component suffix ("-inbox-gateway"). */}}
{{- define "openfn-stream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "openfn-stream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "openfn-stream.labels" -}}
helm.sh/chart: {{ include "openfn-stream.chart" . }}
app.kubernetes.io/name: {{ include "openfn-stream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openfn-stream
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "openfn-stream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openfn-stream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The six services: values key → fixed facts about each. Those that log
in to Vault name their key in vault.roles and vault.existingSecretRoleKeys. */}}
{{- define "openfn-stream.components" -}}
inboxGateway:
  name: inbox-gateway
  module: services.inbox_gateway
  httpPort: 8000
  vault: true
  vaultRole: gateway
api:
  name: api
  module: services.api
  httpPort: 8001
  vault: true
  vaultRole: api
dispatcher:
  name: dispatcher
  module: services.dispatcher
  httpPort: 0
  vault: false
runner:
  name: runner
  module: services.runner
  httpPort: 0
  vault: true
  vaultRole: runner
recorder:
  name: recorder
  module: services.recorder
  httpPort: 0
  vault: false
scheduler:
  name: scheduler
  module: services.scheduler
  httpPort: 0
  vault: false
{{- end }}

{{/* "<fullname>-<service>", the name of a service's Deployment and more. */}}
{{- define "openfn-stream.component.fullname" -}}
{{- printf "%s-%s" (include "openfn-stream.fullname" .root) .meta.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "openfn-stream.component.labels" -}}
{{ include "openfn-stream.labels" .root }}
app.kubernetes.io/component: {{ .meta.name }}
{{- end }}

{{- define "openfn-stream.component.selectorLabels" -}}
{{ include "openfn-stream.selectorLabels" .root }}
app.kubernetes.io/component: {{ .meta.name }}
{{- end }}

{{- define "openfn-stream.component.serviceAccountName" -}}
{{- if .values.serviceAccount.create }}
{{- default (include "openfn-stream.component.fullname" .) .values.serviceAccount.name }}
{{- else }}
{{- default "default" .values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference, from the service's image block or the shared one. */}}
{{- define "openfn-stream.component.image" -}}
{{- $image := .root.Values.image }}
{{- $repository := default $image.repository .values.image.repository }}
{{- $digest := default $image.digest .values.image.digest }}
{{- $tag := default (default .root.Chart.AppVersion $image.tag) .values.image.tag }}
{{- if $digest }}
{{- printf "%s@%s" $repository $digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/* Whether something other than `replicas` sets the service's size. */}}
{{- define "openfn-stream.component.autoscaled" -}}
{{- if .values.autoscaling.enabled }}true
{{- else if and (eq .key "runner") .values.keda.enabled }}true
{{- end }}
{{- end }}

{{/* An HTTP probe on the ops port; call with (dict "probe" … "path" …). */}}
{{- define "openfn-stream.component.probe" -}}
httpGet:
  path: {{ .path }}
  port: ops
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{/* The Secret the chart creates for values given in plain text. */}}
{{- define "openfn-stream.secret.name" -}}
{{- include "openfn-stream.fullname" . }}
{{- end }}

{{/* Whether Kafka needs a SASL login. */}}
{{- define "openfn-stream.kafka.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{- end }}
{{- end }}

{{/* Whether Kafka is reached over TLS. */}}
{{- define "openfn-stream.kafka.tls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{- end }}
{{- end }}

{{/* Settings every service reads, as OPENFN_* variables (ConfigMap data). */}}
{{- define "openfn-stream.config.data" -}}
{{- $kafka := .Values.kafka }}
{{- $client := deepCopy $kafka.clientConfig }}
{{- if $kafka.tls.clientCertSecret }}
{{- $_ := set $client "ssl.certificate.location" "/etc/openfn/kafka-client/tls.crt" }}
{{- $_ := set $client "ssl.key.location" "/etc/openfn/kafka-client/tls.key" }}
{{- end }}
OPENFN_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
OPENFN_LOG_FORMAT: {{ .Values.config.logFormat | quote }}
OPENFN_OPS_PORT: {{ .Values.ops.port | quote }}
OPENFN_TOPIC_PREFIX: {{ $kafka.topicPrefix | quote }}
OPENFN_KAFKA_BOOTSTRAP_SERVERS: {{ $kafka.bootstrapServers | quote }}
OPENFN_KAFKA_SECURITY_PROTOCOL: {{ $kafka.securityProtocol | quote }}
{{- if include "openfn-stream.kafka.sasl" . }}
OPENFN_KAFKA_SASL_MECHANISM: {{ $kafka.sasl.mechanism | quote }}
OPENFN_KAFKA_SASL_USERNAME: {{ $kafka.sasl.username | quote }}
{{- end }}
{{- if $kafka.tls.caSecret }}
OPENFN_KAFKA_SSL_CA_LOCATION: "/etc/openfn/kafka-ca/ca.crt"
{{- end }}
OPENFN_KAFKA_CLIENT_CONFIG: {{ toJson $client | quote }}
OPENFN_KAFKA_CONSUMER_CONFIG: {{ toJson $kafka.consumerConfig | quote }}
OPENFN_KAFKA_PARTITIONS: {{ $kafka.partitions | quote }}
OPENFN_KAFKA_REPLICATION_FACTOR: {{ $kafka.replicationFactor | quote }}
OPENFN_DISPATCHER_GROUP: {{ $kafka.consumerGroups.dispatcher | quote }}
OPENFN_RUNNER_GROUP: {{ $kafka.consumerGroups.runner | quote }}
OPENFN_RECORDER_GROUP: {{ $kafka.consumerGroups.recorder | quote }}
OPENFN_DATABASE_POOL_SIZE: {{ .Values.postgresql.poolSize | quote }}
OPENFN_CATALOG_REFRESH_S: {{ .Values.config.catalogRefreshSeconds | quote }}
OPENFN_INBOX_MAX_BODY_BYTES: {{ .Values.config.inboxMaxBodyBytes | int64 | quote }}
OPENFN_STATE_MAX_BYTES: {{ .Values.config.stateMaxBytes | int64 | quote }}
OPENFN_RUN_LOG_MAX_BYTES: {{ .Values.config.runLogMaxBytes | int64 | quote }}
OPENFN_RUN_TIMEOUT_S: {{ .Values.config.runTimeoutSeconds | quote }}
OPENFN_RUN_GATE_WINDOW_S: {{ .Values.config.runGateWindowSeconds | quote }}
OPENFN_INBOX_PUBLIC_URL: {{ include "openfn-stream.inbox.publicUrl" . | quote }}
{{- if and .Values.api.ingress.enabled .Values.api.ingress.tls }}
{{- /* Browsers reach the console over TLS: its cookies never travel in clear. */}}
OPENFN_CONSOLE_SECURE_COOKIES: "true"
{{- end }}
{{- end }}

{{/* How services that use Vault reach it (ConfigMap data). */}}
{{- define "openfn-stream.vault.data" -}}
OPENFN_VAULT_ADDR: {{ .Values.vault.address | quote }}
OPENFN_VAULT_AUTH_METHOD: "kubernetes"
OPENFN_VAULT_KUBERNETES_JWT_PATH: "/var/run/secrets/openfn/vault/token"
OPENFN_VAULT_KV_MOUNT: {{ .Values.vault.kvMount | quote }}
OPENFN_VAULT_PATH_PREFIX: {{ .Values.vault.pathPrefix | quote }}
OPENFN_VAULT_TRANSIT_MOUNT: {{ .Values.vault.transitMount | quote }}
OPENFN_VAULT_INBOX_KEY: {{ .Values.vault.inboxKey | quote }}
OPENFN_VAULT_TIMEOUT_S: {{ .Values.vault.timeoutSeconds | quote }}
{{- if .Values.vault.tls.caSecret }}
OPENFN_VAULT_CA_CERT: "/etc/openfn/vault-ca/ca.crt"
{{- end }}
{{- end }}

{{/* The address senders post to, for the inbox URLs the API hands out. */}}
{{- define "openfn-stream.inbox.publicUrl" -}}
{{- $gateway := .Values.inboxGateway }}
{{- if .Values.inbox.publicUrl }}
{{- .Values.inbox.publicUrl | trimSuffix "/" }}
{{- else if and $gateway.ingress.enabled $gateway.ingress.hosts }}
{{- $host := (first $gateway.ingress.hosts).host }}
{{- $scheme := "http" }}
{{- range $gateway.ingress.tls }}
{{- if has $host .hosts }}{{ $scheme = "https" }}{{ end }}
{{- end }}
{{- printf "%s://%s" $scheme $host }}
{{- else }}
{{- printf "http://%s-inbox-gateway.%s.svc:%v" (include "openfn-stream.fullname" .) .Release.Namespace $gateway.service.port }}
{{- end }}
{{- end }}

{{/* Secret-held variables of every service: the database URL and the Kafka
SASL password. Call with (dict "root" … "secret" <name of the chart's Secret>). */}}
{{- define "openfn-stream.secret.env" -}}
{{- $values := .root.Values }}
- name: OPENFN_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if $values.postgresql.existingSecret }}
      name: {{ $values.postgresql.existingSecret }}
      key: {{ $values.postgresql.existingSecretKey }}
      {{- else }}
      name: {{ .secret }}
      key: database-url
      {{- end }}
{{- if include "openfn-stream.kafka.sasl" .root }}
- name: OPENFN_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if $values.kafka.sasl.existingSecret }}
      name: {{ $values.kafka.sasl.existingSecret }}
      key: {{ $values.kafka.sasl.existingSecretPasswordKey }}
      {{- else }}
      name: {{ .secret }}
      key: kafka-sasl-password
      {{- end }}
{{- end }}
{{- end }}

{{/* Volumes holding the Kafka CA and client certificate, when configured. */}}
{{- define "openfn-stream.kafka.volumes" -}}
{{- with .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.kafka.tls.caSecretKey }}
        path: ca.crt
{{- end }}
{{- with .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{- define "openfn-stream.kafka.volumeMounts" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/openfn/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  mountPath: /etc/openfn/kafka-client
  readOnly: true
{{- end }}
{{- end }}

{{/* Refuses values that cannot work, with a message naming the keys. */}}
{{- define "openfn-stream.validate" -}}
{{- $kafka := .Values.kafka }}
{{- if include "openfn-stream.kafka.sasl" . }}
{{- if not (has $kafka.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q" $kafka.securityProtocol $kafka.sasl.mechanism) }}
{{- end }}
{{- if not $kafka.sasl.username }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.username" $kafka.securityProtocol) }}
{{- end }}
{{- if not (or $kafka.sasl.password $kafka.sasl.existingSecret) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.password or kafka.sasl.existingSecret" $kafka.securityProtocol) }}
{{- end }}
{{- else if $kafka.sasl.mechanism }}
{{- fail (printf "kafka.sasl.mechanism is set but kafka.securityProtocol %s uses no SASL" $kafka.securityProtocol) }}
{{- end }}
{{- if not (or .Values.postgresql.url .Values.postgresql.existingSecret) }}
{{- fail "set postgresql.url or postgresql.existingSecret" }}
{{- end }}
{{- if and .Values.runner.autoscaling.enabled .Values.runner.keda.enabled }}
{{- fail "runner.autoscaling and runner.keda cannot both be enabled: KEDA makes its own HorizontalPodAutoscaler" }}
{{- end }}
{{- end }}

{{/* What the chart's Secret holds (base64), given in plain text in values.
The SASL user name is there too, for KEDA, which reads only Secrets. */}}
{{- define "openfn-stream.secret.data" -}}
{{- if not .Values.postgresql.existingSecret }}
database-url: {{ .Values.postgresql.url | b64enc | quote }}
{{- end }}
{{- if include "openfn-stream.kafka.sasl" . }}
kafka-sasl-username: {{ .Values.kafka.sasl.username | b64enc | quote }}
{{- if not .Values.kafka.sasl.existingSecret }}
kafka-sasl-password: {{ .Values.kafka.sasl.password | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* What the migration Job's two containers share: image, settings,
resources, security and mounts. Call with (dict "root" … "secret" …). */}}
{{- define "openfn-stream.migration.container" -}}
{{- $root := .root }}
{{- $image := $root.Values.image }}
image: {{ include "openfn-stream.component.image" (dict "root" $root "values" (dict "image" (dict))) | quote }}
imagePullPolicy: {{ $image.pullPolicy }}
env:
  {{- range $name, $value := include "openfn-stream.config.data" $root | fromYaml }}
  - name: {{ $name }}
    value: {{ $value | quote }}
  {{- end }}
  {{- include "openfn-stream.secret.env" . | trim | nindent 2 }}
resources:
  {{- toYaml $root.Values.migration.resources | nindent 2 }}
securityContext:
  {{- toYaml $root.Values.containerSecurityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- include "openfn-stream.kafka.volumeMounts" $root | trim | nindent 2 }}
{{- end }}
