"""opsdash: one screen for the on-call engineer."""

__version__ = "0.1.0"
