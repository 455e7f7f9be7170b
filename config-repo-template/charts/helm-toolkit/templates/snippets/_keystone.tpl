{{/*
Data of a Secret holding the OpenStack credentials (openrc) of one user class of
endpoints.identity.auth. OSH's secret-keystone.yaml renders one such Secret per user.
Usage: {{ tuple "admin" "internal" $envAll | include "helm-toolkit.snippets.keystone_secret_openrc" | indent 2 }}
*/}}
{{- define "helm-toolkit.snippets.keystone_secret_openrc" -}}
{{- $userClass := index . 0 -}}
{{- $identityEndpoint := index . 1 -}}
{{- $context := index . 2 -}}
{{- $auth := index $context.Values.endpoints.identity.auth $userClass -}}
{{- if not $auth -}}
{{- fail (printf "helm-toolkit: endpoints.identity.auth.%s is not defined" $userClass) -}}
{{- end -}}
OS_AUTH_URL: {{ tuple "identity" $identityEndpoint "api" $context | include "helm-toolkit.endpoints.keystone_endpoint_uri_lookup" | b64enc }}
OS_REGION_NAME: {{ $auth.region_name | toString | b64enc }}
OS_INTERFACE: {{ $auth.interface | default "internal" | toString | b64enc }}
OS_ENDPOINT_TYPE: {{ $auth.interface | default "internal" | toString | b64enc }}
OS_PROJECT_DOMAIN_NAME: {{ $auth.project_domain_name | toString | b64enc }}
OS_PROJECT_NAME: {{ $auth.project_name | toString | b64enc }}
OS_USER_DOMAIN_NAME: {{ $auth.user_domain_name | toString | b64enc }}
OS_USERNAME: {{ $auth.username | toString | b64enc }}
OS_PASSWORD: {{ $auth.password | toString | b64enc }}
OS_DEFAULT_DOMAIN: {{ $auth.default_domain_id | default "default" | toString | b64enc }}
{{- end -}}

{{/*
Container env of a client authenticating with one openrc Secret.
Usage: {{ dict "ksUserSecret" .Values.secrets.identity.admin | include "helm-toolkit.snippets.keystone_openrc_env_vars" | indent 12 }}
*/}}
{{- define "helm-toolkit.snippets.keystone_openrc_env_vars" -}}
{{- $ksUserSecret := index . "ksUserSecret" -}}
{{- $env := list (dict "name" "OS_IDENTITY_API_VERSION" "value" "3") -}}
{{- range $key := list "OS_AUTH_URL" "OS_REGION_NAME" "OS_INTERFACE" "OS_ENDPOINT_TYPE" "OS_PROJECT_DOMAIN_NAME" "OS_PROJECT_NAME" "OS_USER_DOMAIN_NAME" "OS_USERNAME" "OS_PASSWORD" "OS_DEFAULT_DOMAIN" -}}
{{- $env = append $env (dict "name" $key "valueFrom" (dict "secretKeyRef" (dict "name" $ksUserSecret "key" $key))) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/*
Container env describing a service user to create (SERVICE_OS_*), read from its openrc Secret.
Usage: {{ dict "ksUserSecret" .Values.secrets.identity.glance | include "helm-toolkit.snippets.keystone_user_create_env_vars" | indent 12 }}
*/}}
{{- define "helm-toolkit.snippets.keystone_user_create_env_vars" -}}
{{- $ksUserSecret := index . "ksUserSecret" -}}
{{- $env := list -}}
{{- range $key := list "OS_REGION_NAME" "OS_PROJECT_DOMAIN_NAME" "OS_PROJECT_NAME" "OS_USER_DOMAIN_NAME" "OS_USERNAME" "OS_PASSWORD" -}}
{{- $env = append $env (dict "name" (printf "SERVICE_%s" $key) "valueFrom" (dict "secretKeyRef" (dict "name" $ksUserSecret "key" $key))) -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}
