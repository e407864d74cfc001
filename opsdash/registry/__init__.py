"""Loading and validating the registry (``services.yaml``).

:func:`load_registry` is the way in; it raises :class:`RegistryError` (one
:class:`Problem` per thing wrong, each with file, line and key path) or returns the typed,
immutable :class:`Registry`.
"""

from opsdash.registry.loader import load_registry
from opsdash.registry.model import Registry
from opsdash.registry.problems import Problem, RegistryError

__all__ = ["Problem", "Registry", "RegistryError", "load_registry"]
