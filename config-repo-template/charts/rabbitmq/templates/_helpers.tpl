{{/*
Headless Service the StatefulSet registers its members in: endpoints.oslo_messaging.hosts.discovery,
else <release>-dsv-<first 6 hex of sha256(release)>, the form OSH generates.
*/}}
{{- define "rabbitmq.discovery_host" -}}
{{- $envAll := . -}}
{{- if $envAll.Values.endpoints.oslo_messaging.hosts.discovery -}}
{{- $envAll.Values.endpoints.oslo_messaging.hosts.discovery -}}
{{- else -}}
{{- $name := $envAll.Release.Name | trunc 12 -}}
{{- printf "%s-dsv-%s" $name ($name | sha256sum | trunc 6) -}}
{{- end -}}
{{- end -}}

{{/* Fully qualified discovery domain. */}}
{{- define "rabbitmq.discovery_fqdn" -}}
{{- printf "%s.%s.svc.%s" (include "rabbitmq.discovery_host" .) .Release.Namespace (.Values.endpoints.cluster_domain_suffix | default "cluster.local") -}}
{{- end -}}

{{/* rabbitmq.conf: key = value lines. */}}
{{- define "rabbitmq.to_rabbit_config" -}}
{{- range $key, $value := . }}
{{ $key }} = {{ include "helm-toolkit.utils._ini_value" $value }}
{{- end -}}
{{- end -}}
