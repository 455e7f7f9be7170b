"""Fixtures rendering the real, unmodified OpenStack-Helm charts with the pinned helm binary.

Every render goes through the reconciler's Helm edge (``helm template <chart> <dir> --namespace
... --kube-version v1.36.3``, helm-toolkit vendored into a private copy, values on stdin), so the
charts directory is never written to. `real_cloud(spec_file)` renders a whole spec of
config-repo-template through the reconciler's pipeline once per session, every chart in
parallel; the policy, render and secret tests share those renders.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from openstack_gitops.model import complete, expand, load_spec, needed_credentials, validate
from openstack_gitops.model.spec import ChartSource, ChartSourceType
from reconciler.edges.helm import ChartRef, Helm
from reconciler.engine import pipeline
from testbed.build import binary
from testbed.charts import upstream_charts
from testbed.errors import TestbedError

from .chart_support import KUBE_VERSION, NAMESPACE, WORKERS, Cloud, CloudFn, Rendered, RenderFn, parse_docs


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    try:
        path = Path(binary("helm"))
    except TestbedError as exc:  # the pinned helm is built by `python -m testbed build`
        pytest.skip(f"pinned helm binary not built: {exc}")
    if not path.exists():
        pytest.skip(f"pinned helm binary missing at {path}")
    return path


@pytest.fixture(scope="session")
def charts_root() -> Path:
    """The upstream charts (one directory per chart, helm-toolkit unbuilt beside them)."""
    return upstream_charts()


@pytest.fixture(scope="session")
def helm(helm_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helm]:
    with Helm(str(helm_binary), tmp_path_factory.mktemp("helm"), timeout=180, cache_size=1024) as edge:
        yield edge


@pytest.fixture(scope="session")
def render_chart(helm: Helm, charts_root: Path) -> RenderFn:
    """render_chart(chart, values=None, release=None) -> Rendered: one real chart through the Helm edge."""

    def render(chart: str, values: Mapping[str, Any] | None = None, release: str | None = None) -> Rendered:
        ref = ChartRef(chart, "directory", str(charts_root / chart))
        text = helm.render(release or chart, ref, NAMESPACE, dict(values or {}), KUBE_VERSION)
        return Rendered(text, parse_docs(text))

    return render


@pytest.fixture(scope="session")
def real_cloud(helm: Helm, charts_root: Path) -> CloudFn:
    """real_cloud(spec_file) -> Cloud: the spec expanded with generated credentials and every chart
    rendered from the real charts by the reconciler's pipeline; once per spec file and session."""
    done: dict[Path, Cloud] = {}

    def get(spec_file: Path) -> Cloud:
        if spec_file not in done:
            spec = load_spec(spec_file.read_text(), spec_file.name)
            assert validate(spec) == [], spec_file.name
            spec = replace(spec, chart_source=ChartSource(ChartSourceType.DIRECTORY, str(charts_root)))
            credentials, _ = complete({}, needed_credentials(spec), secrets.token_urlsafe)
            values = expand(spec, credentials)
            texts = pipeline.render(spec, charts_root, helm, values, KUBE_VERSION, workers=WORKERS)
            desired = [pipeline.namespace_desired(spec)]
            for chart, text in texts.items():
                desired.extend(pipeline.desired_objects(spec, chart, text))
            renders = {chart: Rendered(text, parse_docs(text)) for chart, text in texts.items()}
            done[spec_file] = Cloud(spec, credentials, values, renders, tuple(desired))
        return done[spec_file]

    return get
