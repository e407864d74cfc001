"""The registry's validation layer (``opsdash/registry/schema.py``): immutable models, every
problem at once with its key path, values converted as interpolation leaves them (strings)."""

from __future__ import annotations

import pytest

from opsdash.registry.model import (
    HttpExpect,
    JsonComparison,
    LatencyThresholds,
    PostgresDatastore,
    Registry,
    Service,
)
from opsdash.registry.schema import ValidationError


def registry(**sections: object) -> Registry:
    return Registry.from_data({"version": 1, "platform": "t", **sections})


def problems(**sections: object) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        registry(**sections)
    return caught.value.messages()


def test_models_are_immutable() -> None:
    service = registry(services={"a": {"url": "http://127.0.0.1:1"}}).services["a"]
    with pytest.raises(AttributeError, match="immutable"):
        service.url = "http://elsewhere"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del service.url  # type: ignore[misc]
    assert service.url == "http://127.0.0.1:1"


def test_defaults_are_not_given_fields() -> None:
    loaded = registry(services={"a": {"url": "http://127.0.0.1:1", "health": False}})
    service = loaded.services["a"]
    assert service.fields_set == {"url", "health"}
    assert (service.health, service.ready, service.tls_verify) == (False, "/ready", True)
    assert loaded.defaults.latency == LatencyThresholds(warn=0.5, crit=2.0)
    assert loaded.defaults.timeout == 3.0


def test_interpolated_strings_become_the_declared_types() -> None:
    # ``${VAR}`` leaves strings: "64" is a whole number, "false" a boolean, "1.0" a number.
    loaded = registry(
        defaults={"concurrency": "64", "failure_threshold": 3.0},
        services={"a": {"url": "http://127.0.0.1:1", "tls_verify": "false"}},
        workers={"w": {"dlq": {"source": "bullmq", "datastore": "r", "queue": "q",
                               "depth": {"warn": "1.5"}}}},
    )  # fmt: skip
    assert loaded.defaults.concurrency == 64
    assert loaded.defaults.failure_threshold == 3
    assert loaded.services["a"].tls_verify is False
    dlq = loaded.workers["w"].dlq
    assert dlq is not None and dlq.depth.warn == 1.5


def test_every_problem_is_reported_with_its_key_path() -> None:
    # (in no promised order: the loader sorts them by file and line)
    assert sorted(problems(
        defaults={"concurrency": "many", "timeout": "soon"},
        datastores={"pg": {"kind": "postgres"}},
        services={"a": {"url": 3, "health": 3, "tags": "core"}},
    )) == sorted([
        (("defaults", "timeout"), "expected a duration such as 500ms, 3s, 1m, 1h or 14d; "
         "found 'soon'"),
        (("defaults", "concurrency"), "expected a whole number; found 'many'"),
        (("datastores", "pg"), "missing required key 'dsn'"),
        (("services", "a", "url"), "expected a string; found 3"),
        (("services", "a", "health"), "expected a string or false; found 3"),
        (("services", "a", "tags"), "expected a list such as [a, b]; found 'core'"),
    ])  # fmt: skip


def test_a_quoted_value_is_masked_before_it_is_cut() -> None:
    secret = "s3cret-" + "x" * 100
    with pytest.raises(ValidationError) as caught:
        registry(services={"a": {"url": "http://127.0.0.1:1", "tls_verify": secret}})
    [(loc, message)] = caught.value.messages(lambda text: text.replace(secret, "***"))
    assert loc == ("services", "a", "tls_verify")
    assert message == "expected true or false; found '***'"


def test_a_union_is_chosen_by_its_tag_or_its_key() -> None:
    loaded = registry(
        datastores={"pg": {"kind": "postgres", "dsn": "postgresql://127.0.0.1/x"}},
        services={"a": {"url": "http://127.0.0.1:1", "checks": {
            "s": {"http": "/s", "expect": {"json": {"$.n": {"gt": 1}, "$.s": "UP"}}}}}},
    )  # fmt: skip
    assert isinstance(loaded.datastores["pg"], PostgresDatastore)
    check = loaded.services["a"].custom_checks["s"]
    assert check.kind == "http"
    expect = getattr(check, "expect")  # noqa: B009
    assert isinstance(expect, HttpExpect)
    comparison = expect.json_["$.n"]
    assert isinstance(comparison, JsonComparison)
    assert comparison.fields_set == {"gt"}
    assert expect.json_["$.s"] == "UP"


def test_models_built_in_code_take_their_values_as_given() -> None:
    service = Service(url="http://127.0.0.1:1", tags=("x",))
    assert (service.url, service.tags, service.health) == ("http://127.0.0.1:1", ("x",), "/health")
    with pytest.raises(TypeError, match="missing"):
        Service()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown"):
        Service(url="http://127.0.0.1:1", colour="blue")  # type: ignore[call-arg]
