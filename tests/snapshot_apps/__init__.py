"""Tiny modules that build the dashboard on fixed data, for snapshots and Pilot tests."""
