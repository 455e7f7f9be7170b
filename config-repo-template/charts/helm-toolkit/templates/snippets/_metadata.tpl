{{/*
Labels every OSH object and pod carries; also used as selectors.
Usage: {{ tuple $envAll "keystone" "api" | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 4 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_metadata_labels" -}}
{{- $envAll := index . 0 -}}
{{- $application := index . 1 -}}
{{- $component := index . 2 -}}
release_group: {{ $envAll.Values.release_group | default $envAll.Release.Name }}
application: {{ $application }}
component: {{ $component }}
{{- end -}}

{{/* Annotation OSH stamps on workloads; empty unless .Values.release_uuid is set. */}}
{{- define "helm-toolkit.snippets.release_uuid" -}}
{{- $envAll := index . 0 -}}
openstackhelm.openstack.org/release_uuid: {{ $envAll.Values.release_uuid | default "" | quote }}
{{- end -}}

{{/*
nodeSelector body from a labels group ({node_selector_key, node_selector_value}).
Usage: nodeSelector:
{{ tuple $envAll $envAll.Values.labels.api | include "helm-toolkit.snippets.kubernetes_node_selector" | indent 8 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_node_selector" -}}
{{- $labels := index . 1 -}}
{{ $labels.node_selector_key }}: {{ $labels.node_selector_value | quote }}
{{- end -}}

{{/*
Pod anti-affinity between replicas of one component (pod.affinity.anti.*).
Usage: affinity:
{{ tuple $envAll "keystone" "api" | include "helm-toolkit.snippets.kubernetes_pod_anti_affinity" | indent 8 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_pod_anti_affinity" -}}
{{- $envAll := index . 0 -}}
{{- $application := index . 1 -}}
{{- $component := index . 2 -}}
{{- $anti := $envAll.Values.pod.affinity.anti -}}
{{- $type := index $anti.type $component | default $anti.type.default -}}
{{- $topologyKey := index $anti.topologyKey $component | default $anti.topologyKey.default -}}
{{- $weight := index ($anti.weight | default dict) $component | default ($anti.weight | default dict).default | default 10 -}}
{{- $selector := dict "matchExpressions" (list (dict "key" "release_group" "operator" "In" "values" (list ($envAll.Values.release_group | default $envAll.Release.Name))) (dict "key" "application" "operator" "In" "values" (list $application)) (dict "key" "component" "operator" "In" "values" (list $component))) -}}
podAntiAffinity:
  {{ $type }}:
{{- if eq $type "preferredDuringSchedulingIgnoredDuringExecution" }}
    - podAffinityTerm:
        labelSelector:
{{ toYaml $selector | indent 10 }}
        topologyKey: {{ $topologyKey }}
      weight: {{ $weight }}
{{- else }}
    - labelSelector:
{{ toYaml $selector | indent 8 }}
      topologyKey: {{ $topologyKey }}
{{- end }}
{{- end -}}

{{/*
resources: block when pod.resources.enabled.
Usage: {{ tuple $envAll $envAll.Values.pod.resources.api | include "helm-toolkit.snippets.kubernetes_resources" | indent 10 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_resources" -}}
{{- $envAll := index . 0 -}}
{{- $component := index . 1 -}}
{{- if and $envAll.Values.pod.resources.enabled $component -}}
resources:
{{- with $component.limits }}
  limits:
{{ toYaml . | indent 4 }}
{{- end }}
{{- with $component.requests }}
  requests:
{{ toYaml . | indent 4 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
Deployment rollout settings from pod.lifecycle.upgrades.deployments.
Usage: {{ tuple $envAll | include "helm-toolkit.snippets.kubernetes_upgrades_deployment" | indent 2 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_upgrades_deployment" -}}
{{- $envAll := index . 0 -}}
{{- $upgrades := $envAll.Values.pod.lifecycle.upgrades.deployments -}}
revisionHistoryLimit: {{ $upgrades.revision_history }}
strategy:
  type: {{ $upgrades.pod_replacement_strategy }}
{{- if eq $upgrades.pod_replacement_strategy "RollingUpdate" }}
  rollingUpdate:
    maxUnavailable: {{ $upgrades.rolling_update.max_unavailable }}
    maxSurge: {{ $upgrades.rolling_update.max_surge }}
{{- end }}
{{- end -}}

{{/*
DaemonSet rollout settings from pod.lifecycle.upgrades.daemonsets.<component>.
Usage: {{ tuple $envAll "compute" | include "helm-toolkit.snippets.kubernetes_upgrades_daemonset" | indent 2 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_upgrades_daemonset" -}}
{{- $envAll := index . 0 -}}
{{- $component := index . 1 -}}
{{- $daemonsets := $envAll.Values.pod.lifecycle.upgrades.daemonsets -}}
{{- $upgrade := index $daemonsets $component | default dict -}}
{{- if $upgrade.enabled -}}
minReadySeconds: {{ $upgrade.min_ready_seconds | default 0 }}
updateStrategy:
  type: {{ $daemonsets.pod_replacement_strategy | default "RollingUpdate" }}
{{- if eq ($daemonsets.pod_replacement_strategy | default "RollingUpdate") "RollingUpdate" }}
  rollingUpdate:
    maxUnavailable: {{ $upgrade.max_unavailable }}
{{- end }}
{{- else -}}
updateStrategy:
  type: {{ $daemonsets.pod_replacement_strategy | default "RollingUpdate" }}
{{- end }}
{{- end -}}

{{/*
A container probe from a template merged with pod.probes.<component>.<container>.<type>.params;
nothing when that probe has enabled: false.
Usage: {{ dict "envAll" $envAll "component" "api" "container" "keystone-api" "type" "readiness" "probeTemplate" (include "keystoneApiReadinessProbeTemplate" $envAll | fromYaml) | include "helm-toolkit.snippets.kubernetes_probe" | indent 10 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_probe" -}}
{{- $envAll := index . "envAll" -}}
{{- $component := index . "component" -}}
{{- $container := index . "container" -}}
{{- $type := index . "type" -}}
{{- $template := index . "probeTemplate" -}}
{{- $probes := $envAll.Values.pod.probes | default dict -}}
{{- $opts := dig $component $container $type (dict "enabled" true) $probes -}}
{{- if $opts.enabled -}}
{{- $probe := mergeOverwrite (deepCopy $template) ($opts.params | default dict) -}}
{{ $type }}Probe:
{{ toYaml $probe | indent 2 }}
{{- end -}}
{{- end -}}

{{/*
image + imagePullPolicy of a container.
Usage: {{ tuple $envAll "keystone_api" | include "helm-toolkit.snippets.image" | indent 10 }}
*/}}
{{- define "helm-toolkit.snippets.image" -}}
{{- $envAll := index . 0 -}}
{{- $name := index . 1 -}}
{{- $image := index $envAll.Values.images.tags $name -}}
{{- if not $image -}}
{{- fail (printf "helm-toolkit: images.tags.%s is not set" $name) -}}
{{- end -}}
image: {{ $image | quote }}
imagePullPolicy: {{ $envAll.Values.images.pull_policy }}
{{- end -}}

{{/* Optional pod tolerations (pod.tolerations.<application>.{enabled,tolerations}). */}}
{{- define "helm-toolkit.snippets.kubernetes_tolerations" -}}
{{- $envAll := index . 0 -}}
{{- $application := index . 1 -}}
{{- $tol := dig $application (dict) ($envAll.Values.pod.tolerations | default dict) -}}
{{- if $tol.enabled -}}
tolerations:
{{ toYaml $tol.tolerations | indent 2 }}
{{- end -}}
{{- end -}}
