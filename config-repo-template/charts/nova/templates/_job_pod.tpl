{{/* Pod spec of the nova-manage Jobs/CronJobs: tuple $envAll $serviceAccountName $depKey $containerName $imageKey $script $openrc */}}
{{- define "nova.job_pod_spec" -}}
{{- $envAll := index . 0 -}}
{{- $serviceAccountName := index . 1 -}}
{{- $depKey := index . 2 -}}
{{- $containerName := index . 3 -}}
{{- $imageKey := index . 4 -}}
{{- $script := index . 5 -}}
{{- $openrc := index . 6 -}}
serviceAccountName: {{ $serviceAccountName }}
restartPolicy: OnFailure
nodeSelector:
{{ tuple $envAll $envAll.Values.labels.job | include "helm-toolkit.snippets.kubernetes_node_selector" | indent 2 }}
initContainers:
{{ tuple $envAll $depKey list | include "helm-toolkit.snippets.kubernetes_entrypoint_init_container" | indent 2 }}
containers:
  - name: {{ $containerName }}
{{ tuple $envAll $imageKey | include "helm-toolkit.snippets.image" | indent 4 }}
{{ tuple $envAll (index $envAll.Values.pod.resources.jobs $depKey) | include "helm-toolkit.snippets.kubernetes_resources" | indent 4 }}
{{- if $openrc }}
    env:
{{ dict "ksUserSecret" $envAll.Values.secrets.identity.admin | include "helm-toolkit.snippets.keystone_openrc_env_vars" | indent 6 }}
{{- end }}
    command:
      - {{ $script }}
    volumeMounts:
      - name: pod-tmp
        mountPath: /tmp
      - name: etcnova
        mountPath: /etc/nova
      - name: nova-etc
        mountPath: /etc/nova/nova.conf
        subPath: nova.conf
        readOnly: true
      - name: nova-etc
        mountPath: /etc/nova/logging.conf
        subPath: logging.conf
        readOnly: true
      - name: nova-bin
        mountPath: {{ $script }}
        subPath: {{ base $script }}
        readOnly: true
volumes:
  - name: pod-tmp
    emptyDir: {}
  - name: etcnova
    emptyDir: {}
  - name: nova-etc
    secret:
      secretName: nova-etc
      defaultMode: 0444
  - name: nova-bin
    configMap:
      name: nova-bin
      defaultMode: 0555
{{- end -}}
