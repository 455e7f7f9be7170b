"""A real Prometheus server for the test bed, with a generated config and live reloads.

    prom = Prometheus(directory)          # scrapes itself as job "prometheus"
    prom.start()
    prom.add_target("haproxy", "127.0.0.1:8405")   # rewrites prometheus.yml, POST /-/reload
    prom.query('haproxy_backend_current_sessions{proxy="keystone-api"}')
    prom.stop()
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed import process, state
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "prometheus"
INSTALL_HINT = "apt-get install -y prometheus"


@dataclass
class ScrapeJob:
    metrics_path: str = "/metrics"
    targets: list[str] = field(default_factory=list)


class Prometheus(Service):
    """``/usr/bin/prometheus`` on 127.0.0.1:<free port>; config, data and log under ``directory``.

    Prometheus' service discovery hands targets to the scraper at most every 5 s, so the first
    scrape of a target comes up to ~5 s after ``start()`` or ``add_target()`` (which waits for it).
    """

    name = NAME

    def __init__(self, directory: Path, scrape_interval: float = 1.0, binary: str = "/usr/bin/prometheus",
                 timeout: float = 60.0) -> None:
        super().__init__(directory)
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.timeout = timeout
        self.port = 0
        self.jobs: dict[str, ScrapeJob] = {}
        self.startup_seconds = 0.0

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` (only meaningful once started)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    @property
    def data_dir(self) -> Path:
        return self.directory / "prometheus-data"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / f"{NAME}.log"

    def start(self) -> None:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TestbedError(NAME, f"{self.binary} not found; install it with: {INSTALL_HINT}")
        started = time.monotonic()
        self.port = process.free_port()
        self.jobs.setdefault(NAME, ScrapeJob(targets=[self.address]))
        self.jobs[NAME].targets = [self.address]
        self._write_config()
        argv = [exe, f"--config.file={self.config_file}", f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address={self.address}", "--web.enable-lifecycle", "--log.level=info"]
        self._proc = process.start(NAME, argv, self.log_file, cwd=self.directory)
        try:
            state.record(self.directory, self._proc, prometheus={"url": self.url})
            process.wait_ready(self._proc, lambda: _http(f"{self.url}/-/ready")[0] == 200, self.timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def add_target(self, job: str, target: str, metrics_path: str = "/metrics", wait: bool = True) -> None:
        """Scrape ``target`` (``host:port``) in ``job``; when running, reload and (``wait``) wait until
        Prometheus lists it as active, which takes up to 5 s (its discovery hands over targets every 5 s)."""
        scrape = self.jobs.setdefault(job, ScrapeJob(metrics_path=metrics_path))
        scrape.metrics_path = metrics_path
        if target not in scrape.targets:
            scrape.targets.append(target)
        if self._proc is not None:
            self.reload()
            if wait:
                self._wait_active(job, target)

    def remove_job(self, job: str) -> None:
        if self.jobs.pop(job, None) is not None and self._proc is not None:
            self.reload()

    def reload(self) -> None:
        """Rewrite ``prometheus.yml`` and ``POST /-/reload``; a rejected config raises."""
        self._write_config()
        code, body = _http(f"{self.url}/-/reload", method="POST")
        if code != 200:
            raise TestbedError(NAME, f"reload failed (HTTP {code}): {body.strip()}", str(self.log_file))

    def query(self, promql: str) -> list[Any]:
        """An instant query; returns ``data.result`` (for a vector: ``[{"metric": {...}, "value": [t, "v"]}]``)."""
        data = self._api("query", {"query": promql})
        result = data["result"]
        return result if isinstance(result, list) else [result]

    def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self._api("targets", {"state": "active"})["activeTargets"]
        return targets



    def _write_config(self) -> None:
        interval = f"{round(self.scrape_interval * 1000)}ms"
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": job, "metrics_path": scrape.metrics_path,
                 "static_configs": [{"targets": list(scrape.targets)}]}
                for job, scrape in self.jobs.items()
            ],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.config_file.with_suffix(".yml.tmp")
        tmp.write_text("# generated by testbed/prometheus.py\n" + yaml.safe_dump(config, sort_keys=False))
        tmp.replace(self.config_file)

    def _wait_active(self, job: str, target: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for active in self.active_targets():
                labels = active.get("labels", {})
                if labels.get("job") == job and labels.get("instance") == target:
                    return
            time.sleep(0.2)
        raise TestbedError(NAME, f"target {target} of job {job} not active after {self.timeout:.0f}s",
                           str(self.log_file))

    def _api(self, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        code, body = _http(url)
        try:
            reply = json.loads(body)
        except ValueError:
            reply = {}
        if code != 200 or reply.get("status") != "success":
            raise TestbedError(NAME, f"{endpoint} {params} failed (HTTP {code}): {body.strip()[:500]}")
        data: dict[str, Any] = reply["data"]
        return data


def _http(url: str, method: str = "GET", timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of a plain HTTP request; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
