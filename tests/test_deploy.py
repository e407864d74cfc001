"""deploy/: the Prometheus rules (promtool check and unit tests), the Alertmanager example
(amtool, and a real Alertmanager inhibiting the dependants' alerts), the systemd units
(systemd-analyze verify where it exists), the Kubernetes manifests and every YAML file.

promtool, amtool and prometheus-alertmanager are Debian packages that .ci/run installs: a
missing one skips locally and fails under CI (OPSDASH_REQUIRE_SERVERS=1). systemd-analyze is
not a server and CI does not install systemd for it, so it always skips with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.prometheus_servers import (
    ALERTMANAGER_CONFIG,
    DEPLOY,
    RULES,
    AlertmanagerServer,
    binary,
)
from tests.servers import ServerUnavailable, unavailable, wait_until

YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
SYSTEMD = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"


def tool(*names: str) -> str:
    try:
        return binary(*names)
    except ServerUnavailable as exc:
        unavailable(str(exc))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


# --- every YAML file ------------------------------------------------------------------------


class _UniqueKeys(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=_UniqueKeys) if doc is not None]


def test_deploy_holds_every_piece() -> None:
    names = {path.relative_to(DEPLOY).as_posix() for path in DEPLOY.rglob("*") if path.is_file()}
    assert {
        "prometheus/opsdash-rules.yml",
        "prometheus/tests/opsdash-rules.test.yml",
        "prometheus/alertmanager.yml",
        "prometheus/prometheus.yml",
        "grafana/opsdash.json",
        "systemd/opsdash-serve.service",
        "systemd/opsdash-alert.service",
        "systemd/opsdash-alert.timer",
        "kubernetes/opsdash-serve.yaml",
        "kubernetes/opsdash-alert.yaml",
    } <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses_without_duplicate_keys(path: Path) -> None:
    documents = load_all(path)
    assert documents, f"{path} holds no document"
    assert all(isinstance(doc, dict) for doc in documents)


def test_grafana_dashboard_is_json_with_panels() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "opsdash.json").read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    for wanted in ("Platform status", "Incidents (root causes)", "Services", "DLQ depth"):
        assert wanted in titles
    assert "Retry ratio" in titles


# --- Prometheus rules -------------------------------------------------------------------------


def test_promtool_checks_the_rules_and_the_example_config() -> None:
    promtool = tool("promtool")
    rules = run(promtool, "check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = run(promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    promtool = tool("promtool")
    done = run(
        promtool, "test", "rules", str(DEPLOY / "prometheus" / "tests" / "opsdash-rules.test.yml")
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a rule that pages on every dependant fails them."""
    promtool = tool("promtool")
    broken = RULES.read_text().replace(
        "expr: opsdash:incident_status:max >= 2",
        "expr: max by (cause, instance) (opsdash_incident_status) >= 2",
    )
    assert broken != RULES.read_text()
    (tmp_path / "opsdash-rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    shutil.copy(DEPLOY / "prometheus" / "tests" / "opsdash-rules.test.yml", tmp_path / "tests")
    done = run(promtool, "test", "rules", str(tmp_path / "tests" / "opsdash-rules.test.yml"))
    assert done.returncode != 0
    assert "OpsdashIncident" in done.stdout + done.stderr


# --- Alertmanager -------------------------------------------------------------------------------


def test_amtool_checks_the_alertmanager_example() -> None:
    amtool = tool("amtool")
    done = run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 inhibit rules" in done.stdout


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[AlertmanagerServer]:
    try:
        server = AlertmanagerServer(ALERTMANAGER_CONFIG)
    except ServerUnavailable as exc:
        unavailable(str(exc))
    with server:
        yield server


def _alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name}}


def test_alertmanager_inhibits_the_dependants_of_a_paging_incident(
    alertmanager: AlertmanagerServer,
) -> None:
    alerts = [
        _alert("OpsdashIncident", cause="redis", severity="page"),
        _alert("OpsdashIncidentWarning", cause="redis", severity="ticket"),
        _alert("OpsdashCheckCritical", check="redis", cause="redis", severity="page"),
        _alert(
            "OpsdashCheckCritical", check="booking-service.ready", cause="redis", severity="page"
        ),
        # Another root cause, not paging: its check alert goes out.
        _alert("OpsdashCheckCritical", check="postgres", cause="postgres", severity="page"),
        # A check no incident explains (no cause label): never inhibited.
        _alert("OpsdashCheckCritical", check="search-service.ready", severity="page"),
    ]
    posted = httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=10)
    assert posted.status_code == 200, posted.text

    def states() -> dict[tuple[str, str], str]:
        listed = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=10).json()
        return {
            (a["labels"]["alertname"], a["labels"].get("check", "")): a["status"]["state"]
            for a in listed
        }

    wait_until(lambda: len(states()) == len(alerts), timeout=20, what="alerts received")
    assert states() == {
        ("OpsdashIncident", ""): "active",
        ("OpsdashIncidentWarning", ""): "suppressed",
        ("OpsdashCheckCritical", "redis"): "suppressed",
        ("OpsdashCheckCritical", "booking-service.ready"): "suppressed",
        ("OpsdashCheckCritical", "postgres"): "active",
        ("OpsdashCheckCritical", "search-service.ready"): "active",
    }


# --- systemd ------------------------------------------------------------------------------------


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # Not a server binary: CI does not install systemd for it (see the module docstring).
        pytest.skip("systemd-analyze is not installed (package systemd)")
    # verify insists that ExecStart's binary exists: point it at this checkout's opsdash.
    opsdash = Path(sys.executable).with_name("opsdash")
    assert opsdash.exists()
    units = []
    for unit in sorted(SYSTEMD.iterdir()):
        text = unit.read_text()
        assert "/usr/local/bin/opsdash" in text or unit.suffix == ".timer"
        (tmp_path / unit.name).write_text(text.replace("/usr/local/bin/opsdash", str(opsdash)))
        units.append(str(tmp_path / unit.name))
    done = subprocess.run(
        [analyze, "verify", *units],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "opsdash" not in done.stderr, done.stderr  # no warning about our units either


def _unit(name: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def test_systemd_serve_is_a_service_and_alert_runs_on_a_timer() -> None:
    serve = _unit("opsdash-serve.service")
    assert serve["ExecStart"][0].split()[1] == "serve"
    assert serve["Restart"] == ["on-failure"]
    alert = _unit("opsdash-alert.service")
    assert alert["Type"] == ["oneshot"]
    assert alert["ExecStart"][0].split()[1] == "alert"
    assert alert["SuccessExitStatus"] == ["1 2"]  # warn and crit are runs that worked
    assert "OPSDASH_STATE=/var/lib/opsdash/state.db" in alert["Environment"]
    assert alert["StateDirectory"] == ["opsdash"]
    timer = _unit("opsdash-alert.timer")
    assert timer["Unit"] == ["opsdash-alert.service"]
    assert timer["OnCalendar"] == ["minutely"]


# --- Kubernetes ---------------------------------------------------------------------------------


def _kinds(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in load_all(path)}


def test_statefulset_takes_each_shard_from_the_pod_ordinal() -> None:
    docs = _kinds(KUBERNETES / "opsdash-serve.yaml")
    statefulset = docs["StatefulSet"]
    assert docs["Service"]["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == docs["Service"]["metadata"]["name"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    replicas = statefulset["spec"]["replicas"]
    assert env["OPSDASH_SHARDS"]["value"] == str(replicas)
    # Run the container's shell line with a stand-in opsdash that prints its arguments.
    script = container["args"][0].replace("exec opsdash", "echo")
    shards = []
    for ordinal in range(replicas):
        done = subprocess.run(
            [*container["command"], script],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={
                "POD_NAME": f"opsdash-{ordinal}",
                "OPSDASH_SHARDS": str(replicas),
                "PATH": "/usr/bin:/bin",
            },
        )
        words = done.stdout.split()
        shards.append(words[words.index("--shard") + 1])
    assert shards == [f"{i + 1}/{replicas}" for i in range(replicas)]


def test_alert_cronjob_keeps_its_state_on_a_volume() -> None:
    docs = _kinds(KUBERNETES / "opsdash-alert.yaml")
    cronjob = docs["CronJob"]
    assert cronjob["spec"]["schedule"] == "* * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    state_dir = str(Path(env["OPSDASH_STATE"]).parent)
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    state_volume = next(name for name, path in mounts.items() if path == state_dir)
    claim = volumes[state_volume]["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert "alert" in " ".join([*container["command"], *container.get("args", [])])
