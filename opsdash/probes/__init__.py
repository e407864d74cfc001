"""Probes: each makes one call and returns an Observation; the harness does the rest."""
