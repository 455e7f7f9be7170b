{{/*
Common frame of the Jobs helm-toolkit renders for the service charts: ServiceAccount (+RBAC
for the dependency check), Job metadata with the chart's hook annotations, the `init`
dependency container and the job node selector. Internal to helm-toolkit.
Parameters (dict): envAll, serviceName, jobSuffix ("db-init"), depKey ("db_init"),
containers (YAML list text), volumes (YAML list text), and the optional jobAnnotations,
jobLabels, nodeSelector, backoffLimit, activeDeadlineSeconds.
*/}}
{{- define "helm-toolkit.manifests._job" -}}
{{- $envAll := index . "envAll" -}}
{{- $serviceName := index . "serviceName" -}}
{{- $serviceNamePretty := $serviceName | replace "_" "-" -}}
{{- $jobSuffix := index . "jobSuffix" -}}
{{- $depKey := index . "depKey" -}}
{{- $jobAnnotations := index . "jobAnnotations" -}}
{{- $jobLabels := index . "jobLabels" -}}
{{- $nodeSelector := index . "nodeSelector" | default (dict $envAll.Values.labels.job.node_selector_key $envAll.Values.labels.job.node_selector_value) -}}
{{- $backoffLimit := index . "backoffLimit" | default 1000 -}}
{{- $activeDeadlineSeconds := index . "activeDeadlineSeconds" -}}
{{- $jobName := printf "%s-%s" $serviceNamePretty $jobSuffix -}}
{{ tuple $envAll $depKey $jobName | include "helm-toolkit.snippets.kubernetes_pod_rbac_serviceaccount" }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $jobName }}
  annotations:
    helm.sh/hook-delete-policy: before-hook-creation
{{- if $jobAnnotations }}
{{ toYaml $jobAnnotations | indent 4 }}
{{- end }}
  labels:
{{ tuple $envAll $serviceName $jobSuffix | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 4 }}
{{- if $jobLabels }}
{{ toYaml $jobLabels | indent 4 }}
{{- end }}
spec:
  backoffLimit: {{ $backoffLimit }}
{{- if $activeDeadlineSeconds }}
  activeDeadlineSeconds: {{ $activeDeadlineSeconds }}
{{- end }}
  template:
    metadata:
      labels:
{{ tuple $envAll $serviceName $jobSuffix | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 8 }}
      annotations:
{{ tuple $envAll | include "helm-toolkit.snippets.release_uuid" | indent 8 }}
    spec:
      serviceAccountName: {{ $jobName }}
      restartPolicy: OnFailure
      nodeSelector:
{{ toYaml $nodeSelector | indent 8 }}
      initContainers:
{{ tuple $envAll $depKey list | include "helm-toolkit.snippets.kubernetes_entrypoint_init_container" | indent 8 }}
      containers:
{{ index . "containers" | indent 8 }}
      volumes:
{{ index . "volumes" | indent 8 }}
{{- end -}}

{{/* Job hook annotations of a chart when helm3_hook is on. Usage: {{ tuple $envAll "-5" | include "helm-toolkit.snippets.helm3_hook_annotations" | fromYaml }} */}}
{{- define "helm-toolkit.snippets.helm3_hook_annotations" -}}
{{- $envAll := index . 0 -}}
{{- $weight := index . 1 -}}
{{- if $envAll.Values.helm3_hook -}}
helm.sh/hook: post-install,post-upgrade
helm.sh/hook-weight: {{ $weight | quote }}
{{- end -}}
{{- end -}}
