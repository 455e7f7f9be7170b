"""Meaning checks the schema cannot express: dependencies, release path, replica bounds, charts,
the health watcher's per-workload overrides.

Each rule is a small pure function listed in `RULES`; `validate` runs them all so the operator
sees every problem at once. Each error names its file, line, field and what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import AUTOSCALABLE, SERVICES, GuardedWorkload, guarded
from .errors import SpecError
from .presets import replicas
from .releases import RELEASE_ORDER, RELEASES, UpgradeKind, classify_upgrade
from .source import Path
from .spec import AutoscalingPolicy, MetricPreset, Spec

MIN_REPLICAS = 1
MAX_REPLICAS = 100


@dataclass(frozen=True)
class Inputs:
    """Facts from outside the spec that some rules need; None means "unknown, skip the rule"."""

    available_charts: Mapping[str, str] | None = None  # chart name -> version in the chart source
    current_release: str | None = None  # release running in the cluster now
    promql_errors: Mapping[str, str] | None = None  # query -> Prometheus' parse error (None: not checked)
    rendered_deployments: frozenset[str] | None = None  # Deployments of the render (None: not rendered)


Rule = Callable[[Spec, Inputs], Iterator[SpecError]]


def known_release(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """The release must be one we have pins for."""
    if spec.release not in RELEASES:
        yield _error(
            spec, ("spec", "release"), f"unknown release '{spec.release}'", "one of: " + ", ".join(RELEASE_ORDER)
        )


def upgrade_path(spec: Spec, inputs: Inputs) -> Iterator[SpecError]:
    """Only the next release is an allowed move: no downgrade, no skip-level upgrade."""
    current = inputs.current_release
    if current is None or spec.release not in RELEASES:
        return
    kind = classify_upgrade(current, spec.release)
    if kind is UpgradeKind.DOWNGRADE:
        yield _error(
            spec,
            ("spec", "release"),
            f"downgrade from {current} to {spec.release} is refused",
            f"{current} or the release after it",
        )
    elif kind is UpgradeKind.SKIP_LEVEL:
        following = RELEASE_ORDER[RELEASE_ORDER.index(current) + 1]
        yield _error(
            spec,
            ("spec", "release"),
            f"skip-level upgrade from {current} to {spec.release} is refused",
            f"{following} first (one release at a time)",
        )
    elif kind is UpgradeKind.UNKNOWN:
        yield _error(
            spec,
            ("spec", "release"),
            f"the running release {current} is not supported",
            "one of: " + ", ".join(RELEASE_ORDER),
        )


def some_service_enabled(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """Switching everything off would prune the whole cloud, which is never what a typo meant."""
    if not spec.enabled_services:
        yield _error(
            spec, ("spec", "services"), "a spec that removes every service is refused", "at least one service enabled"
        )


def dependencies_enabled(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """An enabled service needs each of its dependencies enabled too.

    A missing dependency is reported once, at the service closest to it: with mariadb off, the
    error is on identity, not repeated on every service that reaches mariadb through identity.
    """
    enabled = spec.enabled_services
    for name, info in SERVICES.items():
        if name not in enabled:
            continue
        via = [SERVICES[d] for d in info.depends_on if d in enabled]
        for dependency in info.depends_on:
            if dependency in enabled or any(dependency in v.depends_on for v in via):
                continue
            yield _error(
                spec,
                ("spec", "services", name, "enabled"),
                f"{name} needs {dependency}, which is disabled",
                f"spec.services.{dependency}.enabled: true, or {name} disabled",
            )


def autoscaling_targets(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """Policies may only name API Deployments the autoscaler can scale, of enabled services."""
    for policy in spec.autoscaling:
        path: Path = ("spec", "autoscaling", policy.deployment)
        api = AUTOSCALABLE.get(policy.deployment)
        if api is None:
            close = difflib.get_close_matches(policy.deployment, list(AUTOSCALABLE), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            yield _error(
                spec,
                path,
                f"'{policy.deployment}' is not an autoscalable API Deployment{hint}",
                "one of: " + ", ".join(AUTOSCALABLE),
            )
        elif api.service not in spec.enabled_services:
            yield _error(
                spec,
                path,
                f"{policy.deployment} belongs to {api.service}, which is disabled",
                f"{api.service} enabled, or no policy for {policy.deployment}",
            )


def autoscaling_bounds(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """Replica bounds must be possible: 1 <= min <= max <= 100."""
    for p in spec.autoscaling:
        base: Path = ("spec", "autoscaling", p.deployment)
        if p.min_replicas < MIN_REPLICAS:
            yield _error(
                spec,
                (*base, "minReplicas"),
                f"minReplicas {p.min_replicas} is below {MIN_REPLICAS}",
                f"at least {MIN_REPLICAS}",
            )
        if p.max_replicas > MAX_REPLICAS:
            yield _error(
                spec,
                (*base, "maxReplicas"),
                f"maxReplicas {p.max_replicas} is above {MAX_REPLICAS}",
                f"at most {MAX_REPLICAS}",
            )
        if p.min_replicas > p.max_replicas:
            yield _error(
                spec,
                (*base, "minReplicas"),
                f"minReplicas {p.min_replicas} is greater than maxReplicas {p.max_replicas}",
                "minReplicas <= maxReplicas",
            )


def autoscaling_metric(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """Raw PromQL needs its query, and a query is only read with ``metric: promql``."""
    for p in spec.autoscaling:
        base: Path = ("spec", "autoscaling", p.deployment)
        if p.metric is MetricPreset.PROMQL and not p.query:
            yield _error(spec, (*base, "metric"), "metric promql needs a query", "query: <PromQL returning one series>")
        elif p.query and p.metric is not MetricPreset.PROMQL:
            yield _error(spec, (*base, "query"), f"a query is not read with metric {p.metric.value}",
                         "metric: promql, or no query")


def autoscaling_promql(spec: Spec, inputs: Inputs) -> Iterator[SpecError]:
    """A raw query must parse (Prometheus' own parser, run by the edge; ``$backend`` filled in)."""
    errors = inputs.promql_errors
    if errors is None:
        return
    for p in spec.autoscaling:
        problem = errors.get(promql_checked(p)) if p.metric is MetricPreset.PROMQL and p.query else None
        if problem:
            yield _error(spec, ("spec", "autoscaling", p.deployment, "query"),
                         f"PromQL does not parse: {problem}", "a PromQL expression returning one series")


def promql_checked(policy: AutoscalingPolicy) -> str:
    """The text of a policy's query as it is parsed: ``$backend`` stands for a backend name."""
    return policy.query.replace("$backend", "backend")


def autoscaling_rendered(spec: Spec, inputs: Inputs) -> Iterator[SpecError]:
    """A policy must name a Deployment the charts really render (known only after a render)."""
    rendered = inputs.rendered_deployments
    if rendered is None:
        return
    for p in spec.autoscaling:
        if p.deployment not in rendered:
            close = difflib.get_close_matches(p.deployment, sorted(rendered), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            yield _error(spec, ("spec", "autoscaling", p.deployment),
                         f"the render has no Deployment '{p.deployment}'{hint}",
                         "a Deployment the enabled charts render")


def watched_kinds(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """A workload the watcher does not guard by default needs its kind (the watcher looks it up by
    kind and name); a default's kind, when stated, must be the one the chart renders."""
    defaults = {g.name: g for g in guarded(spec.network_backend)}
    for w in spec.health_watcher.workloads:
        path: Path = ("spec", "healthWatcher", "workloads", w.name)
        default = defaults.get(w.name)
        if default is None and w.kind is None:
            close = difflib.get_close_matches(w.name, list(defaults), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            yield _error(spec, path,
                         f"'{w.name}' is not guarded by default with backend {spec.network_backend.value}{hint}",
                         "kind: DaemonSet or kind: StatefulSet, or one of: " + ", ".join(defaults))
        elif default is not None and w.kind is not None and w.kind != default.kind:
            yield _error(spec, (*path, "kind"), f"{w.name} is a {default.kind}, not a {w.kind}",
                         f"kind: {default.kind}, or no kind")


def watched_quorum(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """A quorum is only read for a database, and must be reachable: at most the replicas the spec
    gives a default database (the size preset, or its override); unknown for other workloads."""
    defaults = {g.name: g for g in guarded(spec.network_backend)}
    for w in spec.health_watcher.workloads:
        if w.quorum is None:
            continue
        path: Path = ("spec", "healthWatcher", "workloads", w.name, "quorum")
        default = defaults.get(w.name)
        database = w.database if w.database is not None else default is not None and default.database
        if not database:
            yield _error(spec, path, f"a quorum is only read for a database workload, and {w.name} is not one",
                         "database: true, or no quorum")
            continue
        members = _replicas(spec, default) if default is not None else None
        if members is not None and w.quorum > members:
            yield _error(spec, path, f"quorum {w.quorum} is more than the {members} replicas of {w.name}: "
                         "no member could ever be restarted", f"at most {members}")


def _replicas(spec: Spec, workload: GuardedWorkload) -> int | None:
    """Replicas the spec gives a default workload: its chart override, else the size preset."""
    if workload.replicas is None:
        return None
    chart, component = workload.replicas
    pod = spec.overrides.get(chart, {}).get("pod")
    stated = pod.get("replicas") if isinstance(pod, Mapping) else None
    count = stated.get(component) if isinstance(stated, Mapping) else None
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    return replicas(spec.size, chart).get(component)


def override_replicas(spec: Spec, _: Inputs) -> Iterator[SpecError]:
    """Raw overrides bypass the schema, so replica counts set there are checked here."""
    for chart, values in spec.overrides.items():
        pod = values.get("pod")
        replicas = pod.get("replicas") if isinstance(pod, Mapping) else None
        if isinstance(replicas, Mapping):
            yield from _replica_counts(spec, ("spec", "overrides", chart, "pod", "replicas"), replicas)


def _replica_counts(spec: Spec, path: Path, replicas: Mapping[str, Any]) -> Iterator[SpecError]:
    for component, count in replicas.items():
        here: Path = (*path, component)
        if isinstance(count, Mapping):
            yield from _replica_counts(spec, here, count)
        elif isinstance(count, bool) or not isinstance(count, int):
            yield _error(spec, here, f"replica count {count!r} is not a whole number", "a whole number, 0 or more")
        elif count < 0:
            yield _error(spec, here, f"negative replica count {count}", "a whole number, 0 or more")


def charts_available(spec: Spec, inputs: Inputs) -> Iterator[SpecError]:
    """Every chart of an enabled service must exist in the chart source at the pinned version."""
    available = inputs.available_charts
    release = RELEASES.get(spec.release)
    if available is None or release is None:
        return
    where = f"{spec.chart_source.type.value} {spec.chart_source.location}"
    for chart in spec.charts:
        path: Path
        if chart in spec.chart_versions:
            expected, path, origin = spec.chart_versions[chart], ("spec", "charts", "versions", chart), "override"
        else:
            expected, path, origin = release.chart_versions[chart], ("spec", "release"), f"{spec.release} pin"
        found = available.get(chart)
        if found is None:
            yield _error(
                spec,
                ("spec", "charts", "source"),
                f"chart '{chart}' is missing from the chart source ({where})",
                f"{chart} {expected} ({origin})",
            )
        elif found != expected:
            yield _error(
                spec,
                path,
                f"chart '{chart}' is version {found} in the chart source ({where})",
                f"{chart} {expected} ({origin})",
            )


RULES: tuple[tuple[str, Rule], ...] = (
    ("known release", known_release),
    ("upgrade path", upgrade_path),
    ("some service enabled", some_service_enabled),
    ("dependencies enabled", dependencies_enabled),
    ("autoscaling targets", autoscaling_targets),
    ("autoscaling bounds", autoscaling_bounds),
    ("autoscaling metric", autoscaling_metric),
    ("autoscaling promql", autoscaling_promql),
    ("autoscaling rendered", autoscaling_rendered),
    ("watched kinds", watched_kinds),
    ("watched quorum", watched_quorum),
    ("override replicas", override_replicas),
    ("charts available", charts_available),
)
"""Every meaning check, in the order its errors are reported."""


def validate(
    spec: Spec, available_charts: Mapping[str, str] | None = None, current_release: str | None = None,
    promql_errors: Mapping[str, str] | None = None, rendered_deployments: frozenset[str] | None = None,
) -> list[SpecError]:
    """All meaning errors of `spec` (empty when it may be applied). Pure.

    `available_charts` (name -> version in the chart source), `current_release` (what runs now),
    `promql_errors` (Prometheus' parser on the raw queries) and `rendered_deployments` come from
    the edges; when None, the rules that need them are skipped.
    """
    inputs = Inputs(available_charts, current_release, promql_errors, rendered_deployments)
    return [error for _, rule in RULES for error in rule(spec, inputs)]


def _error(spec: Spec, path: Path, message: str, expected: str) -> SpecError:
    return spec.source.error(path, message, expected)
