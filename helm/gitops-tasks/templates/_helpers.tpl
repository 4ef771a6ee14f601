{{/*
Names, labels and the pieces every gitops-tasks pod shares.
*/}}

{{- define "gitops-tasks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gitops-tasks.fullname" -}}
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

{{/* A resource name: full name + suffix, kept within 63 characters. Call with (list $ "suffix"). */}}
{{- define "gitops-tasks.resourceName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "gitops-tasks.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gitops-tasks.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gitops-tasks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitops-tasks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gitops-tasks.labels" -}}
helm.sh/chart: {{ include "gitops-tasks.chart" . }}
{{ include "gitops-tasks.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gitops-tasks
{{- end }}

{{/* Call with (dict "root" $ "component" "worker" ["pool" "all"]). */}}
{{- define "gitops-tasks.componentSelectorLabels" -}}
{{ include "gitops-tasks.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .pool }}
gitops-tasks.io/worker-pool: {{ . }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.componentLabels" -}}
{{ include "gitops-tasks.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .pool }}
gitops-tasks.io/worker-pool: {{ . }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gitops-tasks.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Fixed paths inside the containers. */}}
{{- define "gitops-tasks.dataDir" -}}/var/lib/gitops-tasks{{- end }}
{{- define "gitops-tasks.secretsDir" -}}/etc/gitops-tasks/secrets{{- end }}
{{- define "gitops-tasks.catalogDir" -}}/etc/gitops-tasks/catalog{{- end }}

{{/* Catalog ConfigMap content as YAML: file name -> text. */}}
{{- define "gitops-tasks.catalogFiles" -}}
{{- $files := dict }}
{{- range $name, $text := .Values.catalogFiles }}
{{- $_ := set $files $name $text }}
{{- end }}
{{- if .Values.objects }}
{{- $docs := list }}
{{- range .Values.objects }}
{{- $docs = append $docs (toYaml .) }}
{{- end }}
{{- $_ := set $files "values-objects.yaml" (printf "%s\n" (join "\n---\n" $docs)) }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/* GITOPS_TASKS_CATALOG_PATHS: the catalog ConfigMap's files, then extraCatalogPaths. */}}
{{- define "gitops-tasks.catalogPaths" -}}
{{- $paths := list }}
{{- $files := include "gitops-tasks.catalogFiles" . | fromYaml }}
{{- range $name := keys $files | sortAlpha }}
{{- $paths = append $paths (printf "%s/%s" (include "gitops-tasks.catalogDir" $) $name) }}
{{- end }}
{{- $paths = concat $paths .Values.extraCatalogPaths }}
{{- join ":" $paths }}
{{- end }}

{{- define "gitops-tasks.hasCatalogConfigMap" -}}
{{- if or .Values.objects .Values.catalogFiles }}true{{- end }}
{{- end }}

{{- define "gitops-tasks.redisPasswordSecret" -}}
{{- default (include "gitops-tasks.resourceName" (list . "redis")) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "gitops-tasks.urlSecretName" -}}
{{- include "gitops-tasks.resourceName" (list . "urls") }}
{{- end }}

{{- define "gitops-tasks.hasUrlSecret" -}}
{{- if or (and (not .Values.redis.enabled) .Values.externalRedis.url) .Values.broker.url }}true{{- end }}
{{- end }}

{{/* Environment every gitops-tasks container gets besides the settings ConfigMap. */}}
{{- define "gitops-tasks.env" -}}
{{- if .Values.redis.enabled }}
{{- $host := printf "%s:%d" (include "gitops-tasks.resourceName" (list . "redis")) (int .Values.redis.service.port) }}
{{- if .Values.redis.auth.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "gitops-tasks.redisPasswordSecret" . }}
      key: {{ .Values.redis.auth.existingSecretPasswordKey }}
- name: GITOPS_TASKS_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s/0" $host | quote }}
{{- else }}
- name: GITOPS_TASKS_REDIS_URL
  value: {{ printf "redis://%s/0" $host | quote }}
{{- end }}
{{- else }}
- name: GITOPS_TASKS_REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.externalRedis.existingSecret }}
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
      {{- else }}
      name: {{ include "gitops-tasks.urlSecretName" . }}
      key: redis-url
      {{- end }}
{{- end }}
{{- if or .Values.broker.url .Values.broker.existingSecret }}
- name: GITOPS_TASKS_BROKER_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.broker.existingSecret }}
      name: {{ .Values.broker.existingSecret }}
      key: {{ .Values.broker.existingSecretKey }}
      {{- else }}
      name: {{ include "gitops-tasks.urlSecretName" . }}
      key: broker-url
      {{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.envFrom" -}}
- configMapRef:
    name: {{ include "gitops-tasks.resourceName" (list . "config") }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Pod annotations that roll the pods when their configuration changes; only beat reads the catalog.
The generated Redis password is left out on purpose: it is random at render time and kept stable by
lookup. Call with (list $ "component").
*/}}
{{- define "gitops-tasks.checksums" -}}
{{- $root := index . 0 }}
checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
checksum/urls: {{ include (print $root.Template.BasePath "/secret-urls.yaml") $root | sha256sum }}
{{- if eq (index . 1) "beat" }}
checksum/catalog: {{ include (print $root.Template.BasePath "/catalog-configmap.yaml") $root | sha256sum }}
{{- end }}
{{- end }}

{{/* Pod-level fields shared by the gitops-tasks pods. */}}
{{- define "gitops-tasks.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Volumes every gitops-tasks pod has; the data volume source is passed in. Call with (list $ source). */}}
{{- define "gitops-tasks.baseVolumes" -}}
{{- $root := index . 0 }}
- name: data
  {{- toYaml (index . 1) | nindent 2 }}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.baseVolumeMounts" -}}
- name: data
  mountPath: {{ include "gitops-tasks.dataDir" . }}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.catalogVolume" -}}
{{- if include "gitops-tasks.hasCatalogConfigMap" . }}
- name: catalog
  configMap:
    name: {{ include "gitops-tasks.resourceName" (list . "catalog") }}
{{- end }}
{{- end }}

{{- define "gitops-tasks.catalogVolumeMount" -}}
{{- if include "gitops-tasks.hasCatalogConfigMap" . }}
- name: catalog
  mountPath: {{ include "gitops-tasks.catalogDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "gitops-tasks.catalogEnv" -}}
{{- with include "gitops-tasks.catalogPaths" . }}
- name: GITOPS_TASKS_CATALOG_PATHS
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Fail early, with the value to fix, on combinations the schema cannot express. */}}
{{- define "gitops-tasks.validate" -}}
{{- $ext := .Values.externalRedis }}
{{- if .Values.redis.enabled }}
{{- if or $ext.url $ext.existingSecret }}
{{- fail "externalRedis is set but redis.enabled is true: set redis.enabled=false to use an external Redis" }}
{{- end }}
{{- else }}
{{- if not (or $ext.url $ext.existingSecret) }}
{{- fail "redis.enabled is false: set externalRedis.url or externalRedis.existingSecret" }}
{{- end }}
{{- if and $ext.url $ext.existingSecret }}
{{- fail "externalRedis: set url or existingSecret, not both" }}
{{- end }}
{{- end }}
{{- if and .Values.broker.url .Values.broker.existingSecret }}
{{- fail "broker: set url or existingSecret, not both" }}
{{- end }}
{{- $pools := dict }}
{{- range .Values.workers }}
{{- if hasKey $pools .name }}
{{- fail (printf "workers: pool name %q is used twice; names must be unique" .name) }}
{{- end }}
{{- $_ := set $pools .name true }}
{{- end }}
{{- $mounts := dict }}
{{- range .Values.secretMounts }}
{{- $id := printf "%s/%s" (default "default" .namespace) .name }}
{{- if hasKey $mounts $id }}
{{- fail (printf "secretMounts: %s is mounted twice" $id) }}
{{- end }}
{{- $_ := set $mounts $id true }}
{{- end }}
{{- range .Values.workers }}
{{- $scaling := include "gitops-tasks.autoscaling" (list $ .) | fromYaml }}
{{- if eq $scaling.mode "keda" }}
{{- if or $.Values.broker.url $.Values.broker.existingSecret }}
{{- fail (printf "workers[%s].autoscaling.mode=keda scales on Redis list lengths, but broker sets another broker: use mode hpa" .name) }}
{{- end }}
{{- if and (not $.Values.redis.enabled) (not $scaling.keda.address) }}
{{- fail (printf "workers[%s].autoscaling.keda.address: give host:port of the external Redis (KEDA cannot read externalRedis.url)" .name) }}
{{- end }}
{{- end }}
{{- if and $scaling.mode (lt (int $scaling.maxReplicas) (int $scaling.minReplicas)) }}
{{- fail (printf "workers[%s].autoscaling: maxReplicas is below minReplicas" .name) }}
{{- end }}
{{- end }}
{{- if and .Values.objects (hasKey .Values.catalogFiles "values-objects.yaml") }}
{{- fail "catalogFiles: the name values-objects.yaml is reserved for the objects list" }}
{{- end }}
{{- $reserved := dict
  "GITOPS_TASKS_REDIS_URL" "redis / externalRedis"
  "GITOPS_TASKS_BROKER_URL" "broker"
  "GITOPS_TASKS_DATA_DIR" "worker.dataVolume"
  "GITOPS_TASKS_CACHE_DIR" "worker.dataVolume"
  "GITOPS_TASKS_SECRETS_DIR" "secretMounts"
  "GITOPS_TASKS_CATALOG_PATHS" "objects, catalogFiles or extraCatalogPaths"
  "GITOPS_TASKS_FLOWER_ADDRESS" "flower"
  "GITOPS_TASKS_FLOWER_PORT" "flower.port"
  "GITOPS_TASKS_LOG_LEVEL" "config.logLevel"
  "GITOPS_TASKS_KEY_PREFIX" "config.keyPrefix"
  "GITOPS_TASKS_DEFAULT_NAMESPACE" "config.defaultNamespace"
  "GITOPS_TASKS_LOG_FORMAT" "config.logFormat"
  "GITOPS_TASKS_METRICS_ADDRESS" "metrics"
  "GITOPS_TASKS_METRICS_PORT" "metrics.port"
  "GITOPS_TASKS_WORKER_METRICS_PORT" "metrics.port"
  "GITOPS_TASKS_BEAT_METRICS_PORT" "metrics.port" }}
{{- range $name, $_ := .Values.config.env }}
{{- if hasKey $reserved $name }}
{{- fail (printf "config.env.%s is set by the chart: use %s instead" $name (get $reserved $name)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A pool's autoscaling: worker.autoscaling with the pool's own keys over it. Call with (list $ pool). */}}
{{- define "gitops-tasks.autoscaling" -}}
{{- $root := index . 0 }}
{{- $pool := index . 1 }}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.worker.autoscaling) (deepCopy ($pool.autoscaling | default dict))) }}
{{- end }}

{{/* The metrics container port, shared by workers, beat and the collector. */}}
{{- define "gitops-tasks.metricsPort" -}}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
  protocol: TCP
{{- end }}
