"""Masking secrets in targets: only the secret's own place, never a host or scheme that
happens to spell the same."""

from __future__ import annotations

import pytest

from opsdash.plan import build_plan
from opsdash.redact import redact_url
from opsdash.registry.model import Registry


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:redis@redis:6379/0", "redis://:***@redis:6379/0"),
        (
            "postgresql://postgres:postgres@127.0.0.1:5432/platform",
            "postgresql://postgres:***@127.0.0.1:5432/platform",
        ),
        ("https://api/health?token=s3cr3t&region=eu", "https://api/health?token=***&region=eu"),
        ("http://127.0.0.1:3001/health", "http://127.0.0.1:3001/health"),
    ],
)
def test_a_url_shows_everything_but_its_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_datastore_password_does_not_mask_other_targets() -> None:
    registry = Registry.from_data(
        {
            "version": 1,
            "platform": "test",
            "datastores": {"redis": {"kind": "redis", "url": "redis://:redis@redis:6379/0"}},
            "services": {"redis-commander": {"url": "http://redis-commander:8081"}},
        }
    )
    targets = {spec.id: spec.target for spec in build_plan(registry)}
    assert targets["redis"] == "redis://:***@redis:6379/0"
    assert targets["redis-commander.health"] == "http://redis-commander:8081/health"
