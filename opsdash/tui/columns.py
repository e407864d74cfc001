"""The columns of the five panels (title, width, and how they give way when narrow).

Columns give way in this order when a panel is narrow (highest ``gives_way`` first):
sparklines, then latency, then time in state; status and the reason never do, and the
reason (the flex column) takes the width left over.
"""

from __future__ import annotations

from opsdash.tui.widgets import Column

SERVICE_COLUMNS = (
    Column("Service", 20),
    Column("Health", 9),
    Column("Ready", 9),
    Column("Latency", 7, gives_way=2),
    Column("Trend", 8, gives_way=3),
    Column("Since", 6, gives_way=1),
    Column("Failing / why", 16, flex=True),
)
DATASTORE_COLUMNS = (
    Column("Check", 18),
    Column("Status", 9),
    Column("Latency", 7, gives_way=3),
    Column("Conn", 5),
    Column("Mem", 5, gives_way=2),
    Column("Role", 9, gives_way=1),
    Column("Lag", 6),
    Column("Summary", 16, flex=True),
)
QUEUE_COLUMNS = (
    Column("Worker", 17),
    Column("Status", 9),
    Column("DLQ", 6),
    Column("Trend", 6, gives_way=4),
    Column("Retry", 7, gives_way=2),
    Column("Fail", 7, gives_way=3),
    Column("Ratio", 6),
    Column("Max", 3, gives_way=1),
    Column("Summary", 16, flex=True),
)
INCIDENT_COLUMNS = (
    Column("Status", 9),
    Column("Cause", 20),
    Column("Affects", 24, gives_way=1),
    Column("Summary", 10, flex=True),
)
EVENT_COLUMNS = (
    Column("Time", 8, gives_way=1),
    Column("Check", 24),
    Column("Change", 15),
    Column("Summary", 10, flex=True, gives_way=2),
)
