"""Host discovery's Job, made from the real nova chart's CronJob ``nova-cell-setup`` as the reconciler renders it.

The template spec of config-repo-template goes through the reconciler's pipeline (conftest ``real_cloud``);
``job_from_cronjob`` turns the rendered CronJob into the Job ``kubectl create job --from`` would create.
The Job must be a batch/v1 Job every field of which the Kubernetes API knows (checked against the
official client's models), run exactly the chart's pod (its cell-setup script), and point at the CronJob.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import models

from healthwatcher.discovery import INSTANTIATE_ANNOTATION, LABEL, job_from_cronjob, job_name
from openstack_gitops.api import OWNER_LABEL

from .chart_support import NAMESPACE, TEMPLATE, CloudFn

NOW = 1_700_000_000.0
_GENERIC = re.compile(r"(List|Dict)\[(?:str, )?(.+)\]$")
_PLAIN = {"str", "int", "bool", "float", "object", "datetime", "date"}


def unknown_fields(value: Any, type_name: str, path: str = "") -> list[str]:
    """Paths of keys that the API type ``type_name`` (an official client model) has no field for."""
    generic = _GENERIC.match(type_name)
    if generic:
        items = value.items() if generic.group(1) == "Dict" else enumerate(value)
        return [bad for key, item in items for bad in unknown_fields(item, generic.group(2), f"{path}[{key}]")]
    if type_name in _PLAIN:
        return []
    model = getattr(models, type_name)
    by_json = {json_name: model.openapi_types[attr] for attr, json_name in model.attribute_map.items()}
    out = []
    for key, item in value.items():
        if key not in by_json:
            out.append(f"{path}.{key}")
        elif item is not None:
            out.extend(unknown_fields(item, by_json[key], f"{path}.{key}"))
    return out


@pytest.fixture(scope="module")
def cronjob(real_cloud: CloudFn) -> dict[str, Any]:
    """The CronJob as the reconciler would apply it (stamped), with the uid the apiserver would give it."""
    cloud = real_cloud(TEMPLATE)
    found = [d.manifest for d in cloud.desired if d.key.kind == "CronJob" and d.key.name == "nova-cell-setup"]
    assert len(found) == 1, "the nova chart renders one CronJob nova-cell-setup"
    live: dict[str, Any] = copy.deepcopy(found[0])  # the session's render is shared
    live["metadata"]["uid"] = "0b5b2c5e-7d5e-4c43-9d38-4d7a0c1e2f3a"
    return live


def test_the_chart_runs_cell_setup_hourly_one_at_a_time(cronjob: dict[str, Any]) -> None:
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["schedule"] == "0 */1 * * *"


def test_the_job_is_a_valid_batch_v1_job(cronjob: dict[str, Any]) -> None:
    job = job_from_cronjob(cronjob, job_name("nova-cell-setup", NOW))
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "nova-cell-setup-hd-1700000000"
    assert unknown_fields(job, "V1Job") == []
    # every required field is there: the client's models refuse a missing one (container name, image, ...)
    parsed = client.ApiClient()._ApiClient__deserialize(job, "V1Job")  # type: ignore[attr-defined]
    assert isinstance(parsed, models.V1Job) and parsed.spec.template.spec.containers


def test_the_job_runs_the_charts_pod_as_it_is(cronjob: dict[str, Any]) -> None:
    template = cronjob["spec"]["jobTemplate"]
    job = job_from_cronjob(cronjob, "nova-cell-setup-hd-1")
    assert job["spec"]["template"] == template["spec"]["template"]
    ours = ("ttlSecondsAfterFinished", "activeDeadlineSeconds")
    assert {k: v for k, v in job["spec"].items() if k not in ours} == template["spec"]
    assert (job["spec"]["ttlSecondsAfterFinished"], job["spec"]["activeDeadlineSeconds"]) == (3600, 1800)  # none set
    pod = job["spec"]["template"]["spec"]
    main = [c for c in pod["containers"] if c["name"] == "nova-cell-setup"]
    assert len(main) == 1 and main[0]["command"] == ["/tmp/cell-setup.sh"]
    mount = next(m for m in main[0]["volumeMounts"] if m["mountPath"] == "/tmp/cell-setup.sh")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert (volume["configMap"]["name"], mount["subPath"]) == ("nova-bin", "cell-setup.sh")
    assert pod["serviceAccountName"] == "nova-cell-setup-cron"


def test_the_script_it_runs_discovers_hosts(real_cloud: CloudFn) -> None:
    bin_map = real_cloud(TEMPLATE).renders["nova"].find("ConfigMap", "nova-bin")
    assert "nova-manage cell_v2 discover_hosts" in bin_map["data"]["cell-setup.sh"]


def test_the_job_points_at_its_cronjob_as_kubectl_does(cronjob: dict[str, Any]) -> None:
    job = job_from_cronjob(cronjob, "nova-cell-setup-hd-1")
    meta = job["metadata"]
    assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nova-cell-setup",
                                        "uid": "0b5b2c5e-7d5e-4c43-9d38-4d7a0c1e2f3a", "controller": True}]
    assert meta["annotations"][INSTANTIATE_ANNOTATION] == "manual"
    assert meta["namespace"] == NAMESPACE
    # the jobTemplate's labels and ours; not the reconciler's ownership labels of the CronJob itself, so
    # the reconciler never counts (or prunes) the Job as an object it applied
    assert meta["labels"] == {**cronjob["spec"]["jobTemplate"]["metadata"]["labels"], LABEL: "true"}
    assert OWNER_LABEL in cronjob["metadata"]["labels"] and OWNER_LABEL not in meta["labels"]
