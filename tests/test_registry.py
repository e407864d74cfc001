"""The registry loader: every class of configuration error names file, line and key path.

Each test writes a small registry, breaks one thing, and checks the exact line a user would
read: ``<file>:<line>: <key.path>: <what was expected; what was found>``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opsdash.registry import Registry, RegistryError, load_registry
from opsdash.registry.model import PostgresDatastore, RedisKeyDlq

FIXTURES = Path(__file__).parent / "fixtures" / "registry"

BASE = """\
version: 1
platform: test-platform
datastores:
  pg:
    kind: postgres
    dsn: postgresql://opsdash@127.0.0.1:5432/platform
  cache:
    kind: redis
    url: redis://127.0.0.1:6379/0
services:
  web:
    url: http://127.0.0.1:8000
    depends_on: [pg, cache]
"""


def write(directory: Path, text: str, name: str = "services.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(path: Path, marker: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``marker``."""
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    return lines[occurrence - 1]


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(RegistryError) as caught:
        load_registry(path, **kwargs)  # type: ignore[arg-type]
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems)
    return lines


def load(path: Path, **kwargs: object) -> Registry:
    return load_registry(path, **kwargs)  # type: ignore[arg-type]


# --- what loads ---------------------------------------------------------------------------


def test_a_valid_registry_loads_into_typed_objects(tmp_path: Path) -> None:
    registry = load(write(tmp_path, BASE), environ={})
    assert registry.platform == "test-platform"
    assert isinstance(registry.datastores["pg"], PostgresDatastore)
    assert registry.services["web"].depends_on == ("pg", "cache")
    assert registry.services["web"].health == "/health"


def test_variables_are_interpolated_with_and_without_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
  api:
    url: ${API_URL:-http://127.0.0.1:8001}
    headers: {Authorization: "Bearer ${API_TOKEN}"}
  admin:
    url: ${ADMIN_URL:-http://${ADMIN_HOST:-127.0.0.1}:8002}
    ready: ${ADMIN_READY:-/ready}
  literal:
    url: http://127.0.0.1:8003
    health: /health?q=$${not_a_variable}
""",
    )
    registry = load(path, environ={"API_TOKEN": "t0ken", "ADMIN_READY": "", "ADMIN_HOST": "::1"})
    assert registry.services["api"].url == "http://127.0.0.1:8001"
    assert registry.services["api"].headers == {"Authorization": "Bearer t0ken"}
    # ``:-`` takes the default for an empty value too; defaults may nest references.
    assert registry.services["admin"].ready == "/ready"
    assert registry.services["admin"].url == "http://::1:8002"
    assert registry.services["literal"].health == "/health?q=${not_a_variable}"

    overridden = load(path, environ={"API_TOKEN": "x", "API_URL": "http://127.0.0.2:9000"})
    assert overridden.services["api"].url == "http://127.0.0.2:9000"


def test_yaml_merge_keys_are_not_mistaken_for_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
  api: &svc
    url: http://127.0.0.1:8001
    timeout: 1s
  api2:
    <<: *svc
    url: http://127.0.0.1:8002
""",
    )
    registry = load(path, environ={})
    assert registry.services["api2"].url == "http://127.0.0.1:8002"
    assert registry.services["api2"].timeout == 1.0


def test_names_that_yaml_would_turn_into_booleans_stay_names(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  yes:\n    url: http://127.0.0.1:8009\n")
    assert "yes" in load(path, environ={}).services


# --- syntax -------------------------------------------------------------------------------


def test_duplicate_keys_are_errors_at_any_depth(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
    timeout: 1s
    timeout: 2s
  web:
    url: http://127.0.0.1:9000
platform: again
""",
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'timeout: 2s')}: services.web.timeout: "
        f"duplicate key 'timeout' (first written at line {line_of(path, 'timeout: 1s')})",
        f"{path}:{line_of(path, 'web:', 2)}: services.web: "
        f"duplicate key 'web' (first written at line {line_of(path, 'web:')})",
        f"{path}:{line_of(path, 'platform: again')}: platform: "
        "duplicate key 'platform' (first written at line 2)",
    ]


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = FIXTURES / "syntax_error.yaml"
    [message] = problems(path, environ={})
    assert message.startswith(f"{path}:{line_of(path, 'api:')}: invalid YAML: ")
    assert "expected ',' or ']'" in message


def test_a_tab_in_the_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    path = FIXTURES / "tabs.yaml"
    [message] = problems(path, environ={})
    assert message.startswith(f"{path}:4: invalid YAML: ")
    assert "'\\t'" in message


def test_an_unknown_tag_is_reported_not_raised(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("test-platform", "!!python/name:os.system"))
    [message] = problems(path, environ={})
    assert message.startswith(f"{path}:2: platform: invalid YAML: ")
    assert "could not determine a constructor" in message


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write(tmp_path, "version: 1\nplatform: p\nbomb:\n" + "\n".join(levels) + "\n")
    [message] = problems(path, environ={})
    assert "expands too far" in message


def test_unusable_files_are_registry_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.yaml"
    assert problems(missing, environ={}) == [f"{missing}: the file does not exist"]
    assert problems(tmp_path, environ={}) == [f"{tmp_path}: cannot read the file: Is a directory"]
    empty = write(tmp_path, "# nothing yet\n")
    assert problems(empty, environ={}) == [
        f"{empty}: the file is empty; expected a registry (version: 1, platform: ...)"
    ]


def test_a_file_that_is_not_utf8_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_bytes(b"version: 1\nplatform: caf\xe9\n")
    assert problems(path, environ={}) == [f"{path}:2: cannot read the file: not UTF-8 text"]


def test_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- web\n- api\n")
    assert problems(path, environ={}) == [
        f"{path}:1: expected a mapping (key: value); found a list"
    ]


# --- schema ---------------------------------------------------------------------------------


def test_unknown_keys_are_errors_with_a_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
    helth: /healthz
    latency: {wrn: 1s}
alerst: {}
""",
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'helth')}: services.web.helth: "
        "unknown key 'helth'; did you mean 'health'?",
        f"{path}:{line_of(path, 'wrn')}: services.web.latency.wrn: "
        "unknown key 'wrn'; did you mean 'warn'?",
        f"{path}:{line_of(path, 'alerst')}: alerst: unknown key 'alerst'; did you mean 'alerts'?",
    ]


def test_an_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "    colour: blue\n")
    [message] = problems(path, environ={})
    assert message.startswith(f"{path}:{line_of(path, 'colour')}: services.web.colour: ")
    assert "unknown key 'colour'; expected one of: tags, timeout, interval, latency, url" in message


def test_wrong_types_say_what_was_expected_and_found(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.replace("depends_on: [pg, cache]", "depends_on: pg")
        + """\
    health: 3
    tls_verify: maybe
    headers: [x]
workers:
  mailer:
    max_attempts: 0
""",
    )
    at = lambda marker: f"{path}:{line_of(path, marker)}"  # noqa: E731
    assert problems(path, environ={}) == [
        f"{at('depends_on')}: services.web.depends_on: expected a list such as [a, b]; found 'pg'",
        f"{at('health: 3')}: services.web.health: expected a string or false; found 3",
        f"{at('tls_verify')}: services.web.tls_verify: expected true or false; found 'maybe'",
        f"{at('headers')}: services.web.headers: expected a mapping (key: value); found a list",
        f"{at('max_attempts')}: workers.mailer.max_attempts: expected a number at least 1; found 0",
    ]


def test_a_missing_required_key_points_at_its_entry(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  api:\n    timeout: 1s\n")
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'api:')}: services.api: missing required key 'url'"
    ]


def test_an_unsupported_version(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("version: 1", "version: 2"))
    assert problems(path, environ={}) == [f"{path}:1: version: expected 1; found 2"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("timeout", "3 seconds", "expected a duration such as 500ms, 3s, 1m, 1h or 14d"),
        ("timeout", "-1", "expected a duration such as 500ms, 3s, 1m, 1h or 14d"),
        ("interval", ".inf", "expected a duration such as 500ms, 3s, 1m, 1h or 14d"),
        ("latency", "{warn: fast}", "expected a duration such as 500ms, 3s, 1m, 1h or 14d"),
    ],
)
def test_bad_durations(tmp_path: Path, key: str, value: str, expected: str) -> None:
    path = write(tmp_path, BASE + f"    {key}: {value}\n")
    loc = "services.web.latency.warn" if key == "latency" else f"services.web.{key}"
    [message] = problems(path, environ={})
    assert message.startswith(f"{path}:{line_of(path, key + ':')}: {loc}: {expected}; found ")


def test_bad_percentages_and_rates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.replace("kind: redis", "kind: redis\n    memory: {warn: lots}")
        + """\
workers:
  mailer:
    dlq:
      source: redis-list
      datastore: cache
      key: dlq:mail
      growth: {warn: fast}
""",
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'memory')}: datastores.cache.memory.warn: "
        "expected a percentage such as 80%; found 'lots'",
        f"{path}:{line_of(path, 'growth')}: workers.mailer.dlq.growth.warn: "
        "expected a rate such as 1/min, 10/h or 2/s; found 'fast'",
    ]


# --- discriminated unions -----------------------------------------------------------------


def test_datastore_kind_missing_or_unknown(tmp_path: Path) -> None:
    broken = BASE.replace(
        "  cache:\n    kind: redis\n",
        "  cache:\n    kind: reddis\n  docs:\n    uri: mongodb://127.0.0.1:27017\n",
    )
    path = write(tmp_path, broken)
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'reddis')}: datastores.cache.kind: "
        "expected one of postgres, redis, mongo; found 'reddis'; did you mean 'redis'?",
        f"{path}:{line_of(path, 'docs:')}: datastores.docs: "
        "missing required key 'kind' (one of postgres, redis, mongo)",
    ]


def test_dlq_and_metrics_sources_and_alert_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
workers:
  mailer:
    dlq: {datastore: cache, key: dlq:mail}
    metrics: {source: statsd, url: http://127.0.0.1:9100/metrics}
  billing:
    dlq: [cache]
alerts:
  targets:
    pager: {type: pagerduty, url: https://example.invalid/hook}
""",
    )
    dlq_sources = "redis-list, redis-zset, redis-stream, bullmq, rabbitmq, sql, mongo, http-json"
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'dlq: {')}: workers.mailer.dlq: "
        f"missing required key 'source' (one of {dlq_sources})",
        f"{path}:{line_of(path, 'metrics:')}: workers.mailer.metrics.source: "
        "expected one of prometheus, redis-hash, http-json; found 'statsd'",
        f"{path}:{line_of(path, 'dlq: [')}: workers.billing.dlq: "
        "expected a mapping (key: value); found a list",
        f"{path}:{line_of(path, 'pager:')}: alerts.targets.pager.type: "
        "expected one of webhook, slack, apprise; found 'pagerduty'",
    ]


def test_a_member_of_a_union_missing_a_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE + "workers:\n  mailer:\n    dlq: {source: redis-list, datastore: cache}\n",
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'dlq:')}: workers.mailer.dlq: missing required key 'key'"
    ]


# --- references ---------------------------------------------------------------------------


def test_depends_on_must_name_a_datastore(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("[pg, cache]", "[pg, mongo]"))
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'depends_on')}: services.web.depends_on[1]: "
        "expected a datastore (cache, pg); found 'mongo'"
    ]


def test_depends_on_in_block_style_points_at_the_item(tmp_path: Path) -> None:
    path = write(
        tmp_path, BASE.replace("depends_on: [pg, cache]", "depends_on:\n      - pg\n      - nope")
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, '- nope')}: services.web.depends_on[1]: "
        "expected a datastore (cache, pg); found 'nope'"
    ]


def test_a_dlq_must_read_through_a_datastore_of_the_right_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE + "workers:\n  mailer:\n    dlq: {source: redis-list, datastore: pg, key: k}\n",
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'dlq:')}: workers.mailer.dlq.datastore: "
        "expected a redis datastore; found 'pg'"
    ]


def test_a_name_may_not_be_reused_across_sections(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "workers:\n  web:\n    max_attempts: 3\n")
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'web:', 2)}: workers.web: the name is already used in services"
    ]


def test_a_name_with_a_dot_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  web.v2:\n    url: http://127.0.0.1:8001\n")
    [message] = problems(path, environ={})
    assert message.startswith(f"{path}:{line_of(path, 'web.v2')}: services.web.v2: expected a name")


def test_alert_routes_must_name_targets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
alerts:
  targets:
    hook: {type: webhook, url: http://127.0.0.1:9999/hook}
  routes:
    - targets: [hook, pager]
""",
    )
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, '- targets')}: alerts.routes[0].targets[1]: "
        "expected the name of a target (hook); found 'pager'"
    ]


# --- variables ----------------------------------------------------------------------------


def test_a_missing_variable_names_the_variable_and_the_place(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("url: http://127.0.0.1:8000", "url: ${WEB_URL}"))
    # Reported once: the empty value it leaves is not a second problem.
    assert problems(path, environ={"OTHER": "x"}) == [
        f"{path}:{line_of(path, 'WEB_URL')}: services.web.url: the environment variable WEB_URL "
        "is not set (set it, or write ${WEB_URL:-default} to give a default)"
    ]


def test_a_malformed_reference(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "    health: /h?${not valid}\n    ready: /r?${OPEN\n")
    assert problems(path, environ={}) == [
        f"{path}:{line_of(path, 'health')}: services.web.health: "
        "expected ${NAME} or ${NAME:-default}; found '${not valid}'",
        f"{path}:{line_of(path, 'ready')}: services.web.ready: "
        "expected ${NAME} or ${NAME:-default}; found an unclosed '${'",
    ]


# --- several problems, secrets ------------------------------------------------------------


def test_several_problems_are_reported_together_in_line_order() -> None:
    path = FIXTURES / "many_problems.yaml"
    at = lambda marker: f"{path}:{line_of(path, marker)}"  # noqa: E731
    assert problems(path, environ={}) == [
        f"{at('3 seconds')}: defaults.timeout: "
        "expected a duration such as 500ms, 3s, 1m, 1h or 14d; found '3 seconds'",
        f"{at('reddis')}: datastores.cache.kind: "
        "expected one of postgres, redis, mongo; found 'reddis'; did you mean 'redis'?",
        f"{at('helth')}: services.web.helth: unknown key 'helth'; did you mean 'health'?",
        f"{at('mongo]')}: services.web.depends_on[1]: expected a datastore (pg); found 'mongo'",
        f"{at('8002')}: services.api.url: duplicate key 'url' (first written at line "
        f"{line_of(path, '8001')})",
        f"{at('max_attempts')}: workers.mailer.max_attempts: expected a number at least 1; found 0",
        f"{at('datastore: pg')}: workers.mailer.dlq.datastore: "
        "expected a redis datastore; found 'pg'",
    ]


def test_secrets_never_appear_in_error_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + """\
    timeout: postgresql://opsdash:hunter2-pw@127.0.0.1:5432/platform
    interval: ${PG_DSN}
    tags: {Authorization: "Bearer tok3n-abc"}
    headers: {Authorization: "Bearer tok3n-abc"}
workers:
  mailer:
    dlq:
      source: rabbitmq
      management_url: http://127.0.0.1:15672
      queue: dlq
      password: 314159265
      depth: {warn: "${PG_DSN}"}
""",
    )
    environ = {"PG_DSN": "postgresql://u:env-s3cret@127.0.0.1/db"}
    with pytest.raises(RegistryError) as caught:
        load_registry(path, environ=environ)
    text = str(caught.value)
    assert len(caught.value.problems) == 5, text
    for secret in ("hunter2-pw", "env-s3cret", "tok3n-abc", "314159265"):
        assert secret not in text
    assert "found 'postgresql://opsdash:***@127.0.0.1:5432/platform'" in text
    assert f"{path}:{line_of(path, 'password')}: workers.mailer.dlq.password: " in text


# --- overlays -----------------------------------------------------------------------------


def test_an_overlay_wins_and_its_lines_point_at_the_overlay(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "    timeout: 3s\n    tags: [core]\n")
    overlay = write(
        tmp_path,
        """\
        # local
        datastores:
          pg:
            dsn: postgresql://opsdash@127.0.0.1:6543/dev
        services:
          web:
            timeout: 1s
            tags: [dev]
            interval: soon
        """,
        "config/local.yaml",
    )
    base = load(path, environ={})
    assert base.services["web"].timeout == 3.0

    assert problems(path, env="local", environ={}) == [
        f"{overlay}:{line_of(overlay, 'interval')}: services.web.interval: "
        "expected a duration such as 500ms, 3s, 1m, 1h or 14d; found 'soon'"
    ]
    overlay.write_text(overlay.read_text().replace("    interval: soon\n", ""))
    merged = load(path, env="local", environ={})
    assert merged.services["web"].timeout == 1.0
    assert merged.services["web"].tags == ("dev",)  # lists are replaced, not appended
    assert merged.services["web"].url == "http://127.0.0.1:8000"  # untouched keys stay
    pg = merged.datastores["pg"]
    assert isinstance(pg, PostgresDatastore)
    assert pg.dsn.endswith(":6543/dev")
    assert pg.kind == "postgres"


def test_an_error_in_a_base_key_the_overlay_did_not_touch_points_at_the_base(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, BASE + "    interval: soon\n")
    write(tmp_path, "services:\n  web:\n    timeout: 1s\n", "config/local.yaml")
    assert problems(path, env="local", environ={}) == [
        f"{path}:{line_of(path, 'interval')}: services.web.interval: "
        "expected a duration such as 500ms, 3s, 1m, 1h or 14d; found 'soon'"
    ]


def test_a_missing_overlay_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    write(tmp_path, "defaults: {timeout: 1s}\n", "config/local.yaml")
    overlay = tmp_path / "config" / "prod.yaml"
    assert problems(path, env="prod", environ={}) == [
        f"{overlay}: no overlay for environment 'prod': the file does not exist (found: local)"
    ]


def test_an_environment_name_cannot_leave_the_config_directory(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    assert problems(path, env="../services", environ={}) == [
        f"{path}: expected an environment name such as local or staging; found '../services'"
    ]


def test_overlay_syntax_errors_and_duplicates_are_reported_with_base_problems(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, BASE + "    helth: /h\n")
    overlay = write(
        tmp_path, "services:\n  web:\n    timeout: 1s\n    timeout: 2s\n", "config/local.yaml"
    )
    assert problems(path, env="local", environ={}) == [
        f"{path}:{line_of(path, 'helth')}: services.web.helth: "
        "unknown key 'helth'; did you mean 'health'?",
        f"{overlay}:4: services.web.timeout: duplicate key 'timeout' (first written at line 3)",
    ]
    # An overlay that cannot be read stops the load: the base alone is not what will run.
    overlay.write_text("services: [\n")
    [message] = problems(path, env="local", environ={})
    assert message.startswith(f"{overlay}:2: invalid YAML: ")


def test_an_overlay_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    overlay = write(tmp_path, "- timeout: 1s\n", "config/local.yaml")
    assert problems(path, env="local", environ={}) == [
        f"{overlay}:1: expected a mapping of registry keys to override"
    ]


def test_dlq_model_round_trip_through_overlay(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE + "workers:\n  mailer:\n    dlq: {source: redis-list, datastore: cache, key: a}\n",
    )
    write(tmp_path, "workers:\n  mailer:\n    dlq: {key: b}\n", "config/local.yaml")
    dlq = load(path, env="local", environ={}).workers["mailer"].dlq
    assert isinstance(dlq, RedisKeyDlq)
    assert dlq.key == "b"
