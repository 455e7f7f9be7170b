"""The rendered credentials work against a real MariaDB and a real RabbitMQ.

On kwok every pod goes Ready, so a wrong database password is invisible there. Here the whole cloud of
``config-repo-template/openstack.yaml`` is rendered from the unmodified upstream OpenStack-Helm charts by
the product's own pipeline (load, check, credentials, expand, render, desired objects), and then, against
the test bed's MariaDB and RabbitMQ on loopback:

1. the servers get the accounts the rendered ``mariadb`` and ``rabbitmq`` charts give them: the admin of
   the mariadb StatefulSet's env (as its start script creates it), and the broker definitions written by
   the rabbitmq chart's own ``rabbitmq-password-hash.py`` init container;
2. every db-init and rabbit-init Job runs its chart's own script from the rendered bin ConfigMap, with
   the Job's env (Secrets decoded) and mounted files, container after container, as the Job would;
3. every database URL, MySQL option file, Django ``DATABASES`` and ``transport_url`` in a rendered Secret
   or ConfigMap is opened as its service would open it, and must authenticate and reach its database
   (and may create a table there, as db-sync does) or its vhost.

Only hosts and ports are rewritten, to loopback, after checking that they name a rendered Service (or a
StatefulSet pod behind a headless one) exposing that port; users, passwords, databases and vhosts stay as
rendered. A container's paths (mounts, ``/tmp``) are moved under a directory of its own, the way its
volumes would be mounted. Every failure names the chart, the object and key, the section/option or Job
container, and what failed; generated credentials are shown by name (``<oslo_db.nova>``), never in clear.
"""

from __future__ import annotations

import ast
import base64
import configparser
import functools
import json
import re
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import amqp
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

from openstack_gitops.model import complete, expand, needed_credentials
from openstack_gitops.model.spec import ChartSource, ChartSourceType
from reconciler.edges.helm import Helm
from reconciler.engine import pipeline
from testbed.build import binary
from testbed.charts import upstream_charts
from testbed.mariadb import MariaDB
from testbed.rabbitmq import RabbitMQ

pytestmark = pytest.mark.testbed

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_REPO = REPO_ROOT / "config-repo-template"
KUBE_VERSION = "v1.36.3"
DB_INIT_SCRIPT = "db-init.py"
RABBIT_INIT_SCRIPT = "rabbit-init.sh"
RABBIT_DEFINITIONS_SCRIPT = "rabbitmq-password-hash.py"
PROBE_TABLE = "openstack_gitops_credentials_probe"
JOB_TIMEOUT = 120
URL = re.compile(r"(?P<scheme>mysql(?:\+\w+)?|rabbit|amqp)://(?P<netloc>[^/\s'\"?#]*)(?P<tail>[^\s'\"]*)")
DEFAULT_PORTS = {"mysql": 3306, "rabbit": 5672, "amqp": 5672}


# --- the rendered cloud ----------------------------------------------------------------------------


@dataclass
class Cloud:
    """The render, indexed: objects by kind and name (with their chart), decoded config data, credentials."""

    namespace: str
    objects: list[tuple[str, dict[str, Any]]]  # (chart, manifest)
    credentials: dict[str, str]
    _by_key: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def __repr__(self) -> str:  # never the rendered Secrets or the credentials
        return f"Cloud({self.namespace}: {len(self.objects)} objects)"

    def __post_init__(self) -> None:
        self._by_key = {(o["kind"], o["metadata"]["name"]): (chart, o) for chart, o in self.objects}
        self._masks = sorted(((v, f"<{k}>") for k, v in self.credentials.items() if v), key=lambda p: -len(p[0]))

    def of_kind(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return ((chart, o) for chart, o in self.objects if o["kind"] == kind)

    def get(self, kind: str, name: str) -> tuple[str, dict[str, Any]] | None:
        return self._by_key.get((kind, name))

    def data(self, kind: str, name: str) -> dict[str, str]:
        """A Secret's (decoded) or ConfigMap's data; empty when not rendered."""
        found = self.get(kind, name)
        if found is None:
            return {}
        obj = found[1]
        if kind == "Secret":
            decoded = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
            return {**decoded, **(obj.get("stringData") or {})}
        return dict(obj.get("data") or {})

    def mask(self, text: str) -> str:
        """``text`` with every generated credential replaced by its name."""
        for value, name in self._masks:
            text = text.replace(value, name)
        return text


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    """The template cloud from the upstream charts, through the reconciler's own render pipeline."""
    charts = upstream_charts()
    spec = pipeline.load(CONFIG_REPO)
    spec = replace(spec, chart_source=ChartSource(ChartSourceType.DIRECTORY, str(charts)))
    errors = pipeline.check(spec, CONFIG_REPO)
    assert errors == [], "\n".join(str(e) for e in errors)
    credentials, _ = complete({}, needed_credentials(spec), secrets.token_urlsafe)
    helm = Helm(str(binary("helm")), tmp_path_factory.mktemp("credentials-helm"), timeout=180)
    texts = pipeline.render(spec, charts, helm, expand(spec, credentials), KUBE_VERSION, workers=4)
    objects = [(chart, desired.manifest) for chart, text in texts.items()
               for desired in pipeline.desired_objects(spec, chart, text)]
    return Cloud(spec.namespace, objects, credentials)


# --- where a rendered host:port leads ----------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    address: str  # 127.0.0.1:port of the loopback server
    port_name: str  # the rendered Service port's name (mysql, amqp, http)
    problem: str  # why the rendered host:port would not reach it in a cluster ("" when it would)


@dataclass(frozen=True)
class Endpoint:
    chart: str  # the chart that renders the Service
    service: str
    port_name: str


class Network:
    """Resolves a URL's host:port as cluster DNS would (Service, or pod of a StatefulSet behind a headless
    Service) to a rendered Service port, and maps that to the loopback server playing its chart."""

    def __init__(self, cloud: Cloud, backends: Mapping[tuple[str, str], str]) -> None:
        self.cloud = cloud
        self.backends = backends  # (chart, Service port name) -> 127.0.0.1:port
        self.suffixes = (f".{cloud.namespace}.svc.cluster.local", f".{cloud.namespace}.svc", f".{cloud.namespace}")

    def resolve(self, host: str, port: int) -> tuple[Endpoint | None, str]:
        """The Service port ``host:port`` reaches, or None and why not."""
        name = host
        for suffix in self.suffixes:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        if "." in name and name.count(".") > 1:
            return None, f"{host} is not a name of the namespace {self.cloud.namespace}"
        pod, _, service = name.rpartition(".")
        found = self.cloud.get("Service", service)
        if found is None:
            return None, f"{host}: no Service {service!r} is rendered"
        chart, svc = found
        if pod:
            if svc["spec"].get("clusterIP") != "None":
                return None, f"{host}: Service {service} is not headless, so {pod}.{service} has no DNS name"
            pods = [f"{s['metadata']['name']}-{i}" for _, s in self.cloud.of_kind("StatefulSet")
                    if s["spec"].get("serviceName") == service for i in range(int(s["spec"].get("replicas", 1)))]
            if pod not in pods:
                return None, f"{host}: no StatefulSet pod {pod!r} behind Service {service} (pods: {pods})"
        for svc_port in svc["spec"].get("ports", []):
            if int(svc_port["port"]) == port:
                return Endpoint(chart, service, str(svc_port.get("name", ""))), ""
        ports = [p["port"] for p in svc["spec"].get("ports", [])]
        return None, f"{host}:{port}: Service {service} exposes no port {port} (ports: {ports})"

    def locate(self, scheme: str, hostport: str) -> Located:
        """Where ``host[:port]`` of a ``scheme`` URL is served here, and what is wrong with it in a cluster
        (then the scheme's usual server stands in, so the credentials are still checked)."""
        host, _, port_text = hostport.partition(":")
        port = int(port_text) if port_text.isdigit() else DEFAULT_PORTS[_base(scheme)]
        endpoint, problem = self.resolve(host, port)
        if endpoint is not None:
            address = self.backends.get((endpoint.chart, endpoint.port_name))
            if address is not None:
                return Located(address, endpoint.port_name, "")
            problem = (f"{host}:{port} is Service {endpoint.service} port {endpoint.port_name!r} of chart "
                       f"{endpoint.chart}, not a database or broker port")
        fallback = ("mariadb", "mysql") if _base(scheme) == "mysql" else ("rabbitmq", "amqp")
        return Located(self.backends[fallback], fallback[1], problem)

    def hosts(self, url: str) -> list[tuple[str, Located]]:
        """(userinfo, where it is served) for every host of a URL (a transport_url may list several)."""
        match = URL.match(url)
        assert match is not None, url
        out = []
        for part in match["netloc"].split(","):
            userinfo, _, hostport = part.rpartition("@")
            out.append((userinfo, self.locate(match["scheme"], hostport)))
        return out

    def rewrite(self, text: str) -> str:
        """``text`` with the host:port of every database and broker URL pointed at loopback."""
        def one(match: re.Match[str]) -> str:
            parts = [f"{userinfo}@{located.address}" if userinfo else located.address
                     for userinfo, located in self.hosts(match[0])]
            return f"{match['scheme']}://{','.join(parts)}{match['tail']}"

        return URL.sub(one, text)


def _base(scheme: str) -> str:
    return "mysql" if scheme.startswith("mysql") else scheme


# --- running a Job's container as Kubernetes would ----------------------------------------------------


@dataclass(frozen=True)
class Run:
    chart: str
    workload: str  # Kind/name
    container: str
    script: str
    inputs: str  # where its connections came from
    code: int
    log: str

    def __str__(self) -> str:
        lines = self.log.splitlines()
        said = [line for line in lines[:-3] if "CRITICAL" in line or "ERROR" in line] + lines[-3:]
        return (f"chart {self.chart}: {self.workload} container {self.container} ({self.script}; {self.inputs}) "
                "exited {}:\n    {}".format(self.code, "\n    ".join(said)))


class Kubelet:
    """Runs one container of a rendered pod spec: volumes materialized under a directory of its own, env
    resolved from the rendered Secrets and ConfigMaps, database and broker URLs pointed at loopback."""

    def __init__(self, cloud: Cloud, network: Network, workdir: Path) -> None:
        self.cloud = cloud
        self.network = network
        self.workdir = workdir

    def env(self, container: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
        """The container's env as rendered (values, secretKeyRef, configMapKeyRef) and where each came from."""
        env: dict[str, str] = {}
        origin: list[str] = []
        for var in container.get("env", []):
            ref = var.get("valueFrom") or {}
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif "secretKeyRef" in ref or "configMapKeyRef" in ref:
                kind, key_ref = ("Secret", ref["secretKeyRef"]) if "secretKeyRef" in ref else \
                    ("ConfigMap", ref["configMapKeyRef"])
                data = self.cloud.data(kind, key_ref["name"])
                if key_ref["key"] in data:
                    env[var["name"]] = data[key_ref["key"]]
                    origin.append(f"{var['name']} from {kind}/{key_ref['name']}")
                else:
                    origin.append(f"{var['name']}: {kind}/{key_ref['name']} key {key_ref['key']} NOT RENDERED")
        return env, origin

    def run(self, chart: str, workload: Mapping[str, Any], pod: Mapping[str, Any],
            container: Mapping[str, Any]) -> Run:
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        root = self.container_root(workload, container)
        root.mkdir(parents=True, exist_ok=True)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = sorted(container.get("volumeMounts", []), key=lambda m: len(m["mountPath"]))
        to_root = _path_mapper(root, [m["mountPath"] for m in mounts])
        command = [*container.get("command", []), *container.get("args", [])]
        script = next((m["subPath"] for m in mounts if m.get("subPath") and any(m["mountPath"] in a for a in command)),
                      "")
        env, origin = self.env(container)
        origin += [f"{k}={v}" for k, v in env.items() if len(v) < 80 and k not in {
            var["name"] for var in container.get("env", []) if "valueFrom" in var}]
        for mount in mounts:
            origin += self._materialize(root, mount, volumes.get(mount["name"], {}), to_root,
                                        skip=mount.get("subPath") == script)
        env = {k: to_root(self.network.rewrite(v)) for k, v in env.items()}
        argv = [to_root(a) for a in command]
        base = {"PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(root), "LANG": "C.UTF-8", "TMPDIR": str(root / "tmp")}
        try:
            done = subprocess.run(argv, env={**base, **env}, cwd=root, capture_output=True, text=True,
                                  timeout=JOB_TIMEOUT, check=False)
            code, log = done.returncode, done.stdout + done.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            code, log = -1, str(exc)
        return Run(chart, name, container["name"], script or argv[0], "; ".join(origin), code, self.cloud.mask(log))

    def container_root(self, workload: Mapping[str, Any], container: Mapping[str, Any]) -> Path:
        """The directory standing in for the container's filesystem root."""
        return self.workdir / workload["metadata"]["name"] / container["name"]

    def _materialize(self, root: Path, mount: Mapping[str, Any], volume: Mapping[str, Any],
                     to_root: Callable[[str], str], skip: bool) -> list[str]:
        """Writes one volume mount below ``root``; returns where its files came from (unless ``skip``)."""
        target = root / mount["mountPath"].lstrip("/")
        source = volume.get("configMap") or volume.get("secret")
        if source is None:  # emptyDir, a volumeClaimTemplate, ...: an empty directory
            target.mkdir(parents=True, exist_ok=True)
            return []
        kind, name = ("ConfigMap", source["name"]) if "configMap" in volume else ("Secret", source["secretName"])
        data = self.cloud.data(kind, name)
        files = {item["path"]: data.get(item["key"], "") for item in source.get("items", [])} or data
        if "subPath" in mount:
            files = {"": files.get(mount["subPath"], "")}
        for rel, text in files.items():
            path = target / rel if rel else target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(to_root(self.network.rewrite(text)))
            path.chmod(int(source.get("defaultMode", 0o644)) | 0o200)
        if skip:
            return []
        return [f"{mount['mountPath']} from {kind}/{name}" + (f" key {mount['subPath']}" if "subPath" in mount else "")]


def _path_mapper(root: Path, mount_paths: list[str]) -> Callable[[str], str]:
    """Moves absolute paths under any of ``mount_paths`` (and ``/tmp``) below ``root``."""
    paths = sorted({*mount_paths, "/tmp"}, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(p.rstrip("/")) for p in paths) + r")(?=[/\s'\";:)}]|$)")
    return lambda text: pattern.sub(lambda m: str(root) + m[1], text)


def _pod(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"]["spec"])
    return dict(spec["template"]["spec"])


def _runs_script(container: Mapping[str, Any], script: str) -> bool:
    return any(m.get("subPath") == script for m in container.get("volumeMounts", []))


# --- every connection a service would open --------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One connection in the render: what it is (a URL) and exactly where it was read."""

    chart: str
    source: str  # "Secret/nova-etc key nova.conf"
    where: str  # "[api_database] connection", "the whole value", "line 12", "DATABASES['default']"
    url: str

    @property
    def scheme(self) -> str:
        return _base(self.url.split("://", 1)[0])

    def describe(self, cloud: Cloud) -> str:
        return f"chart {self.chart}: {self.source} {self.where}: {cloud.mask(self.url)}"

    def why(self, cloud: Cloud, failed: str) -> str:
        """The failure, and whether the password is a generated credential at all (a chart default is not)."""
        passwords = {urllib.parse.unquote(part.rpartition("@")[0].partition(":")[2])
                     for part in urllib.parse.urlsplit(self.url).netloc.split(",")}
        generated = set(cloud.credentials.values())
        hint = "" if passwords <= generated else " (its password is none of the generated credentials)"
        return f"{self.describe(cloud)}: {cloud.mask(failed)}{hint}"


def connections(cloud: Cloud) -> list[Found]:
    """Every database and broker connection in every rendered Secret and ConfigMap."""
    found: list[Found] = []
    for kind in ("Secret", "ConfigMap"):
        for chart, obj in cloud.of_kind(kind):
            for key, text in sorted(cloud.data(kind, obj["metadata"]["name"]).items()):
                source = f"{kind}/{obj['metadata']['name']} key {key}"
                found.extend(Found(chart, source, where, url) for where, url in _connections_in(text))
    return found


def _connections_in(text: str) -> Iterator[tuple[str, str]]:
    ini = _ini(text)
    if ini is not None:
        for section in ini.sections():
            options = dict(ini.items(section))
            for option, value in options.items():
                for match in URL.finditer(value or ""):
                    yield f"[{section}] {option}", match[0]
            if {"user", "password", "host"} <= set(options):  # a MySQL option file's client section
                yield f"[{section}] user/password/host/port", _mysql_url(
                    options["user"] or "", options["password"] or "", options["host"] or "",
                    options.get("port") or "3306", options.get("database") or "")
        return
    if "DATABASES" in text:
        yield from _django_databases(text)
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        for match in URL.finditer(line):
            yield ("the whole value" if len(lines) == 1 else f"line {number}"), match[0]


def _ini(text: str) -> configparser.RawConfigParser | None:
    # [DEFAULT] is read as a section of its own, so its options are not repeated in every other section
    parser = configparser.RawConfigParser(strict=False, allow_no_value=True, interpolation=None,
                                          default_section="\0 no default section")
    parser.optionxform = str  # type: ignore[method-assign]  # keep option names as written
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser if parser.sections() else None


def _django_databases(text: str) -> Iterator[tuple[str, str]]:
    """Django's ``DATABASES = {...}`` (horizon's local_settings) as SQL URLs."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DATABASES" for t in node.targets):
            for alias, db in ast.literal_eval(node.value).items():
                if "mysql" in str(db.get("ENGINE", "")):
                    yield f"DATABASES[{alias!r}]", _mysql_url(
                        db.get("USER", ""), db.get("PASSWORD", ""), db.get("HOST", ""), db.get("PORT") or "3306",
                        db.get("NAME", ""))


def _mysql_url(user: str, password: str, host: str, port: str, database: str) -> str:
    quote = lambda s: urllib.parse.quote(str(s), safe="")  # noqa: E731
    return f"mysql+pymysql://{quote(user)}:{quote(password)}@{host}:{port}/{database}"


def open_sql(url: str) -> str:
    """Connect as the service would (SQLAlchemy, PyMySQL); in its database, create and drop a table as
    db-sync would. Returns what failed, or ""."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            if engine.url.database:
                conn.execute(sqlalchemy.text(f"CREATE TABLE IF NOT EXISTS `{PROBE_TABLE}` (id INT)"))
                conn.execute(sqlalchemy.text(f"DROP TABLE `{PROBE_TABLE}`"))
            else:
                conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return str(getattr(exc, "orig", None) or exc).splitlines()[0]
    finally:
        engine.dispose()
    return ""


def open_amqp(url: str, located: list[Located], broker: RabbitMQ) -> str:
    """Log in to every host of a ``rabbit://`` URL on its vhost as oslo.messaging would; a URL that leads to
    the management port (rabbit-init's) logs in to the HTTP API, or over AMQP when its user has no API access.
    ``located`` says where each host is served here. Returns what failed, or ""."""
    parsed = urllib.parse.urlsplit(url)
    vhost = urllib.parse.unquote(parsed.path[1:]) or "/"
    problems = []
    for part, where in zip(parsed.netloc.split(","), located, strict=True):
        userinfo = part.rpartition("@")[0]
        user, _, password = (urllib.parse.unquote(s) for s in userinfo.partition(":"))
        address = where.address
        if where.port_name == "http":
            code, _ = broker.api("GET", "/api/whoami", user=user, password=password)
            if code == 200:
                continue
            address = broker.amqp_address
        try:
            conn = amqp.Connection(host=address, userid=user, password=password, virtual_host=vhost,
                                   connect_timeout=5)
            conn.connect()
            conn.channel().close()
            conn.close()
        except Exception as exc:
            problems.append(f"{user}@vhost {vhost!r}: {type(exc).__name__}: {exc}")
    return "; ".join(problems)


# --- the servers and the Jobs, run once for the module ----------------------------------------------------


@dataclass
class Outcome:
    cloud: Cloud
    setup: list[str]  # what could not be set up as the mariadb/rabbitmq charts would
    db_init: list[Run]
    rabbit_init: list[Run]
    found: list[Found]
    sql_failures: list[str]
    amqp_failures: list[str]
    host_problems: list[str]

    def __repr__(self) -> str:  # pytest shows it in assertion output: no Secrets, no credentials
        return "Outcome(...)"


@pytest.fixture(scope="module")
def outcome(cloud: Cloud, mariadb: MariaDB, rabbitmq: RabbitMQ, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    network = Network(cloud, {
        ("mariadb", "mysql"): mariadb.address,
        ("rabbitmq", "amqp"): rabbitmq.amqp_address,
        ("rabbitmq", "http"): rabbitmq.management_url.removeprefix("http://"),
    })
    kubelet = Kubelet(cloud, network, tmp_path_factory.mktemp("credentials-jobs"))
    setup = [*_setup_mariadb(cloud, kubelet, mariadb), *_setup_rabbitmq(cloud, kubelet, rabbitmq)]

    jobs = [(chart, job) for chart, job in cloud.of_kind("Job")]

    def run_job(chart: str, job: dict[str, Any], script: str) -> list[Run]:
        pod = _pod(job)
        return [kubelet.run(chart, job, pod, c) for c in pod["containers"] if _runs_script(c, script)]

    results: dict[str, list[Run]] = {}
    for script in (DB_INIT_SCRIPT, RABBIT_INIT_SCRIPT):
        with ThreadPoolExecutor(4) as pool:  # Jobs run side by side, a Job's containers one after another
            done = pool.map(functools.partial(run_job, script=script), *zip(*jobs, strict=True))
            results[script] = [r for runs in done for r in runs]

    found = connections(cloud)
    sql_failures, amqp_failures, host_problems = [], [], []
    for item in found:
        located = network.hosts(item.url)
        host_problems += [f"{item.describe(cloud)}: {where.problem}" for _, where in located if where.problem]
        if item.scheme == "mysql":
            failed = open_sql(network.rewrite(item.url))
            if failed:
                sql_failures.append(item.why(cloud, failed))
        else:
            failed = open_amqp(item.url, [where for _, where in located], rabbitmq)
            if failed:
                amqp_failures.append(item.why(cloud, failed))
    return Outcome(cloud, setup, results[DB_INIT_SCRIPT], results[RABBIT_INIT_SCRIPT], found,
                   sql_failures, amqp_failures, host_problems)


def _setup_mariadb(cloud: Cloud, kubelet: Kubelet, server: MariaDB) -> list[str]:
    """The admin account the mariadb chart's start script creates, from its StatefulSet's env."""
    for chart, sts in cloud.of_kind("StatefulSet"):
        for container in _pod(sts)["containers"]:
            env, _ = kubelet.env(container)
            if "MYSQL_DBADMIN_USERNAME" in env:
                if not env.get("MYSQL_DBADMIN_PASSWORD"):
                    return [f"chart {chart}: StatefulSet/{sts['metadata']['name']}: MYSQL_DBADMIN_PASSWORD is empty "
                            "or its Secret is not rendered"]
                server.add_admin(env["MYSQL_DBADMIN_USERNAME"], env["MYSQL_DBADMIN_PASSWORD"])
                return []
    return ["no StatefulSet with MYSQL_DBADMIN_USERNAME rendered: the mariadb chart's admin is unknown"]


def _setup_rabbitmq(cloud: Cloud, kubelet: Kubelet, broker: RabbitMQ) -> list[str]:
    """The definitions (admin and guest users, the chart's users) the rabbitmq chart's init container
    writes for the broker to load at boot, written by that chart's own script and loaded here."""
    for chart, sts in cloud.of_kind("StatefulSet"):
        pod = _pod(sts)
        for container in pod.get("initContainers", []):
            if not _runs_script(container, RABBIT_DEFINITIONS_SCRIPT):
                continue
            run = kubelet.run(chart, sts, pod, container)
            if run.code != 0:
                return [str(run)]
            env, _ = kubelet.env(container)
            definitions = kubelet.container_root(sts, container) / env["RABBITMQ_DEFINITION_FILE"].lstrip("/")
            broker.import_definitions(json.loads(definitions.read_text()))
            return []
    return [f"no StatefulSet init container runs {RABBIT_DEFINITIONS_SCRIPT}: the broker's admin is unknown"]


# --- the tests -----------------------------------------------------------------------------------------


def _report(title: str, lines: list[str]) -> str:
    return f"{len(lines)} {title}:\n" + "\n".join(f"- {line}" for line in lines)


def test_the_render_holds_what_this_test_is_about(outcome: Outcome) -> None:
    """Every OpenStack chart with a database runs db-init and has a connection checked; every chart with a
    rabbit-init Job has a transport_url checked: the passes below are not vacuous."""
    db_charts = {r.chart for r in outcome.db_init}
    assert {"keystone", "glance", "cinder", "placement", "nova", "neutron", "horizon", "heat"} <= db_charts
    assert {r.chart for r in outcome.rabbit_init} >= {"keystone", "glance", "cinder", "nova", "neutron", "heat"}
    sql_charts = {f.chart for f in outcome.found if f.scheme == "mysql"}
    assert db_charts <= sql_charts, f"charts with db-init but no database connection found: {db_charts - sql_charts}"
    transport = {f.chart for f in outcome.found if "transport_url" in f.where}
    assert {r.chart for r in outcome.rabbit_init} <= transport
    assert not outcome.setup, "\n".join(outcome.setup)


def test_every_db_init_job_creates_its_database_and_user(outcome: Outcome) -> None:
    failed = [str(r) for r in outcome.db_init if r.code != 0]
    assert not failed, _report(f"of {len(outcome.db_init)} db-init containers failed", failed)


def test_every_rabbit_init_job_creates_its_user_and_vhost(outcome: Outcome) -> None:
    failed = [str(r) for r in outcome.rabbit_init if r.code != 0]
    assert not failed, _report(f"of {len(outcome.rabbit_init)} rabbit-init containers failed", failed)


def test_every_database_connection_reaches_its_database(outcome: Outcome) -> None:
    total = sum(1 for f in outcome.found if f.scheme == "mysql")
    assert not outcome.sql_failures, _report(f"of {total} database connections failed", outcome.sql_failures)


def test_every_transport_url_reaches_its_vhost(outcome: Outcome) -> None:
    total = sum(1 for f in outcome.found if f.scheme != "mysql")
    assert not outcome.amqp_failures, _report(f"of {total} broker connections failed", outcome.amqp_failures)


def test_every_host_names_a_rendered_service_port(outcome: Outcome) -> None:
    """In a cluster the connection must also reach the server: each host is a rendered Service (or a pod
    of a StatefulSet behind a headless Service) that exposes the port, of the mariadb or rabbitmq chart."""
    assert not outcome.host_problems, _report("connections name no rendered server", outcome.host_problems)


def test_a_wrong_password_is_seen(outcome: Outcome, mariadb: MariaDB) -> None:
    """The checks above can fail: a rendered connection with one character of its password changed is refused."""
    item = next(f for f in outcome.found if f.chart == "keystone" and f.where == "[database] connection")
    url = sqlalchemy.engine.make_url(item.url).set(host="127.0.0.1", port=mariadb.port)
    assert url.password and open_sql(url.render_as_string(hide_password=False)) == ""
    wrong = url.set(password=url.password[:-1] + ("x" if url.password[-1] != "x" else "y"))
    assert "Access denied" in open_sql(wrong.render_as_string(hide_password=False))

