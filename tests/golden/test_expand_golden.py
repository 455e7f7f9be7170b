"""Golden test: the template spec expands to exactly the checked-in values.

Any change to catalog, presets, releases, endpoints or layering shows up here as a reviewable
diff of fixtures/expand-template.json. To regenerate it after an intended change:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden/test_expand_golden.py

then review `git diff tests/golden/fixtures/` before committing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from openstack_gitops.model import (
    autoscaled_deployments,
    expand,
    load_spec,
    needed_credentials,
    service_fingerprints,
    validate,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "config-repo-template" / "openstack.yaml"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "expand-template.json"


def render() -> str:
    spec = load_spec(TEMPLATE.read_text(), "openstack.yaml")
    assert validate(spec) == []
    credentials = {name: f"fake-{name}" for name in needed_credentials(spec)}
    values = expand(spec, credentials)
    document = {
        "autoscaled_deployments": sorted(autoscaled_deployments(spec)),
        "charts": values,
        "service_fingerprints": service_fingerprints(values),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def test_template_spec_expands_to_the_golden_values() -> None:
    actual = render()
    if os.environ.get("UPDATE_GOLDEN"):
        FIXTURE.write_text(actual)
    assert FIXTURE.exists(), f"missing {FIXTURE}; run with UPDATE_GOLDEN=1 to create it"
    assert actual == FIXTURE.read_text(), "expansion changed; if intended, regenerate with UPDATE_GOLDEN=1"
