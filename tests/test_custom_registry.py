"""``checks:`` in the registry: every kind loads, and every kind's bad input is a file:line
error naming the key, exit 3 (also through the CLI, with --json one document)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from opsdash.cli import main
from opsdash.plan import build_plan
from opsdash.registry import RegistryError, load_registry

BASE = """\
version: 1
platform: test
datastores:
  pg:
    kind: postgres
    dsn: postgresql://opsdash@127.0.0.1:5432/platform
services:
  web:
    url: http://127.0.0.1:8000
    tags: [core]
"""


def write(tmp_path: Path, web: str = "", tail: str = "") -> Path:
    """The base registry, ``web`` added to the web service (indented for it), ``tail`` after."""
    path = tmp_path / "services.yaml"
    text = BASE + textwrap.indent(textwrap.dedent(web), "    ") + textwrap.dedent(tail)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, marker: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


def problems(path: Path) -> list[str]:
    with pytest.raises(RegistryError) as caught:
        load_registry(path, environ={})
    return str(caught.value).splitlines()


def test_every_kind_loads_and_plans_with_its_own_options(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
            checks:
              disk: {plugin: check_disk, args: [-w, 10%], env: {TOKEN: x}, timeout: 10s}
              port: {tcp: "127.0.0.1:8000", send: "PING\\r\\n", expect: PONG, tags: [net]}
              name: {dns: example.com, type: AAAA, expect: ["2001:db8::1"], interval: 1m}
              cert: {tls: "example.com:443", cert_expiry: {warn: 30d, crit: 7d}}
              status:
                http: /status
                expect:
                  status: [200, 2xx, 200-204]
                  json: {"$.status": UP, "$.queue.depth": {lt: 100}, '$["a.b"][0]': {exists: true}}
                  body: '"status"'
                  headers: {Content-Type: json}
                  latency: 500ms
              nightly: {heartbeat: {max_age: 26h, token: 0123456789abcdef0123}}
        """,
    )
    registry = load_registry(path, environ={})
    specs = {spec.id: spec for spec in build_plan(registry)}
    assert [s for s in specs if s.startswith("web.")] == [
        "web.health",
        "web.ready",
        "web.disk",
        "web.port",
        "web.name",
        "web.cert",
        "web.status",
        "web.nightly",
    ]
    assert specs["web.disk"].kind == "plugin"
    assert specs["web.disk"].target == str(tmp_path / "checks" / "check_disk")
    assert specs["web.disk"].timeout == 10.0
    assert specs["web.port"].tags == ("core", "net")
    assert specs["web.name"].interval == 60.0
    assert specs["web.status"].target == "http://127.0.0.1:8000/status"
    assert (specs["web.cert"].kind, specs["web.cert"].target) == ("tls", "tls://example.com:443")
    assert specs["web.nightly"].kind == "heartbeat"
    assert specs["web.disk"].latency is None  # no latency judged unless the check sets one


def test_custom_checks_on_datastores_and_workers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        """,
        tail="""\
        workers:
          exporter:
            checks:
              nightly: {heartbeat: {max_age: 26h}}
        """,
    ).read_text()
    path = path.replace(
        "    dsn: postgresql://opsdash@127.0.0.1:5432/platform\n",
        "    dsn: postgresql://opsdash@127.0.0.1:5432/platform\n"
        "    checks:\n"
        '      tls: {tls: "127.0.0.1:5432", starttls: postgres}\n',
    )
    (tmp_path / "services.yaml").write_text(path)
    specs = [s.id for s in build_plan(load_registry(tmp_path / "services.yaml", environ={}))]
    assert "pg.tls" in specs and "exporter.nightly" in specs


@pytest.mark.parametrize(
    ("check", "marker", "key", "message"),
    [
        (
            '{tcp: "db:5432", sedn: x}',
            "sedn",
            "checks.c.sedn",
            "unknown key 'sedn'; did you mean 'send'?",
        ),
        (
            "{nothing: 1}",
            "nothing",
            "checks.c",
            (
                "expected a mapping with one of the keys plugin, tcp, dns, tls, http or "
                "heartbeat; found a mapping"
            ),
        ),
        (
            '{tcp: "db"}',
            "tcp",
            "checks.c.tcp",
            "expected HOST:PORT such as db.internal:5432; found 'db'",
        ),
        (
            '{tcp: "db:70000"}',
            "tcp",
            "checks.c.tcp",
            (
                "expected a port from 1 to 65535 in HOST:PORT such as db.internal:5432; found "
                "'db:70000'"
            ),
        ),
        (
            '{tls: "bad host:443"}',
            "tls",
            "checks.c.tls",
            "expected HOST:PORT such as db.internal:5432; found 'bad host:443' (bad host)",
        ),
        (
            "{dns: 'no such..name'}",
            "dns",
            "checks.c.dns",
            "expected a host name or an IP address; found 'no such..name'",
        ),
        (
            "{dns: x.org, type: A, expect: ['::1']}",
            "dns",
            "checks.c.expect",
            "can never match: ::1 is an IPv6 address; an A record holds IPv4",
        ),
        (
            "{dns: x.org, type: MX}",
            "dns",
            "checks.c.type",
            "expected 'A', 'AAAA' or 'CNAME'; found 'MX'",
        ),
        (
            "{http: /s, expect: {status: 700}}",
            "http",
            "checks.c.expect.status",
            "can never match: HTTP status codes run from 100 to 599; found 700",
        ),
        (
            "{http: /s, expect: {status: 299-200}}",
            "http",
            "checks.c.expect.status",
            "can never match: the range 299-200 is empty",
        ),
        (
            "{http: /s, expect: {body: '('}}",
            "http",
            "checks.c.expect.body",
            (
                "expected a regular expression; missing ), unterminated subpattern at position "
                "0 in '('"
            ),
        ),
        (
            "{http: /s, expect: {headers: {X: '[a'}}}",
            "http",
            "checks.c.expect.headers",
            "expected a regular expression; unterminated character set at position 0 in '[a'",
        ),
        (
            "{http: /s, expect: {json: {'$.n': {gt: 5, lt: 3}}}}",
            "http",
            "checks.c.expect.json.$.n",
            "can never match: no number is > 5 and < 3",
        ),
        (
            "{http: /s, expect: {json: {'$.n': {ge: 3, lt: 3}}}}",
            "http",
            "checks.c.expect.json.$.n",
            "can never match: no number is >= 3 and < 3",
        ),
        (
            "{http: /s, expect: {json: {'$.n': {eq: 1, ne: 1}}}}",
            "http",
            "checks.c.expect.json.$.n",
            "can never match: eq and ne are both 1",
        ),
        (
            "{http: /s, expect: {json: {'$.n': {}}}}",
            "http",
            "checks.c.expect.json.$.n",
            "expected at least one of eq, ne, gt, ge, lt, le, matches, exists",
        ),
        (
            "{http: /s, expect: {json: {status: UP}}}",
            "http",
            "checks.c.expect.json.status",
            "expected a JSON path such as $.status or $.checks[0].name; found 'status'",
        ),
        (
            "{http: /s, expect: {stauts: 200}}",
            "http",
            "checks.c.expect.stauts",
            "unknown key 'stauts'; did you mean 'status'?",
        ),
        (
            "{http: 'ftp://x/y'}",
            "http",
            "checks.c.http",
            "expected an http:// or https:// URL; found 'ftp://x/y'",
        ),
        (
            "{heartbeat: {max_age: 0s}}",
            "heartbeat",
            "checks.c.heartbeat.max_age",
            "expected a duration longer than zero",
        ),
        (
            "{heartbeat: {max_age: 1d, token: short}}",
            "heartbeat",
            "checks.c.heartbeat.token",
            "expected a token of at least 16 characters",
        ),
        (
            "{plugin: ''}",
            "plugin",
            "checks.c.plugin",
            "expected the path of an executable; found ''",
        ),
        (
            "{plugin: x, env: {'BAD NAME': v}}",
            "plugin",
            "checks.c.env",
            "expected environment variable names; found 'BAD NAME'",
        ),
    ],
)
def test_bad_input_is_a_file_line_error(
    tmp_path: Path, check: str, marker: str, key: str, message: str
) -> None:
    path = write(tmp_path, f"checks:\n  c: {check}\n")
    line = line_of(path, "      c: ")
    assert problems(path) == [f"{path}:{line}: services.web.{key}: {message}"]
    assert marker in path.read_text().splitlines()[line - 1]


def test_names_that_clash_or_cannot_be_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
            checks:
              health: {tcp: "127.0.0.1:1"}
              bad.name: {tcp: "127.0.0.1:1"}
        """,
        """\
        workers:
          w:
            checks:
              status: {http: /status}
        """,
    )
    assert problems(path) == [
        f"{path}:{line_of(path, 'health:')}: services.web.checks.health: "
        "the name is already used by the built-in check web.health",
        f"{path}:{line_of(path, 'bad.name')}: services.web.checks.bad.name: "
        "expected a name matching ^[A-Za-z0-9][A-Za-z0-9_-]*$; found 'bad.name'",
        f"{path}:{line_of(path, 'status:')}: workers.w.checks.status.http: "
        "expected a full URL, not a path; found '/status'",
    ]


def test_cli_exits_3_with_the_problem_and_json_stays_one_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'checks:\n  c: {tcp: "db:0"}\n')
    assert main(["check", "-r", str(path)]) == 3
    err = capsys.readouterr().err
    assert f"{path}:{line_of(path, 'c: ')}: services.web.checks.c.tcp: " in err
    assert "Traceback" not in err
    assert main(["check", "-r", str(path), "--json"]) == 3
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "unknown"
    assert "services.web.checks.c.tcp" in document["error"]["message"]
    assert main(["check", "-r", str(path), "--format", "nagios"]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "OPSDASH UNKNOWN - invalid configuration"
    assert "services.web.checks.c.tcp" in out[1]


def test_the_schema_documents_the_custom_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    text = json.dumps(schema)
    for kind in ("PluginCheck", "TcpCheck", "DnsCheck", "TlsCheck", "HttpCheck", "HeartbeatCheck"):
        assert kind in schema["$defs"], kind
    assert "checks" in schema["$defs"]["Service"]["properties"]
    assert '"json"' in text  # the alias users write, not the Python name


def test_the_schema_validates_a_registry_with_custom_checks(tmp_path: Path) -> None:
    import jsonschema
    import yaml

    from opsdash.registry.summary import registry_json_schema

    document = yaml.safe_load(
        BASE
        + "    checks:\n"
        + "      a: {tcp: 'db:1'}\n"
        + "      b: {http: /s, expect: {status: [200, 2xx], json: {'$.s': {gt: 1}}}}\n"
        + "      c: {heartbeat: {max_age: 26h}}\n"
    )
    jsonschema.validate(document, registry_json_schema())
    document["services"]["web"]["checks"]["d"] = {"nothing": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, registry_json_schema())
