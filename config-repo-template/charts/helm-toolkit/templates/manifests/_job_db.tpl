{{/*
Job <service>-db-init: creates the service's database(s) and user(s) on MariaDB.
Each entry of dbsToInit is {adminSecret, configFile, logConfigFile, configDbSection,
configDbKey} (inputType oslo: the user connection is read from the service's config file)
or {inputType: secret, adminSecret, userSecret}. One container per database.
Usage:
  {{- $dbInitJob := dict "envAll" . "serviceName" "keystone" -}}
  {{ $dbInitJob | include "helm-toolkit.manifests.job_db_init_mysql" }}
*/}}
{{- define "helm-toolkit.manifests.job_db_init_mysql" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $configMapEtc := index . "configMapEtc" | default (printf "%s-etc" $serviceNamePretty) -}}
{{- $dbToInit := index . "dbToInit" | default (dict "adminSecret" $envAll.Values.secrets.oslo_db.admin "configFile" (printf "/etc/%s/%s.conf" $serviceName $serviceName) "logConfigFile" (printf "/etc/%s/logging.conf" $serviceName) "configDbSection" "database" "configDbKey" "connection") -}}
{{- $dbsToInit := index . "dbsToInit" | default (list $dbToInit) -}}
{{- $containers := list -}}
{{- $needsEtc := false -}}
{{- range $i, $db := $dbsToInit -}}
{{- $type := $db.inputType | default "oslo" -}}
{{- $env := list (dict "name" "ROOT_DB_CONNECTION" "valueFrom" (dict "secretKeyRef" (dict "name" $db.adminSecret "key" "DB_CONNECTION"))) -}}
{{- $mounts := list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "db-init-sh" "mountPath" "/tmp/db-init.py" "subPath" "db-init.py" "readOnly" true) -}}
{{- if eq $type "oslo" -}}
{{- $needsEtc = true -}}
{{- $env = concat $env (list (dict "name" "OPENSTACK_CONFIG_FILE" "value" $db.configFile) (dict "name" "OPENSTACK_CONFIG_DB_SECTION" "value" $db.configDbSection) (dict "name" "OPENSTACK_CONFIG_DB_KEY" "value" $db.configDbKey)) -}}
{{- $mounts = concat $mounts (list (dict "name" "etc-service" "mountPath" (dir $db.configFile)) (dict "name" "db-init-conf" "mountPath" $db.configFile "subPath" (base $db.configFile) "readOnly" true) (dict "name" "db-init-conf" "mountPath" $db.logConfigFile "subPath" (base $db.logConfigFile) "readOnly" true)) -}}
{{- else -}}
{{- $env = append $env (dict "name" "DB_CONNECTION" "valueFrom" (dict "secretKeyRef" (dict "name" $db.userSecret "key" "DB_CONNECTION"))) -}}
{{- end -}}
{{- $c := dict "name" (printf "%s-db-init-%d" $serviceNamePretty $i) "image" $envAll.Values.images.tags.db_init "imagePullPolicy" $envAll.Values.images.pull_policy "env" $env "command" (list "/tmp/db-init.py") "volumeMounts" $mounts -}}
{{- if $envAll.Values.pod.resources.enabled -}}
{{- with dig "jobs" "db_init" dict $envAll.Values.pod.resources -}}{{- $_ := set $c "resources" . -}}{{- end -}}
{{- end -}}
{{- $containers = append $containers $c -}}
{{- end -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "db-init-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) -}}
{{- if $needsEtc -}}
{{- $volumes = concat $volumes (list (dict "name" "etc-service" "emptyDir" dict) (dict "name" "db-init-conf" "secret" (dict "secretName" $configMapEtc "defaultMode" 292))) -}}
{{- end -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "db-init" "depKey" "db_init" "containers" (toYaml $containers) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}

{{/*
Job <service>-db-sync: runs the service's schema migration (/tmp/db-sync.sh from the
chart's bin ConfigMap) with the service configuration mounted.
Optional: dbToSync {configFile, logConfigFile, image}, podVolMounts, podVols, etcSources.
*/}}
{{- define "helm-toolkit.manifests.job_db_sync" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $configMapBin := index . "configMapBin" | default (printf "%s-bin" $serviceNamePretty) -}}
{{- $configMapEtc := index . "configMapEtc" | default (printf "%s-etc" $serviceNamePretty) -}}
{{- $dbToSync := index . "dbToSync" | default (dict "configFile" (printf "/etc/%s/%s.conf" $serviceName $serviceName) "logConfigFile" (printf "/etc/%s/logging.conf" $serviceName) "image" (index $envAll.Values.images.tags (printf "%s_db_sync" $serviceName))) -}}
{{- $mounts := list (dict "name" "pod-tmp" "mountPath" "/tmp") (dict "name" "db-sync-sh" "mountPath" "/tmp/db-sync.sh" "subPath" "db-sync.sh" "readOnly" true) (dict "name" "etc-service" "mountPath" (dir $dbToSync.configFile)) (dict "name" "db-sync-conf" "mountPath" $dbToSync.configFile "subPath" (base $dbToSync.configFile) "readOnly" true) (dict "name" "db-sync-conf" "mountPath" $dbToSync.logConfigFile "subPath" (base $dbToSync.logConfigFile) "readOnly" true) -}}
{{- $mounts = concat $mounts (index . "podVolMounts" | default list) -}}
{{- $c := dict "name" (printf "%s-db-sync" $serviceNamePretty) "image" $dbToSync.image "imagePullPolicy" $envAll.Values.images.pull_policy "command" (list "/tmp/db-sync.sh") "volumeMounts" $mounts -}}
{{- with index . "env" -}}{{- $_ := set $c "env" . -}}{{- end -}}
{{- if $envAll.Values.pod.resources.enabled -}}
{{- with dig "jobs" "db_sync" dict $envAll.Values.pod.resources -}}{{- $_ := set $c "resources" . -}}{{- end -}}
{{- end -}}
{{- $volumes := list (dict "name" "pod-tmp" "emptyDir" dict) (dict "name" "etc-service" "emptyDir" dict) (dict "name" "db-sync-sh" "configMap" (dict "name" $configMapBin "defaultMode" 365)) (dict "name" "db-sync-conf" "secret" (dict "secretName" $configMapEtc "defaultMode" 292)) -}}
{{- $volumes = concat $volumes (index . "podVols" | default list) -}}
{{- $params := dict "envAll" $envAll "serviceName" $serviceName "jobSuffix" "db-sync" "depKey" "db_sync" "containers" (toYaml (list $c)) "volumes" (toYaml $volumes) -}}
{{- range $k := list "jobAnnotations" "jobLabels" "nodeSelector" "backoffLimit" "activeDeadlineSeconds" -}}
{{- $_ := set $params $k (index $ $k) -}}
{{- end -}}
{{ include "helm-toolkit.manifests._job" $params }}
{{- end -}}
