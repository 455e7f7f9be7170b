{{/* libvirtd.conf / qemu.conf: strings quoted, numbers and booleans bare. */}}
{{- define "libvirt.utils.to_libvirt_conf" -}}
{{- range $key, $value := . }}
{{- if kindIs "string" $value }}
{{ $key }} = {{ $value | quote }}
{{- else if kindIs "slice" $value }}
{{ $key }} = [ {{ range $i, $v := $value }}{{ if $i }}, {{ end }}{{ $v | quote }}{{ end }} ]
{{- else }}
{{ $key }} = {{ include "helm-toolkit.utils._ini_value" $value }}
{{- end }}
{{- end -}}
{{- end -}}
