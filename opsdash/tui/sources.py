"""``ui --from``: the dashboard fed by ``opsdash serve`` event streams instead of its own probes.

The counterpart of :class:`~opsdash.tui.engine.EngineDriver`: :meth:`SourceDriver.run` follows
every source (:class:`~opsdash.remote.RemoteFeed`, which reconnects by itself) until
cancelled, puts each result of a check this dashboard shows into the sink, and keeps each
source's connection state and which source each check's latest result came from, so that the
header can say which source is unreachable and mark its results stale. Nothing here knows
textual.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace

from opsdash.engine import ResultSink
from opsdash.plan import CheckSpec
from opsdash.remote import RemoteFeed, SourceState
from opsdash.results import CheckResult

CLOSE_S = 5.0


def viewer_specs(specs: Sequence[CheckSpec]) -> list[CheckSpec]:
    """The specs of a dashboard that only shows results: serve already derived rates from its
    own history, and judging them again here would compute rates of rates."""
    return [replace(spec, derive=None) for spec in specs]


class SourceDriver:
    """Follows the sources for as long as :meth:`run` is not cancelled."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str | None,
        specs: Sequence[CheckSpec],
        sink: ResultSink,
        on_change: Callable[[], object],
    ) -> None:
        self.feed = RemoteFeed(urls, token)
        self._ids = {spec.id for spec in specs}
        self._sink = sink
        self._on_change = on_change
        self.states: dict[str, SourceState] = {}
        """Each source's connection, once its first attempt ended (URLs as shown)."""
        self._source_of: dict[str, str] = {}
        self._closed: asyncio.Event | None = None

    async def run(self) -> None:
        """Follow every source until cancelled."""
        self._closed = closed = asyncio.Event()
        try:
            await self.feed.run(self._result, self._state)
        finally:
            closed.set()

    def _result(self, result: CheckResult, source: str) -> None:
        if result.id not in self._ids:
            return  # a check this registry (or --only/--tag) does not show
        self._source_of[result.id] = source
        self._sink(result)

    def _state(self, state: SourceState) -> None:
        self.states[state.url] = state
        self._on_change()

    @property
    def broken(self) -> tuple[SourceState, ...]:
        """The sources unreachable now."""
        return tuple(state for state in self.states.values() if not state.connected)

    @property
    def connected(self) -> int:
        return sum(1 for state in self.states.values() if state.connected)

    def cut_off(self) -> frozenset[str]:
        """The checks whose latest result came from a source that is unreachable now: nothing
        newer can arrive, so they are stale whatever their age."""
        broken = {state.url for state in self.broken}
        if not broken:
            return frozenset()
        return frozenset(check for check, url in self._source_of.items() if url in broken)

    async def wait_closed(self, timeout: float = CLOSE_S) -> None:
        """Wait (up to ``timeout``) until a cancelled :meth:`run` has closed its client."""
        if self._closed is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._closed.wait()
