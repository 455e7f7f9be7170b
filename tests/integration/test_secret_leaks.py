"""A generated credential never leaves the reconciler, whatever encoding a failing chart gives it.

A chart template that fails with ``.Values...password | b64enc`` in its message hands Helm's error to
the reconciler, which reports it in a log line, an Event and the status. The password is read from
the cluster's Secret and searched for in every form (raw, base64 of it or of anything containing it,
URL-encoded, JSON-escaped) in all three places.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes import client, dynamic

from openstack_gitops.runtime import logs
from testbed import bed
from testbed.charts import upstream_charts
from tests.unit.test_logs_redaction import traces_of

from .reconcile_support import ConfigRepo, converged_cloud, git

pytestmark = pytest.mark.testbed

CREDENTIAL = "oslo_db.glance"  # carried to the glance chart as the value below (reconciler/model/endpoints.py)
VALUE = ".Values.endpoints.oslo_db.auth.glance.password"
TEMPLATE = "charts/glance/templates/leak.yaml"

# The reconciler's own check of rendered objects quotes the bad value in its error (reconciler/plan/manifests.py),
# and reconcile.py passes that message on unscrubbed. Strict: once fixed, drop the mark.
# case -> (template text, the reason the reconcile fails with)
LEAKS: dict[str, tuple[str, str]] = {
    "fail-b64enc": ('{{ fail (printf "boom %s" (PW | b64enc)) }}\n', "RenderFailed"),
    "fail-b64enc-of-connection-string": (
        '{{ fail (printf "boom %s" (printf "mysql+pymysql://glance:%s@mariadb/glance" PW | b64enc)) }}\n',
        "RenderFailed"),
    "fail-b64enc-of-config-file": (
        '{{ fail (printf "boom %s" (printf "[database]\\nuser = glance\\npassword = %s\\n" PW | b64enc)) }}\n',
        "RenderFailed"),
    "fail-urlquery": ('{{ fail (printf "boom %s" (printf "pw=%s&x=1" PW | urlquery)) }}\n', "RenderFailed"),
    "fail-quote": ('{{ fail (printf "boom %s" (PW | quote)) }}\n', "RenderFailed"),
    # Helm renders it; the reconciler's own check refuses the object name and quotes it.
    "invalid-object-name": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ PW }}\n", "RenderInvalid"),
}


@pytest.fixture(scope="module")
def cloud(testbed: bed.TestBed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A directory source (the charts in the config repo), so a test can put a leaking template into one."""
    return converged_cloud(testbed, tmp_path_factory.mktemp("leaks"), upstream_charts())


def cr_status(testbed: bed.TestBed, repo: ConfigRepo) -> dict[str, Any]:
    with testbed.api_client() as api:
        cr = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "openstack-gitops.io", "v1alpha1", repo.namespace, "openstackdeployments", repo.name)
    return dict(cr["status"])


def restore(cloud: dict[str, Any]) -> None:
    """Back to the converged commit, so the next case starts from a cloud that reconciles."""
    repo: ConfigRepo = cloud["repo"]
    git(repo.work, "reset", "-q", "--hard", cloud["good"])
    git(repo.work, "push", "-q", "--force", "origin", "HEAD:main")
    outcome = cloud["reconciler"].reconcile()
    assert outcome.ok, outcome.message


def stored_password(testbed: bed.TestBed, repo: ConfigRepo) -> str:
    """The generated credential, as the cluster keeps it (never in Git)."""
    with testbed.api_client() as api:
        secret = client.CoreV1Api(api).read_namespaced_secret(f"{repo.name}-credentials", repo.namespace)
    return base64.b64decode((secret.data or {})[CREDENTIAL]).decode()


def all_events(testbed: bed.TestBed, repo: ConfigRepo) -> list[dict[str, Any]]:
    """Every Event of the namespace, whole (read untyped: the typed client refuses Events without eventTime)."""
    with testbed.api_client() as api:
        res = dynamic.DynamicClient(api).resources.get(api_version="events.k8s.io/v1", kind="Event")
        items: list[dict[str, Any]] = res.get(namespace=repo.namespace).to_dict()["items"]
    return items


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("case", LEAKS, ids=list(LEAKS))
def test_failing_template_does_not_leak_the_password(testbed: bed.TestBed, cloud: dict[str, Any], case: str,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    repo: ConfigRepo = cloud["repo"]
    password = stored_password(testbed, repo)
    template, reason = LEAKS[case]
    logs.setup(json_lines=True)  # as `--log-json` does; here, so that it writes to the captured stderr
    earlier = {e["metadata"]["name"] for e in all_events(testbed, repo)}  # other cases' Events are theirs
    repo.write(TEMPLATE, template.replace("PW", VALUE), f"glance: a template that leaks ({case})")
    try:
        outcome = cloud["reconciler"].reconcile()
        assert (outcome.ok, outcome.reason) == (False, reason), outcome.message
        cr = cr_status(testbed, repo)
        events = [e for e in all_events(testbed, repo) if e["metadata"]["name"] not in earlier]
        reported = {"log": capfd.readouterr().err, "status": json.dumps(cr), "events": json.dumps(events)}
        # The failure is reported in all three places...
        assert "leak.yaml" in cr["lastError"], cr["lastError"]
        assert any(e.get("reason") == reason and "leak.yaml" in str(e.get("note")) for e in events)
        assert any(json.loads(line).get("reason") == reason for line in reported["log"].splitlines()
                   if line.startswith("{")), reported["log"]
        # ...and the password in none of them, in no encoding.
        reported["outcome"] = outcome.message  # what `reconcile --once` and the loop print
        leaks = {where: found for where, text in reported.items() if (found := traces_of(password, text))}
        assert leaks == {}, leaks
        assert "***" in outcome.message, f"the case must really put the password into the error: {outcome.message}"
    finally:
        restore(cloud)
