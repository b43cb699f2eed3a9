{{/* The chart name, or nameOverride. */}}
{{- define "sparkvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
"<release>-<chart>" (just "<release>" when it already holds the chart name),
or fullnameOverride. At most 52 characters: "-tenant", "-http" and
"-identities" are appended to it, and Kubernetes names stop at 63.
*/}}
{{- define "sparkvc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sparkvc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "sparkvc.labels" -}}
helm.sh/chart: {{ include "sparkvc.chart" . }}
{{ include "sparkvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
What the Services and the StatefulSet select the server pod by. Not
app.kubernetes.io/managed-by: sparkvc puts "managed-by: sparkvc" on the job
pods it creates and watches every pod with that label.
*/}}
{{- define "sparkvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sparkvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sparkvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sparkvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sparkvc.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "sparkvc.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* The Secret holding tls.crt, tls.key and ca.crt. */}}
{{- define "sparkvc.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "sparkvc.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret holding identities.toml. */}}
{{- define "sparkvc.identitiesSecretName" -}}
{{- if .Values.identities.existingSecret }}
{{- .Values.identities.existingSecret }}
{{- else }}
{{- printf "%s-identities" (include "sparkvc.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where the server's files are mounted. */}}
{{- define "sparkvc.configFile" -}}/etc/sparkvc/config/sparkvc-server.toml{{- end }}
{{- define "sparkvc.dataDir" -}}/var/lib/sparkvc{{- end }}
{{- define "sparkvc.tlsDir" -}}/etc/sparkvc/tls{{- end }}
{{- define "sparkvc.identitiesDir" -}}/etc/sparkvc/identities{{- end }}

{{/*
A "host:port" listen address; IPv6 hosts get brackets.
*/}}
{{- define "sparkvc.listen" -}}
{{- $host := index . 0 }}
{{- $port := index . 1 }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int $port) }}
{{- else }}
{{- printf "%s:%d" $host (int $port) }}
{{- end }}
{{- end }}

{{/*
The server's configuration: .Values.config with the settings the chart owns
(the addresses, the mounted files, the in-cluster cluster and its Lease).
*/}}
{{- define "sparkvc.serverConfig" -}}
{{- $config := deepCopy .Values.config }}
{{- range $key := list "listen" "metrics_listen" "data_dir" "identities_file" "tls" "cluster" "lease" }}
{{- if hasKey $config $key }}
{{- fail (printf "config.%s is set by the chart; use the chart's values for it (see README.md)" $key) }}
{{- end }}
{{- end }}
{{- $_ := set $config "listen" (include "sparkvc.listen" (list .Values.listenAddress .Values.ports.api)) }}
{{- $_ = set $config "metrics_listen" (include "sparkvc.listen" (list .Values.listenAddress .Values.ports.http)) }}
{{- $_ = set $config "data_dir" (include "sparkvc.dataDir" .) }}
{{- if .Values.identities.enabled }}
{{- $_ = set $config "identities_file" (printf "%s/identities.toml" (include "sparkvc.identitiesDir" .)) }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $tls := dict "cert_file" (printf "%s/tls.crt" (include "sparkvc.tlsDir" .)) "key_file" (printf "%s/tls.key" (include "sparkvc.tlsDir" .)) }}
{{- if .Values.tls.requireClientCertificates }}
{{- $_ = set $tls "client_ca_file" (printf "%s/ca.crt" (include "sparkvc.tlsDir" .)) }}
{{- end }}
{{- $_ = set $config "tls" $tls }}
{{- end }}
{{- if .Values.cluster.enabled }}
{{- $cluster := dict "id" .Values.cluster.id "in_cluster" true }}
{{- $jobPods := dict }}
{{- with .Values.cluster.jobPods.nodeSelector }}
{{- $_ = set $jobPods "node_selector" . }}
{{- end }}
{{- with .Values.cluster.jobPods.tolerations }}
{{- $_ = set $jobPods "tolerations" . }}
{{- end }}
{{- if $jobPods }}
{{- $_ = set $cluster "job_pods" $jobPods }}
{{- end }}
{{- $_ = set $config "cluster" (list $cluster) }}
{{- /* One writer on the cluster: a Lease in the release namespace. */}}
{{- $_ = set $config "lease" (dict "namespace" .Release.Namespace "name" (include "sparkvc.fullname" .) "duration_seconds" .Values.cluster.leaseDurationSeconds) }}
{{- end }}
{{- $appUi := deepCopy (default dict $config.app_ui) }}
{{- if not (hasKey $appUi "public_url") }}
{{- $_ = set $appUi "public_url" (default (printf "%s://%s-http.%s.svc:%d" (include "sparkvc.scheme" .) (include "sparkvc.fullname" .) .Release.Namespace (int .Values.httpService.port)) .Values.httpService.publicUrl) }}
{{- end }}
{{- $_ = set $config "app_ui" $appUi }}
{{- include "sparkvc.toml" $config | trim }}
{{- end }}

{{/*
TOML from a map, for the server's configuration file. Helm's toToml writes
every number as a float (YAML values reach templates as float64), which the
server's integer settings refuse; this writes whole numbers as integers.
Top-level scalars come first, then one [table] per map and one [[table]] per
list of maps; anything deeper is an inline table or array.
*/}}
{{- define "sparkvc.toml" -}}
{{- $doc := . }}
{{- range $key := keys $doc | sortAlpha }}
{{- $value := index $doc $key }}
{{- if not (or (kindIs "map" $value) (and (kindIs "slice" $value) $value (kindIs "map" (first $value)))) }}
{{ include "sparkvc.tomlKey" $key }} = {{ include "sparkvc.tomlValue" $value }}
{{- end }}
{{- end }}
{{- range $key := keys $doc | sortAlpha }}
{{- $value := index $doc $key }}
{{- if kindIs "map" $value }}

[{{ include "sparkvc.tomlKey" $key }}]
{{- range $k := keys $value | sortAlpha }}
{{ include "sparkvc.tomlKey" $k }} = {{ include "sparkvc.tomlValue" (index $value $k) }}
{{- end }}
{{- else if and (kindIs "slice" $value) $value (kindIs "map" (first $value)) }}
{{- range $item := $value }}

[[{{ include "sparkvc.tomlKey" $key }}]]
{{- range $k := keys $item | sortAlpha }}
{{ include "sparkvc.tomlKey" $k }} = {{ include "sparkvc.tomlValue" (index $item $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* A bare key when TOML allows one, else a quoted key. */}}
{{- define "sparkvc.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/* An inline TOML value: JSON's string escapes are TOML's. */}}
{{- define "sparkvc.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "map" $v }}
{{- $items := list }}
{{- range $k := keys $v | sortAlpha }}
{{- $items = append $items (printf "%s = %s" (include "sparkvc.tomlKey" $k) (include "sparkvc.tomlValue" (index $v $k))) }}
{{- end }}
{{- if $items }}{ {{ join ", " $items }} }{{ else }}{}{{ end }}
{{- else if kindIs "slice" $v }}
{{- $items := list }}
{{- range $item := $v }}
{{- $items = append $items (include "sparkvc.tomlValue" $item) }}
{{- end }}[{{ join ", " $items }}]
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) }}
{{- if eq (float64 (int64 $v)) (float64 $v) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "bool" $v) }}
{{- $v }}
{{- else if kindIs "invalid" $v }}
{{- fail "the server configuration cannot hold a null value; leave the key out instead" }}
{{- else }}
{{- toJson (toString $v) }}
{{- end }}
{{- end }}
