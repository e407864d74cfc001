"""Hostile registry inputs (issue 11, class 3): every one is a file:line configuration error,
exit 3 and, with ``--json``, the one opsdash.check/v1 document; none costs more than a bounded
read (devices, FIFOs, huge files) or a bounded walk (deep nesting, nested references)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opsdash.cli import main
from opsdash.harness import run_probe
from opsdash.plan import build_plan
from opsdash.registry import RegistryError, load_registry
from opsdash.registry.files import MAX_FILE_SIZE_ENV
from opsdash.registry.model import Registry
from opsdash.resources import Resources, run_async
from opsdash.results import CheckResult, ErrorType
from opsdash.status import Status

HEAD = "version: 1\nplatform: hostile\n"


def check_json(capsys: pytest.CaptureFixture[str], registry: Path, *extra: str) -> str:
    """``check --json`` on ``registry``: asserts exit 3 and one document; its error message."""
    code = main(["check", "-r", str(registry), "--json", *extra])
    out = capsys.readouterr().out
    assert code == 3
    document = json.loads(out)  # exactly one document, nothing else on stdout
    assert document["status"] == "unknown"
    assert document["error"]["type"] == "config"
    return str(document["error"]["message"])


def validate(capsys: pytest.CaptureFixture[str], registry: Path, *extra: str) -> str:
    code = main(["validate", "-r", str(registry), *extra])
    captured = capsys.readouterr()
    assert code == 3
    assert "Traceback" not in captured.err
    return captured.err


def write(tmp_path: Path, text: str, name: str = "services.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("x: " + "[" * 500 + "]" * 500 + "\n", 3),  # flow, inside libyaml's own limit
        ("x: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", 3),  # flow, past libyaml's limit
        ("x:\n" + "".join(" " * i + "a:\n" for i in range(1, 300)), None),  # block
    ],
    ids=["flow-500", "flow-2000", "block-300"],
)
def test_deep_nesting_is_a_config_error_at_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, line: int | None
) -> None:
    registry = write(tmp_path, HEAD + body)
    message = check_json(capsys, registry)
    assert "nests deeper than 64 levels" in message
    where = message.split(": ", 1)[0]
    assert where.startswith(f"{registry}:")
    if line is not None:
        assert where == f"{registry}:{line}"
    assert "nests deeper than 64 levels" in validate(capsys, registry)


@pytest.mark.parametrize(("char", "name"), [("\x00", "NUL"), ("\x1b", "ESC")])
def test_control_characters_are_named_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], char: str, name: str
) -> None:
    registry = write(tmp_path, HEAD + f"services:\n  a:\n    url: http://x{char}[2J\n")
    message = check_json(capsys, registry)
    assert message.startswith(f"{registry}:5: character U+00{ord(char):02X} ({name})")
    assert char not in message
    err = validate(capsys, registry)
    assert f"{registry}:5:" in err and char not in err


def test_references_nested_thousands_deep_are_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "${A:-" * 3000 + "http://x" + "}" * 3000
    registry = write(tmp_path, HEAD + f"services:\n  a:\n    url: '{url}'\n")
    message = check_json(capsys, registry)
    assert (
        message
        == f"{registry}:5: services.a.url: references nest deeper than 16 levels in a default"
    )


def test_references_nested_within_the_limit_still_resolve(tmp_path: Path) -> None:
    url = "${A:-" * 15 + "http://127.0.0.1:1" + "}" * 15
    registry = write(tmp_path, HEAD + f"services:\n  a:\n    url: '{url}'\n")
    loaded = load_registry(registry, environ={})
    assert loaded.services["a"].url == "http://127.0.0.1:1"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_as_registry_or_overlay_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str
) -> None:
    message = check_json(capsys, Path(device))
    assert message == f"{device}: cannot read the file: it is a character device, not a file"
    registry = write(tmp_path, HEAD)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "prod.yaml").symlink_to(device)
    message = check_json(capsys, registry, "--env", "prod")
    assert message.endswith("prod.yaml: cannot read the file: it is a character device, not a file")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "services.yaml"
    os.mkfifo(fifo)
    # A subprocess, so that a regression (an open() that waits for a writer) fails the test
    # at the timeout instead of hanging the suite.
    done = subprocess.run(
        [sys.executable, "-m", "opsdash", "check", "-r", str(fifo), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    message = json.loads(done.stdout)["error"]["message"]
    assert message == f"{fifo}: cannot read the file: it is a FIFO, not a file"


def test_a_directory_prints_the_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_json(capsys, tmp_path) == f"{tmp_path}: cannot read the file: Is a directory"
    assert "Is a directory" in validate(capsys, tmp_path)


def test_a_file_over_the_size_cap_is_refused_and_the_cap_is_configurable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = write(tmp_path, HEAD + "# " + "x" * 4096 + "\n")
    monkeypatch.setenv(MAX_FILE_SIZE_ENV, "4KiB")
    message = check_json(capsys, registry)
    assert message.startswith(f"{registry}: the file is larger than 4 KiB")
    assert MAX_FILE_SIZE_ENV in message
    monkeypatch.setenv(MAX_FILE_SIZE_ENV, "1MiB")
    assert main(["validate", "-r", str(registry)]) == 0
    monkeypatch.setenv(MAX_FILE_SIZE_ENV, "lots")
    with pytest.raises(RegistryError, match=f"{MAX_FILE_SIZE_ENV} must be a size"):
        load_registry(registry)


# --- .sql probe files (class 5) ----------------------------------------------------------


def sql_registry(
    tmp_path: Path, file: str, *, dsn: str = "postgresql://opsdash@127.0.0.1:1/x"
) -> Path:
    return write(
        tmp_path,
        HEAD
        + "datastores:\n  pg:\n    kind: postgres\n"
        + f"    dsn: {dsn}\n    sql_checks:\n      probe:\n        file: {file}\n",
    )


@pytest.mark.parametrize("file", ["../../../../../../etc/passwd", "/etc/passwd", "escape.sql"])
def test_a_sql_file_outside_the_registry_tree_is_a_config_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str
) -> None:
    (tmp_path / "escape.sql").symlink_to("/etc/passwd")  # a symlink out of the tree
    registry = sql_registry(tmp_path, file)
    message = check_json(capsys, registry)
    assert message.startswith(f"{registry}:9: datastores.pg.sql_checks.probe.file: {file} is ")
    assert "outside the registry's directory" in message
    assert "root:" not in message  # nothing of the file was read


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_sql_file_that_is_not_a_regular_file_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    if target == "fifo":
        os.mkfifo(checks / "q.sql")
    else:
        # Inside the tree as far as the path goes; resolved, it is a device outside it.
        (checks / "q.sql").symlink_to(target)
    registry = sql_registry(tmp_path, "checks/q.sql")
    message = check_json(capsys, registry)
    assert message.startswith(f"{registry}:9: datastores.pg.sql_checks.probe.file: ")
    assert ("a FIFO, not a file" in message) or ("outside the registry's directory" in message)


def test_a_registry_built_in_code_cannot_read_outside_its_tree_either(tmp_path: Path) -> None:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "x",
            "datastores": {
                "pg": {
                    "kind": "postgres",
                    "dsn": "postgresql://opsdash@127.0.0.1:1/x",
                    "sql_checks": {"probe": {"file": "/etc/passwd"}},
                }
            },
        }
    ).located_at(tmp_path)
    spec = next(spec for spec in build_plan(registry) if spec.id == "pg.probe")

    async def once() -> CheckResult:
        async with Resources() as resources:
            return await run_probe(spec, resources)

    result = run_async(once())
    assert result.status is Status.UNKNOWN
    assert result.error is not None and result.error.type is ErrorType.CONFIG
    assert "outside the registry's directory" in result.summary


def test_validate_warns_about_a_superuser_dsn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write(
        tmp_path,
        HEAD + "datastores:\n  pg:\n    kind: postgres\n    dsn: postgresql://postgres@db/x\n"
        "  ro:\n    kind: postgres\n    dsn: host=db user=opsdash\n",
    )
    assert main(["validate", "-r", str(registry)]) == 0
    err = capsys.readouterr().err
    assert "warning: datastores.pg.dsn: connects as the superuser 'postgres'" in err
    assert "datastores.ro" not in err


# --- values that can never work (class 4) ------------------------------------------------


def problems_of(tmp_path: Path, body: str) -> list[str]:
    """Each line ``validate`` reports for a registry of ``HEAD + body`` (which must fail)."""
    registry = write(tmp_path, HEAD + body)
    with pytest.raises(RegistryError) as raised:
        load_registry(registry, environ={})
    return [str(problem).removeprefix(f"{registry}:") for problem in raised.value.problems]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("services:\n  a:\n    url: http://127.0.0.1:106538\n",
         "5: services.a.url: expected a port in 1-65535; found 106538"),
        ("services:\n  a:\n    url: http://127.0.0.1:0/\n",
         "5: services.a.url: expected a port in 1-65535; found 0"),
        ("datastores:\n  pg:\n    kind: postgres\n    dsn: host=db port=70000\n",
         "6: datastores.pg.dsn: expected a port in 1-65535; found 70000"),
        ("datastores:\n  m:\n    kind: mongo\n    uri: mongodb://a:27017,b:99999/x\n",
         "6: datastores.m.uri: expected a port in 1-65535; found 99999"),
        ("workers:\n  w:\n    dlq: {source: http-json, url: 'http://h:65536/q', path: n}\n",
         "5: workers.w.dlq.url: expected a port in 1-65535; found 65536"),
    ],
    ids=["service-wraps", "port-zero", "libpq-keyword", "mongo-second-host", "dlq-url"],
)  # fmt: skip
def test_a_port_outside_the_range_is_refused_at_its_line(
    tmp_path: Path, body: str, expected: str
) -> None:
    assert problems_of(tmp_path, body) == [expected]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("defaults: {interval: 0s}\n",
         "3: defaults.interval: expected an interval of at least 100ms; found 0ms"),
        ("defaults: {timeout: 0s}\n",
         "3: defaults.timeout: expected a timeout of at least 10ms; found 0ms"),
        ("services:\n  a: {url: 'http://h', interval: 50ms}\n",
         "4: services.a.interval: expected an interval of at least 100ms; found 50ms"),
        ("alerts:\n  targets:\n    hook: {type: webhook, url: 'http://h', timeout: 1ms}\n",
         "5: alerts.targets.hook.timeout: expected a timeout of at least 10ms; found 1ms"),
        ("alerts: {repeat_interval: 9999999d}\n",
         "3: alerts.repeat_interval: expected a duration of at most 3650d (ten years); "
         "found '9999999d'"),
    ],
    ids=["interval-0", "timeout-0", "interval-override", "target-timeout", "ten-years"],
)  # fmt: skip
def test_intervals_and_timeouts_have_sane_bounds(tmp_path: Path, body: str, expected: str) -> None:
    assert problems_of(tmp_path, body) == [expected]


MONGO_DLQ = """datastores:
  m: {{kind: mongo, uri: '{uri}'}}
workers:
  w:
    dlq: {{source: mongo, datastore: m, collection: dead{database}}}
"""


def test_a_mongo_dlq_without_a_database_anywhere_is_refused(tmp_path: Path) -> None:
    body = MONGO_DLQ.format(uri="mongodb://127.0.0.1:27017/?appName=x", database="")
    assert problems_of(tmp_path, body) == [
        "7: workers.w.dlq: expected a database: set dlq.database, or name one in datastore "
        "'m''s URI (mongodb://host/DATABASE)"
    ]
    for uri, database in (("mongodb://127.0.0.1/jobs", ""), ("mongodb://h", ", database: jobs")):
        registry = write(tmp_path, HEAD + MONGO_DLQ.format(uri=uri, database=database))
        assert load_registry(registry, environ={}).workers["w"].dlq is not None


def test_validate_exits_3_with_the_line_of_a_value_that_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = write(tmp_path, HEAD + "services:\n  a:\n    url: http://127.0.0.1:106538\n")
    assert f"{registry}:5: services.a.url: expected a port in 1-65535" in validate(capsys, registry)
