"""The columns of the five panels (title, width)."""

from __future__ import annotations

from opsdash.tui.widgets import Column

SERVICE_COLUMNS = (
    Column("Service", 20),
    Column("Health", 9),
    Column("Ready", 9),
    Column("Latency", 7),
    Column("Trend", 8),
    Column("Since", 6),
    Column("Failing / why", 40),
)
DATASTORE_COLUMNS = (
    Column("Check", 18),
    Column("Status", 9),
    Column("Latency", 7),
    Column("Conn", 5),
    Column("Mem", 5),
    Column("Role", 8),
    Column("Lag", 6),
    Column("Summary", 50),
)
QUEUE_COLUMNS = (
    Column("Worker", 17),
    Column("Status", 9),
    Column("DLQ", 18),
    Column("Retry", 7),
    Column("Fail", 7),
    Column("Ratio", 6),
    Column("Max", 3),
    Column("Summary", 50),
)
INCIDENT_COLUMNS = (
    Column("Status", 9),
    Column("Cause", 20),
    Column("Affects", 30),
    Column("Summary", 80),
)
EVENT_COLUMNS = (
    Column("Time", 8),
    Column("Check", 26),
    Column("Change", 14),
    Column("Summary", 60),
)
