"""Alerting from cron: policy (thresholds, flapping, grouping), notifiers, history.

``opsdash alert`` is :func:`opsdash.alerting.run.alert_run`. The state it keeps (SQLite) and
the read-only view other faces use are one layer down, in :mod:`opsdash.alertstate`.
"""
