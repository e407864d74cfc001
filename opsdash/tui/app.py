"""The dashboard app (stub: built under issue 5)."""

from __future__ import annotations

from collections.abc import Sequence

from opsdash.plan import CheckSpec
from opsdash.registry.model import Registry


def run_dashboard(registry: Registry, specs: Sequence[CheckSpec]) -> None:
    """Open the dashboard on ``specs`` until the user quits."""
    raise NotImplementedError("the dashboard arrives with issue 5")
