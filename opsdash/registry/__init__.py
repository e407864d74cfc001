"""Loading and validating the registry (``services.yaml``)."""
