"""Dead-letter queue depth probes (stub: to be built under issue 4)."""

from __future__ import annotations

from opsdash.plan import Planned
from opsdash.registry.model import Dlq, Registry, Worker


def plan(name: str, worker: Worker, dlq: Dlq, registry: Registry) -> Planned:
    """The ``<worker>.dlq`` check."""
    raise NotImplementedError
