"""The dashboard during a redis outage (``textual run tests/snapshot_apps/incident.py``)."""

from tests.snapshot_apps.platform import build

app = build(incident=True)
if __name__ == "__main__":
    app.run()
