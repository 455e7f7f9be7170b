{{/* Scripts shipped in every service chart's <service>-bin ConfigMap. */}}

{{- define "helm-toolkit.scripts.db_init" -}}
#!/usr/bin/env python3
# Create the service database and its user on MariaDB (idempotent).
# ROOT_DB_CONNECTION: admin SQLAlchemy URL. The user URL comes from DB_CONNECTION or from
# OPENSTACK_CONFIG_FILE [OPENSTACK_CONFIG_DB_SECTION] OPENSTACK_CONFIG_DB_KEY.
import configparser
import os
import sys
from urllib.parse import unquote, urlsplit

from sqlalchemy import create_engine


def user_url():
    if "DB_CONNECTION" in os.environ:
        return os.environ["DB_CONNECTION"]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.environ["OPENSTACK_CONFIG_FILE"])
    return cfg.get(os.environ["OPENSTACK_CONFIG_DB_SECTION"], os.environ["OPENSTACK_CONFIG_DB_KEY"])


def quote(value):
    return value.replace("\\", "\\\\").replace("'", "\\'")


root = urlsplit(os.environ["ROOT_DB_CONNECTION"])
user = urlsplit(user_url())
database = user.path.lstrip("/").split("?")[0]
if not database:
    sys.exit("db-init: no database name in the user connection")
name, password = quote(unquote(user.username)), quote(unquote(user.password))
engine = create_engine(root._replace(path="/").geturl())
with engine.begin() as conn:
    conn.exec_driver_sql("CREATE DATABASE IF NOT EXISTS `%s`" % database)
    conn.exec_driver_sql("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'" % (name, password))
    conn.exec_driver_sql("ALTER USER '%s'@'%%' IDENTIFIED BY '%s'" % (name, password))
    conn.exec_driver_sql("GRANT ALL ON `%s`.* TO '%s'@'%%'" % (database, name))
print("db-init: database %s ready for %s" % (database, name))
{{- end }}

{{- define "helm-toolkit.scripts.rabbit_init" -}}
#!/bin/bash
# Create the service's vhost and user on RabbitMQ through the management API.
set -ex
parse() { # url -> "user pass host port vhost"
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1].split(",")[0]); print(u.unquote(p.username), u.unquote(p.password), p.hostname, p.port, (p.path or "/").lstrip("/") or "/")' "$1"
}
read -r ADMIN_USER ADMIN_PASS HOST PORT _ <<< "$(parse "${RABBITMQ_ADMIN_CONNECTION}")"
read -r USER USER_PASS _ _ VHOST <<< "$(parse "${RABBITMQ_USER_CONNECTION}")"
RMQ="rabbitmqadmin --host=${HOST} --port=${PORT} --username=${ADMIN_USER} --password=${ADMIN_PASS}"
${RMQ} declare user name="${USER}" password="${USER_PASS}" tags="user"
${RMQ} declare vhost name="${VHOST}"
${RMQ} declare permission vhost="${VHOST}" user="${USER}" configure=".*" write=".*" read=".*"
{{- end }}

{{- define "helm-toolkit.scripts.keystone_service" -}}
#!/bin/bash
# Register ${OS_SERVICE_NAME} (${OS_SERVICE_TYPE}) in the catalog unless it exists.
set -ex
if ! openstack service show "${OS_SERVICE_TYPE}" >/dev/null 2>&1; then
  openstack service create --enable --name "${OS_SERVICE_NAME}" \
    --description "Service ${OS_SERVICE_NAME}" "${OS_SERVICE_TYPE}"
fi
{{- end }}

{{- define "helm-toolkit.scripts.keystone_endpoints" -}}
#!/bin/bash
# Create or update the ${OS_SVC_ENDPOINT} endpoint of ${OS_SERVICE_TYPE}.
set -ex
ID=$(openstack endpoint list --service "${OS_SERVICE_TYPE}" --interface "${OS_SVC_ENDPOINT}" \
  --region "${OS_REGION_NAME}" -f value -c ID | head -n1)
if [ -z "${ID}" ]; then
  openstack endpoint create --region "${OS_REGION_NAME}" "${OS_SERVICE_TYPE}" \
    "${OS_SVC_ENDPOINT}" "${OS_SERVICE_ENDPOINT}"
else
  openstack endpoint set --url "${OS_SERVICE_ENDPOINT}" "${ID}"
fi
{{- end }}

{{- define "helm-toolkit.scripts.keystone_user" -}}
#!/bin/bash
# Create the service user, its project and domain, and grant the roles in SERVICE_OS_ROLES.
set -ex
openstack domain create --or-show "${SERVICE_OS_PROJECT_DOMAIN_NAME}"
openstack domain create --or-show "${SERVICE_OS_USER_DOMAIN_NAME}"
openstack project create --or-show --domain "${SERVICE_OS_PROJECT_DOMAIN_NAME}" "${SERVICE_OS_PROJECT_NAME}"
openstack user create --or-show --domain "${SERVICE_OS_USER_DOMAIN_NAME}" \
  --password "${SERVICE_OS_PASSWORD}" "${SERVICE_OS_USERNAME}"
openstack user set --password "${SERVICE_OS_PASSWORD}" --domain "${SERVICE_OS_USER_DOMAIN_NAME}" "${SERVICE_OS_USERNAME}"
for ROLE in ${SERVICE_OS_ROLES//,/ }; do
  openstack role create --or-show "${ROLE}"
  openstack role add --user "${SERVICE_OS_USERNAME}" --user-domain "${SERVICE_OS_USER_DOMAIN_NAME}" \
    --project "${SERVICE_OS_PROJECT_NAME}" --project-domain "${SERVICE_OS_PROJECT_DOMAIN_NAME}" "${ROLE}"
done
{{- end }}

{{- define "helm-toolkit.scripts.keystone_domain_user" -}}
#!/bin/bash
# Create a domain and a domain admin user (heat's stack domain).
set -ex
openstack domain create --or-show --description "Owns the stacks of ${SERVICE_OS_SERVICE_NAME}" "${SERVICE_OS_DOMAIN_NAME}"
openstack user create --or-show --domain "${SERVICE_OS_DOMAIN_NAME}" \
  --password "${SERVICE_OS_PASSWORD}" "${SERVICE_OS_USERNAME}"
openstack role add --user "${SERVICE_OS_USERNAME}" --user-domain "${SERVICE_OS_DOMAIN_NAME}" \
  --domain "${SERVICE_OS_DOMAIN_NAME}" "${SERVICE_OS_ROLE}"
{{- end }}
