"""Renderers: pure functions from a Snapshot to text, JSON, JUnit or Prometheus exposition."""
