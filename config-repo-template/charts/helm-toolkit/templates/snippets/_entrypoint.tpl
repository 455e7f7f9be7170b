{{/* Resolved dependencies of a component (YAML), with .Values.network.backend as mixin. */}}
{{- define "helm-toolkit.snippets._component_dependencies" -}}
{{- $envAll := index . 0 -}}
{{- $component := index . 1 -}}
{{- $network := index $envAll.Values "network" | default dict -}}
{{- $backend := index $network "backend" -}}
{{- dict "envAll" $envAll "dependencyKey" $component "dependencyMixinParam" $backend | include "helm-toolkit.utils.dependency_resolver" -}}
{{- end -}}

{{/*
The `init` container every OSH pod starts with: kubernetes-entrypoint waits for the
Services, Jobs, DaemonSets and pods listed in dependencies.static.<component> (plus the
dynamic ones of the selected network backend) before the pod's containers start.
Usage: initContainers:
{{ tuple $envAll "api" $mounts_init | include "helm-toolkit.snippets.kubernetes_entrypoint_init_container" | indent 8 }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_entrypoint_init_container" -}}
{{- $envAll := index . 0 -}}
{{- $component := index . 1 -}}
{{- $mounts := index . 2 -}}
{{- $deps := tuple $envAll $component | include "helm-toolkit.snippets._component_dependencies" | fromYaml -}}
{{- $services := list -}}
{{- range $svc := $deps.services | default list -}}
{{- $services = append $services (tuple $svc.service $svc.endpoint $envAll | include "helm-toolkit.endpoints.service_name_endpoint_with_namespace_lookup") -}}
{{- end -}}
- name: init
{{ tuple $envAll "dep_check" | include "helm-toolkit.snippets.image" | indent 2 }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsUser: 65534
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          apiVersion: v1
          fieldPath: metadata.name
    - name: NAMESPACE
      valueFrom:
        fieldRef:
          apiVersion: v1
          fieldPath: metadata.namespace
    - name: INTERFACE_NAME
      value: eth0
    - name: PATH
      value: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/
    - name: DEPENDENCY_SERVICE
      value: {{ include "helm-toolkit.utils.joinListWithComma" $services | quote }}
    - name: DEPENDENCY_JOBS
      value: {{ include "helm-toolkit.utils.joinListWithComma" $deps.jobs | quote }}
    - name: DEPENDENCY_DAEMONSET
      value: {{ include "helm-toolkit.utils.joinListWithComma" $deps.daemonset | quote }}
    - name: DEPENDENCY_CONTAINER
      value: {{ include "helm-toolkit.utils.joinListWithComma" $deps.container | quote }}
    - name: DEPENDENCY_POD_JSON
      value: {{ if $deps.pod }}{{ toJson $deps.pod | quote }}{{ else }}""{{ end }}
    - name: DEPENDENCY_CUSTOM_RESOURCE
      value: {{ if $deps.custom_resources }}{{ toJson $deps.custom_resources | quote }}{{ else }}""{{ end }}
    - name: COMMAND
      value: "echo done"
  command:
    - kubernetes-entrypoint
  volumeMounts:
{{- if $mounts }}
{{ toYaml $mounts | indent 4 }}
{{- else }} []
{{- end }}
{{- end -}}

{{/*
ServiceAccount of a pod plus, when the pod has dependencies to wait for, the Role and
RoleBinding kubernetes-entrypoint needs to read them.
Usage: {{ tuple $envAll "api" $serviceAccountName | include "helm-toolkit.snippets.kubernetes_pod_rbac_serviceaccount" }}
*/}}
{{- define "helm-toolkit.snippets.kubernetes_pod_rbac_serviceaccount" -}}
{{- $envAll := index . 0 -}}
{{- $component := index . 1 -}}
{{- $saName := index . 2 -}}
{{- $saNamespace := $envAll.Release.Namespace -}}
{{- $deps := tuple $envAll $component | include "helm-toolkit.snippets._component_dependencies" | fromYaml -}}
{{- $roleName := printf "%s-%s-%s" $envAll.Release.Name $saNamespace $saName -}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $saName }}
  namespace: {{ $saNamespace }}
{{- if or $deps.services $deps.jobs $deps.pod $deps.daemonset $deps.container }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $roleName }}
  namespace: {{ $saNamespace }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $roleName }}
subjects:
  - kind: ServiceAccount
    name: {{ $saName }}
    namespace: {{ $saNamespace }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $roleName }}
  namespace: {{ $saNamespace }}
rules:
{{- if $deps.services }}
  - apiGroups:
      - ""
    resources:
      - services
      - endpoints
    verbs:
      - get
      - list
  - apiGroups:
      - discovery.k8s.io
    resources:
      - endpointslices
    verbs:
      - get
      - list
{{- end }}
{{- if $deps.jobs }}
  - apiGroups:
      - batch
    resources:
      - jobs
    verbs:
      - get
      - list
{{- end }}
{{- if or $deps.pod $deps.daemonset $deps.container $deps.jobs }}
  - apiGroups:
      - ""
    resources:
      - pods
    verbs:
      - get
      - list
{{- end }}
{{- if $deps.daemonset }}
  - apiGroups:
      - apps
    resources:
      - daemonsets
    verbs:
      - get
      - list
{{- end }}
{{- end }}
{{- end -}}
