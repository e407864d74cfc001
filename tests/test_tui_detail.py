"""The detail screen is written for people, for every kind of check: no ``None``, no Python
reprs (``{'``), no number with more than three decimals, no internal row key — on sample
figures of every figure type, and on the real results of every check of the demo platform."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from opsdash.demo.platform import DemoPlatform
from opsdash.figures import Figures
from opsdash.formats import figure as number
from opsdash.formats import span as duration
from opsdash.plan import build_plan
from opsdash.results import CheckResult, ErrorType, ProbeError
from opsdash.rounds import one_round
from opsdash.state import PlatformState
from opsdash.status import Status
from opsdash.tui.humane import local_time, value_text
from opsdash.tui.screens import check_detail
from tests.snapshot_apps.platform import REGISTRY, specs
from tests.test_figures_contract import SAMPLES

AT = datetime(2026, 1, 25, 10, 0, 0, tzinfo=UTC)
LONG_DECIMALS = re.compile(r"\d\.\d{4,}")


pytestmark = pytest.mark.usefixtures("utc_zone")


def text_of(renderable: object) -> str:
    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def assert_for_people(text: str) -> None:
    assert "None" not in text, text
    assert "{'" not in text and "['" not in text, text
    # the response excerpt quotes the server's own body ("Duration": "00:00:00.0040000"):
    # its numbers are the server's words, not figures opsdash formats
    ours = re.sub(r"Response excerpt.*?(?=Recent history|\Z)", "", text, flags=re.S)
    assert not LONG_DECIMALS.search(ours), LONG_DECIMALS.search(ours)
    assert "Status." not in text and "ErrorType." not in text, text  # enum reprs


SAMPLE_FIGURES = [figures for samples in SAMPLES.values() for figures in samples]


@pytest.mark.parametrize("figures", SAMPLE_FIGURES, ids=lambda f: type(f).__name__)
def test_detail_of_every_figure_type_is_for_people(figures: Figures) -> None:
    spec = specs()[0]
    state = PlatformState(REGISTRY, [spec])
    for age, status in ((20, Status.OK), (10, Status.WARN), (0, Status.CRIT)):
        state.apply(
            CheckResult(
                spec.id, spec.component, spec.check, spec.kind, status, "a verdict",
                108.35176180447996, spec.target, figures, None, AT - timedelta(seconds=age),
            )
        )  # fmt: skip
    text = text_of(check_detail(state, spec.id, AT + timedelta(seconds=3)))
    assert_for_people(text)
    assert re.search(r"checked +10:00:00 \(3 s ago\)", text), text
    assert "108 ms" in text  # the latency, rounded for people


def test_detail_of_a_check_that_got_no_answer() -> None:
    spec = specs()[0]
    state = PlatformState(REGISTRY, [spec])
    text = text_of(check_detail(state, spec.id, AT))
    assert "pending" in text and "not answered yet" in text
    error = ProbeError(ErrorType.REFUSED, "connection refused")
    state.apply(
        CheckResult(
            spec.id, spec.component, spec.check, spec.kind, Status.CRIT, "connection refused",
            None, spec.target, None, error, AT,
        )
    )  # fmt: skip
    text = text_of(check_detail(state, spec.id, AT))
    assert_for_people(text)
    assert "refused: connection refused" in text


@pytest.mark.parametrize("at", [0.0, 16.0, 40.0, 64.0], ids=lambda t: f"at{t:g}s")
async def test_detail_of_every_demo_check_is_for_people(at: float) -> None:
    """Every kind of check the demo has (http, redis, mongo, postgres, indexes, dlq, retries),
    calm, in the outage, with PostgreSQL saturated and missing an index, with MongoDB lagging."""
    async with DemoPlatform(start_at=at, drive=False) as demo:
        registry = demo.registry
        plan = build_plan(registry)
        first = await one_round(registry, plan, concurrency=16)
        second = await one_round(registry, plan, concurrency=16, earlier=first.results)
        with_postgres = demo.postgres is not None
    state = PlatformState(registry, plan)
    state.apply_all(first.results)
    state.apply_all(second.results)
    kinds = set()
    for spec in plan:
        kinds.add(spec.kind)
        text = text_of(check_detail(state, spec.id, datetime.now(UTC)))
        assert_for_people(text)
    expected = {"http", "redis", "mongo", "dlq", "retries"} | (
        {"postgres"} if with_postgres else set()
    )
    assert expected <= kinds, kinds


def test_values_for_people() -> None:
    now = AT
    assert number(108.35176180447996) == "108"
    assert number(3.14159) == "3.14" and number(0.123456) == "0.123" and number(5.0) == "5"
    assert duration(0.25) == "250 ms" and duration(2.5) == "2.5 s" and duration(42) == "42 s"
    assert duration(245) == "4 min 05 s" and duration(7500) == "2 h 05 min"
    assert local_time(now - timedelta(seconds=3), now) == "09:59:57 (3 s ago)"
    epoch = (now - timedelta(minutes=2)).timestamp()
    assert value_text("last_sample_at", epoch, now) == "09:58:00 (2 min 00 s ago)"
    assert value_text("ping_ms", 1.23456, now) == "1 ms"
    assert value_text("replication_lag_s", 45.0, now) == "45 s"
    assert value_text("connections_pct", 88.2352941, now) == "88.2%"
    assert value_text("lag", None, now) is None
    assert value_text("members", {"a": 1, "b": None}, now) == "a 1"
    assert value_text("body", "\x1b[31mred\x1b[0m", now) == "[31mred[0m"
