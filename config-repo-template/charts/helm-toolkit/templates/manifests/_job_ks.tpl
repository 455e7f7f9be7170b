{{/* Attach pod.resources.jobs.<key> to a container dict when resources are enabled. */}}
{{- define "helm-toolkit.manifests._job_resources" -}}
{{- $envAll := index . 0 -}}
{{- $container := index . 1 -}}
{{- $key := index . 2 -}}
{{- if $envAll.Values.pod.resources.enabled -}}
{{- with dig "jobs" $key dict $envAll.Values.pod.resources -}}{{- $_ := set $container "resources" . -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Job <service>-ks-service: registers the service type(s) in the Keystone catalog.
Usage: {{ dict "envAll" . "serviceName" "glance" "serviceTypes" (tuple "image") | include "helm-toolkit.manifests.job_ks_service" }}
*/}}
{{- define "helm-toolkit.manifests.job_ks_service" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $containers := list -}}
{{- range $type := index . "serviceTypes" -}}
{{- $env := include "helm-toolkit.snippets.keystone_openrc_env_vars" (dict "ksUserSecret" $envAll.Values.secrets.identity.admin) | fromYamlArray -}}
{{- $env = concat $env (list (dict "name" "OS_SERVICE_NAME" "value" (tuple $type $envAll | include "helm-toolkit.endpoints.keystone_endpoint_name_lookup")) (dict "name" "OS_SERVICE_TYPE" "value" $type)) -}}
{{- $c := dict "name" (printf "%s-ks-service-registration" ($type | replace "_" "-")) "image" $envAll.Values.images.tags.ks_service "imagePullPolicy" $envAll.Values.images.pull_policy "command" (list "/bin/bash" "-c" "/tmp/ks-service.sh") "env" $env "volumeMounts" (list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "ks-service-sh" "mountPath" "/tmp/ks-service.sh" "subPath" "ks-service.sh" "readOnly" true)) -}}
{{- tuple $envAll $c "ks_service" | include "helm-toolkit.manifests._job_resources" -}}
{{- $containers = append $containers $c -}}
{{- end -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "ks-service-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "ks-service" "depKey" "ks_service" "containers" (toYaml $containers) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}

{{/*
Job <service>-ks-endpoints: registers admin/internal/public endpoints of each service type.
Usage: {{ dict "envAll" . "serviceName" "glance" "serviceTypes" (tuple "image") | include "helm-toolkit.manifests.job_ks_endpoints" }}
*/}}
{{- define "helm-toolkit.manifests.job_ks_endpoints" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $containers := list -}}
{{- range $type := index . "serviceTypes" -}}
{{- range $interface := list "admin" "internal" "public" -}}
{{- $env := include "helm-toolkit.snippets.keystone_openrc_env_vars" (dict "ksUserSecret" $envAll.Values.secrets.identity.admin) | fromYamlArray -}}
{{- $env = concat $env (list (dict "name" "OS_SVC_ENDPOINT" "value" $interface) (dict "name" "OS_SERVICE_NAME" "value" (tuple $type $envAll | include "helm-toolkit.endpoints.keystone_endpoint_name_lookup")) (dict "name" "OS_SERVICE_TYPE" "value" $type) (dict "name" "OS_SERVICE_ENDPOINT" "value" (tuple $type $interface "api" $envAll | include "helm-toolkit.endpoints.keystone_endpoint_uri_lookup"))) -}}
{{- $c := dict "name" (printf "%s-ks-endpoints-%s" ($type | replace "_" "-") $interface) "image" $envAll.Values.images.tags.ks_endpoints "imagePullPolicy" $envAll.Values.images.pull_policy "command" (list "/bin/bash" "-c" "/tmp/ks-endpoints.sh") "env" $env "volumeMounts" (list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "ks-endpoints-sh" "mountPath" "/tmp/ks-endpoints.sh" "subPath" "ks-endpoints.sh" "readOnly" true)) -}}
{{- tuple $envAll $c "ks_endpoints" | include "helm-toolkit.manifests._job_resources" -}}
{{- $containers = append $containers $c -}}
{{- end -}}
{{- end -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "ks-endpoints-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "ks-endpoints" "depKey" "ks_endpoints" "containers" (toYaml $containers) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}

{{/*
Job <service>-ks-user: creates the service user(s) and grants their roles.
serviceUsers defaults to (list serviceName); each user reads secrets.identity.<user> and
endpoints.identity.auth.<user>.role.
Usage: {{ dict "envAll" . "serviceName" "glance" | include "helm-toolkit.manifests.job_ks_user" }}
*/}}
{{- define "helm-toolkit.manifests.job_ks_user" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $serviceUsers := index . "serviceUsers" | default (list (index . "serviceUser" | default $serviceName)) -}}
{{- $containers := list -}}
{{- range $user := $serviceUsers -}}
{{- $auth := index $envAll.Values.endpoints.identity.auth $user -}}
{{- if not $auth -}}
{{- fail (printf "%s: endpoints.identity.auth.%s is not defined" $serviceName $user) -}}
{{- end -}}
{{- $env := include "helm-toolkit.snippets.keystone_openrc_env_vars" (dict "ksUserSecret" $envAll.Values.secrets.identity.admin) | fromYamlArray -}}
{{- $env = concat $env (list (dict "name" "SERVICE_OS_SERVICE_NAME" "value" $serviceName)) -}}
{{- $env = concat $env (include "helm-toolkit.snippets.keystone_user_create_env_vars" (dict "ksUserSecret" (index $envAll.Values.secrets.identity $user)) | fromYamlArray) -}}
{{- $env = append $env (dict "name" "SERVICE_OS_ROLES" "value" ($auth.role | default "admin" | toString)) -}}
{{- $c := dict "name" (printf "%s-ks-user" ($user | replace "_" "-")) "image" $envAll.Values.images.tags.ks_user "imagePullPolicy" $envAll.Values.images.pull_policy "command" (list "/bin/bash" "-c" "/tmp/ks-user.sh") "env" $env "volumeMounts" (list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "ks-user-sh" "mountPath" "/tmp/ks-user.sh" "subPath" "ks-user.sh" "readOnly" true)) -}}
{{- tuple $envAll $c "ks_user" | include "helm-toolkit.manifests._job_resources" -}}
{{- $containers = append $containers $c -}}
{{- end -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "ks-user-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "ks-user" "depKey" "ks_user" "containers" (toYaml $containers) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}

{{/*
Job <service>-rabbit-init: creates the service's RabbitMQ vhost and user.
Usage: {{ dict "envAll" . "serviceName" "nova" | include "helm-toolkit.manifests.job_rabbit_init" }}
*/}}
{{- define "helm-toolkit.manifests.job_rabbit_init" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $serviceUser := index . "serviceUser" | default $serviceName -}}
{{- $env := list (dict "name" "RABBITMQ_ADMIN_CONNECTION" "valueFrom" (dict "secretKeyRef" (dict "name" $envAll.Values.secrets.oslo_messaging.admin "key" "RABBITMQ_CONNECTION"))) (dict "name" "RABBITMQ_USER_CONNECTION" "valueFrom" (dict "secretKeyRef" (dict "name" (index $envAll.Values.secrets.oslo_messaging $serviceUser) "key" "RABBITMQ_CONNECTION"))) -}}
{{- $c := dict "name" "rabbit-init" "image" $envAll.Values.images.tags.rabbit_init "imagePullPolicy" $envAll.Values.images.pull_policy "command" (list "/tmp/rabbit-init.sh") "env" $env "volumeMounts" (list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "rabbit-init-sh" "mountPath" "/tmp/rabbit-init.sh" "subPath" "rabbit-init.sh" "readOnly" true)) -}}
{{- tuple $envAll $c "rabbit_init" | include "helm-toolkit.manifests._job_resources" -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "rabbit-init-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "rabbit-init" "depKey" "rabbit_init" "containers" (toYaml (list $c)) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}

{{/*
Job <service>-bootstrap: runs .Values.bootstrap.script (rendered into bootstrap.sh of the
chart's bin ConfigMap) with the openrc of keystoneUser (default admin).
Usage: {{ dict "envAll" . "serviceName" "glance" "keystoneUser" .Values.bootstrap.ks_user | include "helm-toolkit.manifests.job_bootstrap" }}
*/}}
{{- define "helm-toolkit.manifests.job_bootstrap" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $configMapEtc := index . "configMapEtc" | default (printf "%s-etc" $serviceNamePretty) -}}
{{- $keystoneUser := index . "keystoneUser" | default "admin" -}}
{{- $configFile := index . "configFile" | default (printf "/etc/%s/%s.conf" $serviceName $serviceName) -}}
{{- $logConfigFile := index . "logConfigFile" | default (printf "/etc/%s/logging.conf" $serviceName) -}}
{{- $openrc := true -}}
{{- if hasKey . "openrc" -}}{{- $openrc = index . "openrc" -}}{{- end -}}
{{- $env := list -}}
{{- if $openrc -}}
{{- $env = include "helm-toolkit.snippets.keystone_openrc_env_vars" (dict "ksUserSecret" (index $envAll.Values.secrets.identity $keystoneUser)) | fromYamlArray -}}
{{- end -}}
{{- $mounts := list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "bootstrap-sh" "mountPath" "/tmp/bootstrap.sh" "subPath" "bootstrap.sh" "readOnly" true) (dict "name" "etc-service" "mountPath" (dir $configFile)) (dict "name" "bootstrap-conf" "mountPath" $configFile "subPath" (base $configFile) "readOnly" true) (dict "name" "bootstrap-conf" "mountPath" $logConfigFile "subPath" (base $logConfigFile) "readOnly" true) -}}
{{- $mounts = concat $mounts (index . "podVolMounts" | default list) -}}
{{- $c := dict "name" "bootstrap" "image" $envAll.Values.images.tags.bootstrap "imagePullPolicy" $envAll.Values.images.pull_policy "command" (list "/tmp/bootstrap.sh") "env" $env "volumeMounts" $mounts -}}
{{- tuple $envAll $c "bootstrap" | include "helm-toolkit.manifests._job_resources" -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "etc-service" "emptyDir" dict) (dict "name" "bootstrap-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) (dict "name" "bootstrap-conf" "secret" (dict "secretName" $configMapEtc "defaultMode" 292)) -}}
{{- $volumes = concat $volumes (index . "podVols" | default list) -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "bootstrap" "depKey" "bootstrap" "containers" (toYaml (list $c)) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}
