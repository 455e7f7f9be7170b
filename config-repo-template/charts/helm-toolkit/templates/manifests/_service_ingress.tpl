{{/*
The Service named after the public (`default`/`public`) hostname of an API. In OSH it used
to front the ingress controller; since the charts stopped shipping Ingress objects it
selects the API pods directly and the operator's load balancer targets it.
Usage: {{ dict "envAll" . "backendServiceType" "image" "backendPort" "g-api" "application" "glance" "component" "api" | include "helm-toolkit.manifests.service_ingress" }}
*/}}
{{- define "helm-toolkit.manifests.service_ingress" -}}
{{- $envAll := index . "envAll" -}}
{{- $type := index . "backendServiceType" -}}
{{- $portName := index . "backendPortName" | default "api" -}}
{{- $backendPort := index . "backendPort" -}}
{{- $application := index . "application" -}}
{{- $component := index . "component" | default "api" -}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ tuple $type "public" $envAll | include "helm-toolkit.endpoints.hostname_short_endpoint_lookup" }}
  labels:
{{ tuple $envAll $application $component | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 4 }}
spec:
  type: ClusterIP
  ports:
    - name: http
      port: {{ tuple $type "public" $portName $envAll | include "helm-toolkit.endpoints.endpoint_port_lookup" }}
      protocol: TCP
      targetPort: {{ $backendPort }}
  selector:
{{ tuple $envAll $application $component | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 4 }}
{{- end -}}

{{/* extraObjects of a chart (OSH templates/extra-manifests.yaml). */}}
{{- define "helm-toolkit.manifests.extra_objects" -}}
{{- $envAll := . -}}
{{- range $obj := $envAll.Values.extraObjects | default list }}
---
{{- if kindIs "string" $obj }}
{{ tpl $obj $envAll }}
{{- else }}
{{ tpl (toYaml $obj) $envAll }}
{{- end }}
{{- end }}
{{- end -}}
