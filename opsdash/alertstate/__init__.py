"""The alerting state (one SQLite file) and its read-only view, below every face.

``opsdash alert`` writes the state (:mod:`opsdash.alerting`); the dashboard and ``check`` only
read it through :mod:`opsdash.alertstate.view`, so no face imports another to show silences.
"""
