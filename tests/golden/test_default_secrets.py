"""No credential a chart ships as a default survives into a real cloud, and a shared account has one value.

Every spec of config-repo-template (the template and its examples: both network backends, every
size) is expanded with generated credentials and rendered from the unmodified upstream
OpenStack-Helm charts through the reconciler's own pipeline and Helm edge. Then:

1. No default secret is left. The defaults are collected from the charts' values.yaml (every
   string under a credential-looking key: ``endpoints.*.auth.*.password``, ``erlang_cookie``,
   ``tmpurlkey``, ``metadata_proxy_shared_secret``, ``horizon_secret_key``, ...) plus a short
   explicit list. A distinctive default (``openstack-cookie``, horizon's UUID) may appear nowhere
   in the data of a rendered Secret (base64-decoded) or ConfigMap; a default that is also a word of
   config files (``password``, as in ``auth_type = password``) may not be a whole Secret value, the
   password of a URL, or the value of a credential-looking option. The few defaults left on
   purpose are LEFT_AT_DEFAULT, each with its reason.
2. Every account has one value. Read back from the render, not from the values: database and
   broker users from every connection URL, Keystone users from every openrc Secret and every INI
   section with a username and password, the memcache key from every config file.
3. The generated secrets outside `endpoints` (heat's encryption key, the metadata proxy secret,
   the [service_user] passwords, the Erlang cookie, horizon's key) reach the file that reads them.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from openstack_gitops.model.catalog import ALL_CHARTS, METADATA_SECRET
from reconciler.plan.diff import Desired

from .chart_support import SPEC_FILES, TEMPLATE, CloudFn

KeyPath = tuple[str, ...]

# A values.yaml leaf whose key says "credential" (the last key of its path).
SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|cookie|token|tmpurlkey|(^|_)key)$")
# Subtrees of values.yaml that hold no credentials although their keys look like it.
NOT_CREDENTIALS: Mapping[KeyPath, str] = {
    ("labels",): "node_selector_key: a node label name",
    ("secrets",): "names of the Secrets the chart renders, not their values",
    ("conf", "api_audit_map"): "audit map of API paths (os-server-password is a URL path)",
    ("network", "ssh"): "nova's migration SSH key pair: 'null' placeholders, network.ssh.enabled is off",
}
# Chart defaults deliberately left in the render: (where, the default) -> why. Keep it short;
# test_every_allowed_default_is_still_rendered fails once an entry excuses nothing.
LEFT_AT_DEFAULT: Mapping[tuple[str, str], str] = {}
# Defaults every chart family is known to ship, whether or not a values.yaml still spells them.
KNOWN_DEFAULTS = ("password", "openstack-cookie", "supersecret", "9aee62c0-5253-4a86-b189-e0fb71fa503c")
# Defaults that are also ordinary words of config files: matched in credential positions only.
COMMON_WORDS = frozenset({"password"})

# Where a word-like default would be a credential: `option = value` / `KEY: value` with a
# credential-looking option, and the password of a URL (`scheme://user:password@host`).
CREDENTIAL_OPTION = re.compile(
    r"""(?im)(?P<option>[\w.-]*(password|passwd|secret|cookie|token|key)[\w-]*)['"]?\s*[:=]\s*['"]?(?P<value>[^'"\s,}]+)"""
)
# `wsrep_sst_auth=user:password`: an option holding a whole `user:password` pair.
USER_PASSWORD_OPTION = re.compile(
    r"""(?im)^\s*(?P<option>[\w.-]*auth[\w-]*)\s*[:=]\s*['"]?[^:\s'"]+:(?P<value>[^'"\s,}]+)"""
)
URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>[^\s'\"/]+)")
URL_KINDS = {"mysql": "mariadb", "rabbit": "rabbitmq"}  # URL scheme (before any +driver) -> server
USERINFO = re.compile(r"(?:^|,)(?P<user>[^:@,]+):(?P<password>[^@,]+)@")


@dataclass(frozen=True)
class Text:
    """One piece of rendered data: a Secret or ConfigMap key, decoded."""

    where: str  # chart: Kind/name[key]
    text: str
    whole_value: bool  # a Secret data value: the whole of it is one value


# ---------------------------------------------------------------------------------------------
# The defaults, from the charts


def leaves(tree: Any, prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from leaves(value, (*prefix, str(key)))
    else:
        yield prefix, tree


def default_secrets(charts_dir: Path, charts: tuple[str, ...] = ALL_CHARTS) -> dict[str, list[str]]:
    """Every default secret value -> the chart values paths that ship it."""
    found: dict[str, list[str]] = {value: ["(known default)"] for value in KNOWN_DEFAULTS}
    for chart in charts:
        values = yaml.safe_load((charts_dir / chart / "values.yaml").read_text())
        for path, value in leaves(values):
            if any(path[: len(prefix)] == prefix for prefix in NOT_CREDENTIALS):
                continue
            if isinstance(value, str) and value and SECRET_KEY.search(path[-1]):
                found.setdefault(value, []).append(f"{chart}: {'.'.join(path)}")
    return found


# ---------------------------------------------------------------------------------------------
# The render: the session's shared `real_cloud` renders (the reconciler's pipeline, real charts)


@pytest.fixture(scope="module")
def texts(real_cloud: CloudFn) -> Callable[[Path], list[Text]]:
    done: dict[Path, list[Text]] = {}

    def get(spec_file: Path) -> list[Text]:
        if spec_file not in done:
            done[spec_file] = list(data_texts(real_cloud(spec_file).desired))
        return done[spec_file]

    return get


def data_texts(desired: Iterable[Desired]) -> Iterator[Text]:
    """The decoded data of every Secret and ConfigMap of a render, and every container's plain env
    value (glance-storage-init set the chart's Temp-URL key `supersecret` as one)."""
    for d in desired:
        where = f"{d.service}: {d.key.kind}/{d.key.name}"
        for container, name, value in env_values(d.manifest):
            yield Text(f"{where} {container} env {name}", value, True)
        if d.key.kind == "Secret":
            for key, value in (d.manifest.get("data") or {}).items():
                yield Text(f"{where}[{key}]", _b64(str(value)), True)
            for key, value in (d.manifest.get("stringData") or {}).items():
                yield Text(f"{where}[{key}]", str(value), True)
        elif d.key.kind == "ConfigMap":
            for key, value in (d.manifest.get("data") or {}).items():
                yield Text(f"{where}[{key}]", str(value), False)


def env_values(tree: Any, container: str = "") -> Iterator[tuple[str, str, str]]:
    """(container, env var, value) of every plain env value anywhere in a manifest."""
    if isinstance(tree, Mapping):
        here = str(tree["name"]) if isinstance(tree.get("env"), list) and "name" in tree else container
        for key, value in tree.items():
            if key == "env" and isinstance(value, list):
                for e in value:
                    if isinstance(e, Mapping) and isinstance(e.get("value"), str):
                        yield here, str(e.get("name")), e["value"]
            else:
                yield from env_values(value, here)
    elif isinstance(tree, list):
        for item in tree:
            yield from env_values(item, container)


def _b64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return value


# ---------------------------------------------------------------------------------------------
# 1. No default secret


def default_uses(text: Text, defaults: Mapping[str, list[str]]) -> Iterator[str]:
    """Each default secret `text` holds, as a description of where."""
    for value in defaults:
        if value not in text.text:
            continue
        if value not in COMMON_WORDS:
            yield f"{value!r} (shipped at {', '.join(defaults[value][:3])})"
            continue
        if text.whole_value and text.text.strip() == value:
            yield f"{value!r} as the whole value"
        for pattern in (CREDENTIAL_OPTION, USER_PASSWORD_OPTION):
            for match in pattern.finditer(text.text):
                if match["value"] == value:
                    yield f"{value!r} as {match['option']}"
        for _, user, password in userinfo(text.text):
            if password == value:
                yield f"{value!r} as the password of {user} in a URL"


def userinfo(text: str) -> Iterator[tuple[str, str, str]]:
    """(scheme, user, password) of every `scheme://user:password@host[,user:password@host...]` in `text`."""
    for url in URL_USERINFO.finditer(text):
        for match in USERINFO.finditer(url["rest"]):
            yield url["scheme"], match["user"], match["password"]


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_no_chart_default_secret_is_rendered(
    real_cloud: CloudFn, texts: Callable[[Path], list[Text]], charts_root: Path, spec_file: Path
) -> None:
    defaults = default_secrets(charts_root, real_cloud(spec_file).spec.charts)
    found = sorted({f"{t.where}: {use}" for t in texts(spec_file) for use in default_uses(t, defaults)
                    if not allowed(t, use)})
    assert found == [], "chart defaults left in the render:\n" + "\n".join(found)


def allowed(text: Text, use: str) -> bool:
    return any(text.where == where and use.startswith(repr(value)) for where, value in LEFT_AT_DEFAULT)


def test_every_allowed_default_is_still_rendered(texts: Callable[[Path], list[Text]], charts_root: Path) -> None:
    defaults = default_secrets(charts_root)
    used = {(t.where, value) for t in texts(TEMPLATE) for use in default_uses(t, defaults)
            for value in defaults if allowed(t, use) and use.startswith(repr(value))}
    assert set(LEFT_AT_DEFAULT) - used == set()


def test_the_defaults_are_found_where_the_charts_ship_them(charts_root: Path) -> None:
    """The clean result above means something: the walk finds the defaults the charts really ship."""
    defaults = default_secrets(charts_root)
    assert "nova: endpoints.oslo_db_cell1.auth.nova.password" in defaults["password"]
    assert "rabbitmq: endpoints.oslo_messaging.auth.erlang_cookie" in defaults["openstack-cookie"]
    assert "neutron: conf.metadata_agent.DEFAULT.metadata_proxy_shared_secret" in defaults["password"]
    assert "glance: endpoints.object_store.auth.glance.tmpurlkey" in defaults["supersecret"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param(Text("s", "password", True), True, id="whole-secret-value"),
        pytest.param(Text("c", "[database]\nconnection = mysql+pymysql://nova:password@mariadb/nova\n", False),
                     True, id="url"),
        pytest.param(Text("c", "rabbit://a:x@h1:5672,nova:password@h2:5672/nova", False), True, id="second-host"),
        pytest.param(Text("c", "[service_user]\npassword = password\n", False), True, id="ini-option"),
        pytest.param(Text("c", "'PASSWORD': 'password',", False), True, id="python-dict"),
        pytest.param(Text("c", "[keystone_authtoken]\nauth_type = password\n", False), False, id="auth-type"),
        pytest.param(Text("c", "openstack-cookie", False), True, id="distinctive-anywhere"),
        pytest.param(Text("c", "[mysqld]\nwsrep_sst_auth=sst:password\n", False), True, id="user-password-pair"),
    ],
)
def test_a_default_is_recognised_only_where_it_is_a_credential(text: Text, found: bool) -> None:
    defaults = {value: ["test"] for value in KNOWN_DEFAULTS}
    assert bool(list(default_uses(text, defaults))) is found


# ---------------------------------------------------------------------------------------------
# 2. One value per account


def account_values(texts: list[Text]) -> dict[tuple[str, str], dict[str, set[str]]]:
    """(kind, account) -> value -> where, for every account the render names with its secret."""
    seen: dict[tuple[str, str], dict[str, set[str]]] = {}

    def add(kind: str, account: str, value: str, where: str) -> None:
        seen.setdefault((kind, account), {}).setdefault(value, set()).add(where)

    openrc: dict[str, dict[str, str]] = {}
    for t in texts:
        for scheme, user, password in userinfo(t.text):
            add(URL_KINDS.get(scheme.split("+")[0], scheme), user, password, t.where)
        if t.where.split("[")[-1].startswith("OS_"):
            openrc.setdefault(t.where.split("[")[0], {})[t.where.split("[")[-1].rstrip("]")] = t.text
        for section, options in ini_sections(t.text):
            if "username" in options and "password" in options:
                add("keystone", options["username"], options["password"], f"{t.where} [{section}]")
            if "memcache_secret_key" in options:
                add("memcache", "secret_key", options["memcache_secret_key"], f"{t.where} [{section}]")
    for where, env in openrc.items():
        if "OS_USERNAME" in env and "OS_PASSWORD" in env:
            add("keystone", env["OS_USERNAME"], env["OS_PASSWORD"], where)
    return seen


def ini_sections(text: str) -> Iterator[tuple[str, dict[str, str]]]:
    if not re.search(r"(?m)^\[[\w:.-]+\]\s*$", text):
        return
    # [DEFAULT] as a section like any other, not merged into the others
    parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section="\0")
    try:
        parser.read_string(text)
    except configparser.Error:
        return
    for section in parser.sections():
        yield section, dict(parser.items(section))


@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_every_account_has_one_value_across_charts(texts: Callable[[Path], list[Text]], spec_file: Path) -> None:
    seen = account_values(texts(spec_file))
    split = {
        f"{kind} {account}": {f"value {i}": sorted(where)[:4] for i, where in enumerate(values.values(), 1)}
        for (kind, account), values in sorted(seen.items())
        if len(values) != 1
    }
    assert split == {}, "accounts with more than one value:\n" + yaml.safe_dump(split)
    # the accounts the rule is about are really read back from the render
    for account in (("mariadb", "nova"), ("mariadb", "root"), ("rabbitmq", "nova"), ("keystone", "neutron"),
                    ("keystone", "nova"), ("keystone", "admin"), ("memcache", "secret_key")):
        assert account in seen, account
    nova_db = seen[("mariadb", "nova")]
    assert any("nova-db-cell0-user" in w for where in nova_db.values() for w in where)


# (chart, Secret/ConfigMap[key] of the render, INI section or None, option) -> the stored credential it holds
SECRETS_IN_CONFIG: Mapping[tuple[str, str, str | None, str], str] = {
    ("heat", "Secret/heat-etc[heat.conf]", "DEFAULT", "auth_encryption_key"): "heat.auth_encryption_key",
    ("nova", "Secret/nova-etc[nova.conf]", "neutron", "metadata_proxy_shared_secret"): METADATA_SECRET,
    ("neutron", "Secret/neutron-etc[metadata_agent.ini]", "DEFAULT", "metadata_proxy_shared_secret"): METADATA_SECRET,
    ("nova", "Secret/nova-ks-etc[nova_service_user.conf]", "service_user", "password"): "identity.nova_service_user",
    ("cinder", "Secret/cinder-ks-etc[cinder_service_user.conf]", "service_user", "password"):
        "identity.cinder_service_user",
    ("rabbitmq", "Secret/rabbitmq-erlang-cookie[erlang_cookie]", None, ""): "oslo_messaging.erlang_cookie",
    ("horizon", "Secret/horizon-etc[local_settings]", None, "SECRET_KEY"): "horizon.secret_key",
}


@pytest.mark.parametrize(("where", "credential"), list(SECRETS_IN_CONFIG.items()), ids=str)
def test_a_generated_secret_reaches_the_config_that_reads_it(
    real_cloud: CloudFn, texts: Callable[[Path], list[Text]], where: tuple[str, str, str | None, str], credential: str
) -> None:
    chart, key, section, option = where
    stored = real_cloud(TEMPLATE).credentials[credential]
    text = next(t.text for t in texts(TEMPLATE) if t.where == f"{chart}: {key}")
    if section is not None:
        assert dict(ini_sections(text))[section][option] == stored
    elif option:
        assert f"{option}='{stored}'" in text
    else:
        assert text == stored


def test_galera_sst_user_has_one_generated_password(real_cloud: CloudFn, texts: Callable[[Path], list[Text]]) -> None:
    """start.py creates sst@127.0.0.1 from the Secret; the donor's mariabackup logs in with the
    ConfigMap's wsrep_sst_auth: both carry the stored credential (policy.CONFIG_EXCEPTIONS)."""
    stored = real_cloud(TEMPLATE).credentials["oslo_db.sst"]
    by_where = {t.where: t.text for t in texts(TEMPLATE)}
    assert by_where["mariadb: Secret/mariadb-dbsst-password[MYSQL_DBSST_PASSWORD]"] == stored
    config = by_where["mariadb: ConfigMap/mariadb-etc[00-base.cnf]"]
    assert re.findall(r"(?m)^\s*wsrep_sst_auth\s*=\s*(\S+)", config) == [f"sst:{stored}"]
