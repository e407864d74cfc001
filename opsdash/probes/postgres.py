"""postgres datastore probe (stub: to be built under issue 3)."""

from __future__ import annotations

from collections.abc import Iterator

from opsdash.plan import Planned
from opsdash.registry.model import PostgresDatastore, Registry


def plan(name: str, datastore: PostgresDatastore, registry: Registry) -> Iterator[Planned]:
    """The checks of one postgres datastore."""
    return iter(())
