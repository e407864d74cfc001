"""The dashboard on a healthy platform (``textual run tests/snapshot_apps/healthy.py``)."""

from tests.snapshot_apps.platform import build

app = build(incident=False)
if __name__ == "__main__":
    app.run()
