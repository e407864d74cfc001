"""``opsdash check --format prometheus``: the snapshot in the Prometheus text format, for
node_exporter's textfile collector. The families themselves are :mod:`opsdash.metrics`'s
(the exporter serves the same ones).
"""

from __future__ import annotations

from opsdash.metrics import exposition, snapshot_families
from opsdash.state import Snapshot


def render_prometheus(snapshot: Snapshot) -> str:
    """The snapshot in the Prometheus text format (for node_exporter's textfile collector)."""
    return exposition(snapshot_families(snapshot))
