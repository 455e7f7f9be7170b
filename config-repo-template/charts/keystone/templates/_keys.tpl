{{/*
Shared by the fernet/credential key setup Jobs and rotation CronJobs: the Role that lets the
pod read and write its keys Secret, and the pod spec running fernet-manage.py.
*/}}
{{- define "keystone.keys.rbac" -}}
{{- $envAll := index . 0 -}}
{{- $name := index . 1 -}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ $envAll.Release.Namespace }}
rules:
  - apiGroups:
      - ""
    resources:
      - secrets
    verbs:
      - get
      - list
      - create
      - update
      - patch
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ $envAll.Release.Namespace }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $envAll.Release.Namespace }}
{{- end -}}

{{/* tuple $envAll <kind: fernet|credential> <action: setup|rotate> */}}
{{- define "keystone.keys.pod_spec" -}}
{{- $envAll := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $action := index . 2 -}}
{{- $key := printf "%s_%s" $kind $action -}}
{{- $jobName := printf "keystone-%s-%s" $kind $action -}}
{{- $jobValues := index $envAll.Values.jobs $key -}}
{{- $repository := ternary $envAll.Values.conf.keystone.fernet_tokens.key_repository $envAll.Values.conf.keystone.credential.key_repository (eq $kind "fernet") -}}
serviceAccountName: {{ $jobName }}
restartPolicy: OnFailure
nodeSelector:
{{ tuple $envAll $envAll.Values.labels.job | include "helm-toolkit.snippets.kubernetes_node_selector" | indent 2 }}
initContainers:
{{ tuple $envAll $key list | include "helm-toolkit.snippets.kubernetes_entrypoint_init_container" | indent 2 }}
containers:
  - name: {{ $jobName }}
{{ tuple $envAll (printf "keystone_%s" $key) | include "helm-toolkit.snippets.image" | indent 4 }}
{{ tuple $envAll (index $envAll.Values.pod.resources.jobs $key) | include "helm-toolkit.snippets.kubernetes_resources" | indent 4 }}
    env:
      - name: KEYSTONE_USER
        value: {{ $jobValues.user | quote }}
      - name: KEYSTONE_GROUP
        value: {{ $jobValues.group | quote }}
      - name: KUBERNETES_NAMESPACE
        value: {{ $envAll.Release.Namespace | quote }}
      - name: KEYSTONE_KEYS_REPOSITORY
        value: {{ $repository | quote }}
      - name: KEYSTONE_KEYS_SECRET
        value: {{ printf "keystone-%s-keys" $kind | quote }}
{{- if eq $key "credential_rotate" }}
      - name: KEYSTONE_CREDENTIAL_MIGRATE_WAIT
        value: {{ $jobValues.migrate_wait | quote }}
{{- end }}
    command:
      - python3
      - /tmp/fernet-manage.py
      - {{ $key }}
    volumeMounts:
      - name: pod-tmp
        mountPath: /tmp
      - name: etc-keystone
        mountPath: /etc/keystone
      - name: keystone-etc
        mountPath: /etc/keystone/keystone.conf
        subPath: keystone.conf
        readOnly: true
      - name: keystone-etc
        mountPath: /etc/keystone/logging.conf
        subPath: logging.conf
        readOnly: true
      - name: keystone-bin
        mountPath: /tmp/fernet-manage.py
        subPath: fernet-manage.py
        readOnly: true
volumes:
  - name: pod-tmp
    emptyDir: {}
  - name: etc-keystone
    emptyDir: {}
  - name: keystone-etc
    secret:
      secretName: keystone-etc
      defaultMode: 0444
  - name: keystone-bin
    configMap:
      name: keystone-bin
      defaultMode: 0555
{{- end -}}

{{/* A key setup Job: tuple $envAll <kind> */}}
{{- define "keystone.keys.setup_job" -}}
{{- $envAll := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $jobName := printf "keystone-%s-setup" $kind -}}
{{ tuple $envAll (printf "%s_setup" $kind) $jobName | include "helm-toolkit.snippets.kubernetes_pod_rbac_serviceaccount" }}
{{ tuple $envAll $jobName | include "keystone.keys.rbac" }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $jobName }}
  labels:
{{ tuple $envAll "keystone" (printf "%s-setup" $kind) | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 4 }}
  annotations:
    helm.sh/hook-delete-policy: before-hook-creation
{{- if $envAll.Values.helm3_hook }}
    helm.sh/hook: post-install,post-upgrade
    helm.sh/hook-weight: "-5"
{{- end }}
spec:
  backoffLimit: 1000
  template:
    metadata:
      labels:
{{ tuple $envAll "keystone" (printf "%s-setup" $kind) | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 8 }}
      annotations:
{{ tuple $envAll | include "helm-toolkit.snippets.release_uuid" | indent 8 }}
    spec:
{{ tuple $envAll $kind "setup" | include "keystone.keys.pod_spec" | indent 6 }}
{{- end -}}

{{/* A key rotation CronJob: tuple $envAll <kind> */}}
{{- define "keystone.keys.rotate_cron_job" -}}
{{- $envAll := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $key := printf "%s_rotate" $kind -}}
{{- $jobName := printf "keystone-%s-rotate" $kind -}}
{{- $jobValues := index $envAll.Values.jobs $key -}}
{{ tuple $envAll $key $jobName | include "helm-toolkit.snippets.kubernetes_pod_rbac_serviceaccount" }}
{{ tuple $envAll $jobName | include "keystone.keys.rbac" }}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ $jobName }}
  labels:
{{ tuple $envAll "keystone" (printf "%s-rotate" $kind) | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 4 }}
spec:
  schedule: {{ $jobValues.cron | quote }}
  successfulJobsHistoryLimit: {{ $jobValues.history.success }}
  failedJobsHistoryLimit: {{ $jobValues.history.failed }}
  concurrencyPolicy: Forbid
  jobTemplate:
    metadata:
      labels:
{{ tuple $envAll "keystone" (printf "%s-rotate" $kind) | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 8 }}
    spec:
      template:
        metadata:
          labels:
{{ tuple $envAll "keystone" (printf "%s-rotate" $kind) | include "helm-toolkit.snippets.kubernetes_metadata_labels" | indent 12 }}
        spec:
{{ tuple $envAll $kind "rotate" | include "keystone.keys.pod_spec" | indent 10 }}
{{- end -}}
