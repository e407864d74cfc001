"""Scale-out against the real thing: Debian's ``prometheus`` on loopback (temp storage, 1s
scrape and evaluation) scrapes two ``opsdash serve`` processes, ``--shard 1/2`` and
``--shard 2/2``, probing loopback services this test serves itself.

- together the shards' series cover the registry, each check exactly once;
- a broken service shows up in the query API within a check interval plus a scrape (polled
  with a bounded deadline, never slept for), and deploy/prometheus's alert fires
  (``/api/v1/alerts``), and in a real Alertmanager with deploy/'s configuration the
  incident pages while the check's own alert is inhibited. The rules are loaded as shipped,
  with their ``for:`` hold times set to 0s so the test need not wait minutes (promtool's unit
  tests cover the hold times);
- every PromQL expression of deploy/grafana/opsdash.json runs without error.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from opsdash.exporter import RENDER_EVERY, shard_of
from opsdash.plan import build_plan
from opsdash.registry import load_registry
from tests.loopback import Platform
from tests.prometheus_servers import (
    ALERTMANAGER_CONFIG,
    DEPLOY,
    RULES,
    AlertmanagerServer,
    PrometheusServer,
    free_ports,
)
from tests.servers import ServerUnavailable, unavailable, wait_until
from tests.test_alert_processes import ROOT, opsdash

pytestmark = pytest.mark.slow

SERVICES = 6
CHECK_INTERVAL = 1.0
SCRAPE_INTERVAL = 1.0
# The promise is one check interval plus one scrape (plus the exporter's once-a-second
# rendering); the deadline is generous because the machine is shared: it bounds the poll, it
# does not time the feature.
FAULT_DEADLINE = 30 * (CHECK_INTERVAL + SCRAPE_INTERVAL + RENDER_EVERY)
OK = (200, "application/json", b'{"status":"ok"}')
DOWN = (503, "application/json", b'{"status":"error"}')


class _WorkerMetrics:
    """A worker's counters, growing on every scrape (a window needs movement for rates)."""

    def __init__(self) -> None:
        self.scrapes = 0

    def __call__(self) -> tuple[int, str, bytes]:
        self.scrapes += 1
        n = self.scrapes
        body = (
            f'worker_retries_total{{worker="jobs"}} {5 * n}\n'
            f'worker_failures_total{{worker="jobs"}} {n}\n'
            f'worker_processed_total{{worker="jobs"}} {100 * n}\n'
        )
        return 200, "text/plain; version=0.0.4", body.encode()


def _registry_text(urls: list[str], worker_url: str) -> str:
    lines = [
        "version: 1",
        "platform: prom-test",
        "defaults:",
        f"  interval: {int(CHECK_INTERVAL * 1000)}ms",
        "  timeout: 2s",
        "services:",
    ]
    for index, url in enumerate(urls):
        lines += [f"  svc{index}:", f"    url: {url}"]
    selector = '{worker="jobs"}'
    lines += [
        "workers:",
        "  jobs-worker:",
        "    max_attempts: 3",
        "    dlq: {source: http-json, url: '" + worker_url + "/dlq', path: depth}",
        "    metrics:",
        "      source: prometheus",
        f"      url: {worker_url}/metrics",
        f"      retries: 'worker_retries_total{selector}'",
        f"      failures: 'worker_failures_total{selector}'",
        f"      processed: 'worker_processed_total{selector}'",
    ]
    return "\n".join(lines) + "\n"


def _rules_without_hold_times() -> str:
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    return yaml.safe_dump(rules)


@dataclass
class Stack:
    platform: Platform
    service_ports: list[int]
    check_ids: set[str]
    shards: list[int]
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer

    def break_ready(self, index: int) -> None:
        self.platform.routes[self.service_ports[index]]["/ready"] = DOWN

    def mend_ready(self, index: int) -> None:
        self.platform.routes[self.service_ports[index]]["/ready"] = OK


def _start_serve(registry: Path, port: int, shard: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        opsdash("serve", "-r", str(registry), "--listen", f"127.0.0.1:{port}", "--shard", shard),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_shards(registry: Path) -> tuple[list[int], list[subprocess.Popen[str]]]:
    """serve --shard 1/2 and 2/2, answering /healthz. A free port can be taken by another
    process before serve binds it (the machine is shared): then both start again elsewhere."""
    for _attempt in range(3):
        shards = free_ports(2)
        processes = [_start_serve(registry, port, f"{i + 1}/2") for i, port in enumerate(shards)]
        try:
            for port, process in zip(shards, processes, strict=True):
                wait_until(
                    lambda port=port, process=process: _answers(port, process),
                    timeout=30,
                    what=f"opsdash serve on {port}",
                )
            return shards, processes
        except _PortTaken:
            for process in processes:
                _stop(process)
    raise RuntimeError("no free port pair for the shards in 3 attempts")


class _PortTaken(Exception):
    pass


def _answers(port: int, process: subprocess.Popen[str]) -> bool:
    if process.poll() is not None:
        err = process.communicate()[1]
        if "address already in use" in err:
            raise _PortTaken(err)
        raise RuntimeError(f"serve exited: {err}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    platform = Platform()
    processes: list[subprocess.Popen[str]] = []
    prometheus: PrometheusServer | None = None
    alertmanager: AlertmanagerServer | None = None
    try:
        urls = [platform.add({"/health": OK, "/ready": OK}) for _ in range(SERVICES)]
        worker = platform.add(
            {
                "/dlq": (200, "application/json", b'{"depth": 3}'),
                "/metrics": _WorkerMetrics(),
            }
        )
        directory = tmp_path_factory.mktemp("prom-stack")
        registry = directory / "services.yaml"
        registry.write_text(_registry_text(urls, worker))
        check_ids = {spec.id for spec in build_plan(load_registry(registry))}
        # The test is only meaningful when both shards hold checks.
        assert {shard_of(check, 2) for check in check_ids} == {1, 2}

        shards, processes = _start_shards(registry)
        (directory / "opsdash-rules.yml").write_text(_rules_without_hold_times())
        config = {
            "global": {
                "scrape_interval": f"{int(SCRAPE_INTERVAL)}s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(directory / "opsdash-rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["AM"]}]}]},
            "scrape_configs": [
                {
                    "job_name": "opsdash",
                    "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in shards]}],
                }
            ],
        }
        try:
            # The example Alertmanager configuration, as shipped: its inhibit rules are tested
            # on the alerts the real rules fire.
            alertmanager = AlertmanagerServer(ALERTMANAGER_CONFIG)
            alertmanager.start()
            text = yaml.safe_dump(config).replace("AM", f"127.0.0.1:{alertmanager.port}")
            prometheus = PrometheusServer(text)
        except ServerUnavailable as exc:
            unavailable(str(exc))
        prometheus.start()
        yield Stack(
            platform,
            [int(url.rsplit(":", 1)[1]) for url in urls],
            check_ids,
            shards,
            prometheus,
            alertmanager,
        )
    finally:
        if prometheus is not None:
            prometheus.close()
        if alertmanager is not None:
            alertmanager.close()
        for process in processes:
            _stop(process)
        platform.close()


def _by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {sample["metric"][label]: float(sample["value"][1]) for sample in result}


def test_the_shards_together_cover_the_registry_each_check_once(stack: Stack) -> None:
    prometheus = stack.prometheus
    everything = f"count(opsdash_check_status) == {len(stack.check_ids)}"
    prometheus.poll("both shards scraped", lambda: prometheus.query(everything), timeout=60)

    per_check = _by(prometheus.query("count by (check) (opsdash_check_status)"), "check")
    assert set(per_check) == stack.check_ids
    assert set(per_check.values()) == {1.0}  # each check exactly once, on one shard
    per_shard = _by(prometheus.query("count by (instance) (opsdash_check_status)"), "instance")
    assert len(per_shard) == 2 and all(count > 0 for count in per_shard.values())
    # Each check on the shard its id hashes to.
    for sample in prometheus.query("opsdash_check_status"):
        port = int(sample["metric"]["instance"].rsplit(":", 1)[1])
        assert shard_of(sample["metric"]["check"], 2) == stack.shards.index(port) + 1
    checks = prometheus.query("sum(opsdash_exporter_checks)")
    assert float(checks[0]["value"][1]) == len(stack.check_ids)
    up = _by(prometheus.query('up{job="opsdash"}'), "instance")
    assert set(up.values()) == {1.0}


def _firing(prometheus: PrometheusServer, name: str, **labels: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in prometheus.api("alerts")["alerts"]
        if alert["labels"].get("alertname") == name
        and alert["state"] == "firing"
        and all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


def test_a_broken_service_shows_in_the_query_api_and_its_alert_fires(stack: Stack) -> None:
    prometheus = stack.prometheus
    check = "svc3.ready"
    prometheus.poll(
        "the check scraped ok",
        lambda: prometheus.query(f'opsdash_check_status{{check="{check}"}} == 0'),
        timeout=60,
    )
    assert not _firing(prometheus, "OpsdashCheckCritical")

    stack.break_ready(3)
    try:
        broke = time.monotonic()
        found = prometheus.poll(
            "the fault in the query API",
            lambda: prometheus.query(f'opsdash_check_status{{check="{check}"}} == 2'),
            timeout=FAULT_DEADLINE,
        )
        seen_after = time.monotonic() - broke
        assert found[0]["metric"]["component"] == "svc3"
        prometheus.poll(  # a recording rule, evaluated every second
            "the failing count recorded",
            lambda: prometheus.query("opsdash:checks_failing:count == 1"),
            timeout=FAULT_DEADLINE,
        )

        alerts = prometheus.poll(
            "OpsdashCheckCritical firing",
            lambda: _firing(prometheus, "OpsdashCheckCritical", check=check),
            timeout=FAULT_DEADLINE,
        )
        assert alerts[0]["labels"]["severity"] == "page"
        assert alerts[0]["labels"]["component"] == "svc3"
        assert alerts[0]["annotations"]["summary"] == f"{check} is critical"
        # The incident series: one page for the root cause, and the check's alert carries
        # that cause, so Alertmanager's inhibit rule (equal: [cause]) holds it back.
        incident = prometheus.poll(
            "OpsdashIncident firing",
            lambda: _firing(prometheus, "OpsdashIncident", cause="svc3"),
            timeout=FAULT_DEADLINE,
        )
        assert len(incident) == 1 and incident[0]["labels"]["severity"] == "page"
        labelled = prometheus.poll(
            "the check alert labelled with its cause",
            lambda: _firing(prometheus, "OpsdashCheckCritical", check=check, cause="svc3"),
            timeout=FAULT_DEADLINE,
        )
        assert labelled

        # Alertmanager: the incident pages, the check it explains is inhibited by it.
        def states() -> dict[str, str]:
            listed = httpx.get(f"{stack.alertmanager.url}/api/v2/alerts", timeout=10).json()
            return {
                a["labels"]["alertname"]: a["status"]["state"]
                for a in listed
                if a["labels"].get("cause") == "svc3"
            }

        prometheus.poll(
            "the incident active and its check inhibited in Alertmanager",
            lambda: states() == {"OpsdashIncident": "active", "OpsdashCheckCritical": "suppressed"},
            timeout=FAULT_DEADLINE,
        )
        # Only the broken check pages: its neighbours on both shards stay quiet.
        assert {a["labels"]["check"] for a in _firing(prometheus, "OpsdashCheckCritical")} == {
            check
        }
        print(f"fault visible in Prometheus {seen_after:.1f}s after the break")
    finally:
        stack.mend_ready(3)
    prometheus.poll(
        "the check ok again",
        lambda: prometheus.query(f'opsdash_check_status{{check="{check}"}} == 0'),
        timeout=FAULT_DEADLINE,
    )
    prometheus.poll(
        "the alert resolved",
        lambda: not _firing(prometheus, "OpsdashCheckCritical", check=check),
        timeout=FAULT_DEADLINE,
    )


# --- the Grafana dashboard ---------------------------------------------------------------------

GRAFANA = DEPLOY / "grafana" / "opsdash.json"
# Grafana's own variables, as Grafana would expand them for a 3h view.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "3h"}


# What `opsdash serve` exports (opsdash/metrics.py, opsdash/exporter.py): the dashboard
# needs no recording rule.
EXPORTED = {
    "opsdash_check_status",
    "opsdash_check_latency_seconds",
    "opsdash_check_error",
    "opsdash_component_status",
    "opsdash_dlq_depth",
    "opsdash_dlq_growth_per_minute",
    "opsdash_worker_rate_per_minute",
    "opsdash_worker_retry_ratio_percent",
    "opsdash_probe_errors_total",
    "opsdash_check_last_run_timestamp_seconds",
    "opsdash_exporter_checks",
    "opsdash_exporter_start_timestamp_seconds",
    "opsdash_incident_status",
    "opsdash_incident_affected",
    "opsdash_incident_check",
    "opsdash_check_info",
    "opsdash_tls_cert_expiry_seconds",
}


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def _expand(expr: str, variables: dict[str, str]) -> str:
    for name, value in {**_GRAFANA_VARIABLES, **variables}.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unexpanded variable in {expr!r}"
    return expr


def test_every_grafana_expression_runs_on_the_real_prometheus(stack: Stack) -> None:
    dashboard = json.loads(GRAFANA.read_text())
    prometheus = stack.prometheus
    prometheus.poll(
        "series scraped",
        lambda: prometheus.query(f"count(opsdash_check_status) == {len(stack.check_ids)}"),
        timeout=60,
    )
    prometheus.poll(
        "worker figures scraped",
        lambda: prometheus.query("opsdash_worker_retry_ratio_percent"),
        timeout=60,
    )

    # The template variables: label_values(metric, label) through the label-values API.
    variables: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"]
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", query)
        assert match, query
        values = httpx.get(
            f"{prometheus.url}/api/v1/label/{match[2]}/values",
            params={"match[]": match[1]},
            timeout=10,
        ).json()
        assert values["status"] == "success" and "svc0" in values["data"]
        variables[f"${variable['name']}"] = variable["allValue"]

    expressions = list(_expressions(dashboard["panels"]))
    assert len(expressions) >= 15
    empty = []
    for expr in expressions:
        expanded = _expand(expr, variables)
        names = set(re.findall(r"\b(opsdash_[a-z_]+)\b", expanded))
        assert names <= EXPORTED, f"{expr!r} reads a series opsdash does not export"
        assert names or 'up{job="opsdash"}' in expanded, f"{expr!r} reads no opsdash series"
        # Run as Grafana does: a range query over the panel's window, and an instant one.
        now = time.time()
        range_data = prometheus.api(
            "query_range", query=expanded, start=str(now - 300), end=str(now), step="15"
        )
        assert range_data["resultType"] == "matrix"
        instant = prometheus.query(expanded)
        if not instant:
            empty.append(expanded)
    # Incident and error panels are empty while nothing is broken; every other panel shows data.
    only_on_failure = ("opsdash_incident_", "opsdash_check_error", "opsdash_probe_errors")
    assert all(any(name in expr for name in only_on_failure) for expr in empty), empty
