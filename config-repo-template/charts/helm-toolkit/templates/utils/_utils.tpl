{{/* Join a list with commas; an empty or null list gives "". */}}
{{- define "helm-toolkit.utils.joinListWithComma" -}}
{{- if . -}}{{- join "," . -}}{{- end -}}
{{- end -}}

{{/* Join a list with spaces. */}}
{{- define "helm-toolkit.utils.joinListWithSpace" -}}
{{- if . -}}{{- join " " . -}}{{- end -}}
{{- end -}}

{{/*
sha256 of another template file of the calling chart, rendered with the caller's context.
Pod templates carry it as `configmap-bin-hash` / `configmap-etc-hash`, so any change of a
rendered ConfigMap/Secret rolls the pods.
Usage: {{ tuple "configmap-etc.yaml" . | include "helm-toolkit.utils.hash" }}
*/}}
{{- define "helm-toolkit.utils.hash" -}}
{{- $name := index . 0 -}}
{{- $context := index . 1 -}}
{{- $path := printf "%s/%s" (dir $context.Template.Name) $name -}}
{{- include $path $context | sha256sum | quote -}}
{{- end -}}

{{/* One INI value: whole floats (Helm parses YAML numbers as float64) print as integers. */}}
{{- define "helm-toolkit.utils._ini_value" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) -}}
{{- printf "%d" (int64 .) -}}
{{- else -}}
{{- printf "%v" . -}}
{{- end -}}
{{- end -}}

{{/*
Nested mapping section -> key -> value rendered as oslo.config INI text. Lists are joined
with commas; a value {type: multistring, values: [...]} repeats the key once per value;
null values are left out. Sections and keys come out sorted, so the text is deterministic.
Usage: {{ include "helm-toolkit.utils.to_oslo_conf" .Values.conf.keystone }}
*/}}
{{- define "helm-toolkit.utils.to_oslo_conf" -}}
{{- $lines := list -}}
{{- range $section, $values := . -}}
{{- if kindIs "map" $values -}}
{{- $lines = append $lines (printf "[%s]" $section) -}}
{{- range $key, $value := $values -}}
{{- if kindIs "slice" $value -}}
{{- $lines = append $lines (printf "%s = %s" $key (include "helm-toolkit.utils.joinListWithComma" $value)) -}}
{{- else if kindIs "map" $value -}}
{{- if eq (toString $value.type) "multistring" -}}
{{- range $v := $value.values -}}
{{- $lines = append $lines (printf "%s = %s" $key (include "helm-toolkit.utils._ini_value" $v)) -}}
{{- end -}}
{{- end -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- $lines = append $lines (printf "%s = %s" $key (include "helm-toolkit.utils._ini_value" $value)) -}}
{{- end -}}
{{- end -}}
{{- $lines = append $lines "" -}}
{{- end -}}
{{- end -}}
{{- join "\n" $lines -}}
{{- end -}}

{{/* Plain INI (paste files, agent configs): same rendering as to_oslo_conf. */}}
{{- define "helm-toolkit.utils.to_ini" -}}
{{- include "helm-toolkit.utils.to_oslo_conf" . -}}
{{- end -}}

{{/* key=value lines (shell env files), sorted. */}}
{{- define "helm-toolkit.utils.to_kv_list" -}}
{{- range $key, $value := . }}
{{ $key }}={{ include "helm-toolkit.utils._ini_value" $value }}
{{- end -}}
{{- end -}}

{{/*
Resolve the dependencies of one component: dependencies.static.<key>, plus, for each
mixin in dependencyMixinParam (a string or list, e.g. .Values.network.backend),
dependencies.dynamic.targeted.<mixin>.<key>. Lists under the same key are concatenated.
Returns YAML.
Usage: {{ dict "envAll" $envAll "dependencyKey" "api" "dependencyMixinParam" $backend | include "helm-toolkit.utils.dependency_resolver" | fromYaml }}
*/}}
{{- define "helm-toolkit.utils.dependency_resolver" -}}
{{- $envAll := index . "envAll" -}}
{{- $key := index . "dependencyKey" -}}
{{- $mixinParam := index . "dependencyMixinParam" -}}
{{- $dependencies := $envAll.Values.dependencies | default dict -}}
{{- $static := index ($dependencies.static | default dict) $key | default dict -}}
{{- $deps := deepCopy $static -}}
{{- $mixins := list -}}
{{- if kindIs "string" $mixinParam -}}
{{- $mixins = list $mixinParam -}}
{{- else if kindIs "slice" $mixinParam -}}
{{- $mixins = $mixinParam -}}
{{- end -}}
{{- $targeted := dig "dynamic" "targeted" dict $dependencies -}}
{{- range $mixin := $mixins -}}
{{- $extra := index (index $targeted $mixin | default dict) $key | default dict -}}
{{- range $depType, $list := $extra -}}
{{- if $list -}}
{{- $_ := set $deps $depType (concat (index $deps $depType | default list) $list) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $deps -}}
{{- end -}}

{{/*
DaemonSet overrides. OSH renders one DaemonSet per host/label override plus a
`<name>-default` one for the remaining nodes; this mirror renders only the default one.
Usage: {{ list $daemonset $daemonsetYaml $configMapName $serviceAccountName . | include "helm-toolkit.utils.daemonset_overrides" }}
*/}}
{{- define "helm-toolkit.utils.daemonset_overrides" -}}
{{- $daemonsetYaml := index . 1 -}}
{{- $_ := set $daemonsetYaml.metadata "name" (printf "%s-default" $daemonsetYaml.metadata.name) -}}
---
{{ toYaml $daemonsetYaml }}
{{- end -}}
