"""Worker retry metrics probes (stub: to be built under issue 4)."""

from __future__ import annotations

from opsdash.plan import Planned
from opsdash.registry.model import Metrics, Registry, Worker


def plan(name: str, worker: Worker, metrics: Metrics, registry: Registry) -> Planned:
    """The ``<worker>.retries`` check."""
    raise NotImplementedError
