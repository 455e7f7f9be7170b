{{/*
Endpoint lookups. Every lookup reads `.Values.endpoints.<type>` of the calling chart, where
<type> is an OSH service type (`identity`, `image`, `oslo_db`, ...; dashes become underscores).
An <endpoint> is one of default/internal/public/admin/service; a key missing for a specific
endpoint falls back to the `default` key, as in OpenStack-Helm.
*/}}

{{/* The values map of one endpoint type. Internal helper; returns YAML. */}}
{{- define "helm-toolkit.endpoints._endpoint_map" -}}
{{- $type := index . 0 -}}
{{- $context := index . 1 -}}
{{- $typeYamlSafe := $type | replace "-" "_" -}}
{{- $endpointMap := index $context.Values.endpoints $typeYamlSafe -}}
{{- if not $endpointMap -}}
{{- fail (printf "helm-toolkit: endpoints.%s is not defined in the values of %s" $typeYamlSafe $context.Chart.Name) -}}
{{- end -}}
{{- toYaml $endpointMap -}}
{{- end -}}

{{/*
Short hostname (the Kubernetes Service name) of an endpoint.
Usage: {{ tuple "identity" "internal" . | include "helm-toolkit.endpoints.hostname_short_endpoint_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.hostname_short_endpoint_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $context := index . 2 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $hosts := $endpointMap.hosts | default dict -}}
{{- $host := index $hosts $endpoint | default $hosts.default -}}
{{- if kindIs "map" $host -}}
{{- $host.host -}}
{{- else -}}
{{- $host -}}
{{- end -}}
{{- end -}}

{{/* Namespace an endpoint lives in: endpoints.<type>.namespace, else the release namespace. */}}
{{- define "helm-toolkit.endpoints.endpoint_namespace_lookup" -}}
{{- $type := index . 0 -}}
{{- $context := index . 1 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $endpointMap.namespace | default $context.Release.Namespace -}}
{{- end -}}

{{/*
<host>.<namespace>
Usage: {{ tuple "oslo_db" "internal" . | include "helm-toolkit.endpoints.hostname_namespaced_endpoint_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.hostname_namespaced_endpoint_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $context := index . 2 -}}
{{- $host := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_short_endpoint_lookup" -}}
{{- $namespace := tuple $type $context | include "helm-toolkit.endpoints.endpoint_namespace_lookup" -}}
{{- printf "%s.%s" $host $namespace -}}
{{- end -}}

{{/*
Fully qualified hostname: host_fqdn_override.<endpoint>.host when set (public hostnames),
else <host>.<namespace>.svc.<cluster_domain_suffix>.
Usage: {{ tuple "identity" "public" . | include "helm-toolkit.endpoints.hostname_fqdn_endpoint_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.hostname_fqdn_endpoint_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $context := index . 2 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $overrides := $endpointMap.host_fqdn_override | default dict -}}
{{- $override := index $overrides $endpoint | default $overrides.default -}}
{{- $overrideHost := "" -}}
{{- if kindIs "map" $override -}}
{{- $overrideHost = $override.host | default "" -}}
{{- else if kindIs "string" $override -}}
{{- $overrideHost = $override -}}
{{- end -}}
{{- if $overrideHost -}}
{{- $overrideHost -}}
{{- else -}}
{{- $namespaced := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_namespaced_endpoint_lookup" -}}
{{- $suffix := $context.Values.endpoints.cluster_domain_suffix | default "cluster.local" -}}
{{- printf "%s.svc.%s" $namespaced $suffix -}}
{{- end -}}
{{- end -}}

{{/*
Port number of a named port.
Usage: {{ tuple "image" "service" "api" . | include "helm-toolkit.endpoints.endpoint_port_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.endpoint_port_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $port := index . 2 -}}
{{- $context := index . 3 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $portMap := index ($endpointMap.port | default dict) $port -}}
{{- if not $portMap -}}
{{- fail (printf "helm-toolkit: endpoints.%s.port.%s is not defined" $type $port) -}}
{{- end -}}
{{- $value := index $portMap $endpoint | default $portMap.default -}}
{{- printf "%d" (int64 $value) -}}
{{- end -}}

{{/* Scheme of an endpoint: scheme.<endpoint> | scheme.default, or a plain string. */}}
{{- define "helm-toolkit.endpoints.keystone_endpoint_scheme_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $context := index . 3 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $scheme := $endpointMap.scheme | default "http" -}}
{{- if kindIs "map" $scheme -}}
{{- index $scheme $endpoint | default $scheme.default -}}
{{- else -}}
{{- $scheme -}}
{{- end -}}
{{- end -}}

{{/* Path of an endpoint: path.<endpoint> | path.default, or a plain string. */}}
{{- define "helm-toolkit.endpoints.keystone_endpoint_path_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $context := index . 3 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $path := $endpointMap.path | default "" -}}
{{- if kindIs "map" $path -}}
{{- index $path $endpoint | default $path.default | default "" -}}
{{- else -}}
{{- $path -}}
{{- end -}}
{{- end -}}

{{/* Keystone service name of an endpoint type (endpoints.<type>.name). */}}
{{- define "helm-toolkit.endpoints.keystone_endpoint_name_lookup" -}}
{{- $type := index . 0 -}}
{{- $context := index . 1 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $endpointMap.name -}}
{{- end -}}

{{/*
Full URI as registered in the Keystone catalog.
Usage: {{ tuple "identity" "internal" "api" . | include "helm-toolkit.endpoints.keystone_endpoint_uri_lookup" }}
-> http://keystone-api.openstack.svc.cluster.local:5000/v3
*/}}
{{- define "helm-toolkit.endpoints.keystone_endpoint_uri_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $port := index . 2 -}}
{{- $context := index . 3 -}}
{{- $scheme := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.keystone_endpoint_scheme_lookup" -}}
{{- $host := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_fqdn_endpoint_lookup" -}}
{{- $portNumber := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.endpoint_port_lookup" -}}
{{- $path := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.keystone_endpoint_path_lookup" -}}
{{- printf "%s://%s:%s%s" $scheme $host $portNumber $path -}}
{{- end -}}

{{/*
host:port, e.g. for memcached servers.
Usage: {{ tuple "oslo_cache" "internal" "memcache" . | include "helm-toolkit.endpoints.host_and_port_endpoint_uri_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.host_and_port_endpoint_uri_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $port := index . 2 -}}
{{- $context := index . 3 -}}
{{- $host := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_fqdn_endpoint_lookup" -}}
{{- $portNumber := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.endpoint_port_lookup" -}}
{{- printf "%s:%s" $host $portNumber -}}
{{- end -}}

{{/*
URI with credentials from endpoints.<type>.auth.<userclass>.
Usage: {{ tuple "oslo_db" "internal" "keystone" "mysql" . | include "helm-toolkit.endpoints.authenticated_endpoint_uri_lookup" }}
-> mysql+pymysql://keystone:password@mariadb.openstack.svc.cluster.local:3306/keystone
*/}}
{{- define "helm-toolkit.endpoints.authenticated_endpoint_uri_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $userclass := index . 2 -}}
{{- $port := index . 3 -}}
{{- $context := index . 4 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $auth := index ($endpointMap.auth | default dict) $userclass -}}
{{- if not $auth -}}
{{- fail (printf "helm-toolkit: endpoints.%s.auth.%s is not defined" $type $userclass) -}}
{{- end -}}
{{- $scheme := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.keystone_endpoint_scheme_lookup" -}}
{{- $host := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_fqdn_endpoint_lookup" -}}
{{- $portNumber := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.endpoint_port_lookup" -}}
{{- $path := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.keystone_endpoint_path_lookup" -}}
{{- printf "%s://%s:%s@%s:%s%s" $scheme ($auth.username | toString | urlquery) ($auth.password | toString | urlquery) $host $portNumber $path -}}
{{- end -}}

{{/*
oslo.messaging transport URL. With endpoints.<type>.statefulset.{name,replicas} set, one
host per StatefulSet member (<name>-<i>.<host>.<namespace>.svc.<suffix>), as OSH does for
RabbitMQ clusters; otherwise the Service FQDN.
Usage: {{ tuple "oslo_messaging" "internal" "nova" "amqp" . | include "helm-toolkit.endpoints.authenticated_transport_endpoint_uri_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.authenticated_transport_endpoint_uri_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $userclass := index . 2 -}}
{{- $port := index . 3 -}}
{{- $context := index . 4 -}}
{{- $endpointMap := tuple $type $context | include "helm-toolkit.endpoints._endpoint_map" | fromYaml -}}
{{- $auth := index ($endpointMap.auth | default dict) $userclass -}}
{{- if not $auth -}}
{{- fail (printf "helm-toolkit: endpoints.%s.auth.%s is not defined" $type $userclass) -}}
{{- end -}}
{{- $scheme := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.keystone_endpoint_scheme_lookup" -}}
{{- $portNumber := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.endpoint_port_lookup" -}}
{{- $path := tuple $type $endpoint $port $context | include "helm-toolkit.endpoints.keystone_endpoint_path_lookup" -}}
{{- $creds := printf "%s:%s" ($auth.username | toString | urlquery) ($auth.password | toString | urlquery) -}}
{{- $hosts := list -}}
{{- $sts := $endpointMap.statefulset -}}
{{- if and $sts (kindIs "map" $sts) $sts.replicas -}}
{{- $namespaced := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_namespaced_endpoint_lookup" -}}
{{- $suffix := $context.Values.endpoints.cluster_domain_suffix | default "cluster.local" -}}
{{- range $i := until (int $sts.replicas) -}}
{{- $hosts = append $hosts (printf "%s@%s-%d.%s.svc.%s:%s" $creds $sts.name $i $namespaced $suffix $portNumber) -}}
{{- end -}}
{{- else -}}
{{- $host := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_fqdn_endpoint_lookup" -}}
{{- $hosts = append $hosts (printf "%s@%s:%s" $creds $host $portNumber) -}}
{{- end -}}
{{- printf "%s://%s%s" $scheme (join "," $hosts) $path -}}
{{- end -}}

{{/*
<namespace>:<service>, the form kubernetes-entrypoint expects in DEPENDENCY_SERVICE.
Usage: {{ tuple "oslo_db" "internal" . | include "helm-toolkit.endpoints.service_name_endpoint_with_namespace_lookup" }}
*/}}
{{- define "helm-toolkit.endpoints.service_name_endpoint_with_namespace_lookup" -}}
{{- $type := index . 0 -}}
{{- $endpoint := index . 1 -}}
{{- $context := index . 2 -}}
{{- $host := tuple $type $endpoint $context | include "helm-toolkit.endpoints.hostname_short_endpoint_lookup" -}}
{{- $namespace := tuple $type $context | include "helm-toolkit.endpoints.endpoint_namespace_lookup" -}}
{{- printf "%s:%s" $namespace $host -}}
{{- end -}}
