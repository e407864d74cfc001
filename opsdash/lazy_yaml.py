"""PyYAML, imported with its regular expressions compiled when first used.

``import yaml`` compiles every pattern PyYAML's modules hold at their top level, and that is
about half of the import, most of it the pure-Python reader's ``NON_PRINTABLE`` (a negated
class reaching U+10FFFF, slow for the ``re`` compiler). libyaml's parser never uses it, and the
resolver needs its patterns only for the kinds of scalars a file holds. So the modules import
here with ``re.compile`` deferring *their* patterns (:class:`DeferredPattern`; a caller outside
the ``yaml`` package compiles as usual): each compiles when first used, and from then on its
methods are the compiled pattern's own (bench/README.md has the figures).

Every module of opsdash that uses PyYAML imports it from here; ``tests/test_lazy_yaml.py``
checks that a registry load compiles no pattern it does not use, and that the deferred ones
match as PyYAML's own do.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class DeferredPattern:
    """A regular expression compiled on first use: the first attribute looked up compiles
    it and copies the compiled pattern's public attributes (``match``, ``search``, ...) onto
    this object, so later calls cost what they cost on the pattern itself."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._source = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        # Only reached for what is not copied yet, i.e. before the first compile; a private
        # or special name (``copy`` asks for ``__setstate__`` on an object made without
        # ``__init__``) is not the pattern's to give.
        if name.startswith("_"):
            raise AttributeError(name)
        compiled = re.compile(*self._source)
        for public in dir(compiled):
            if not public.startswith("_"):
                setattr(self, public, getattr(compiled, public))
        return getattr(compiled, name)

    @property
    def compiled(self) -> bool:
        """Whether the pattern has been compiled (used) yet."""
        return "match" in vars(self)


@contextmanager
def _yaml_patterns_deferred() -> Iterator[None]:
    compile_now = re.compile

    def compile_from(pattern: Any, flags: int = 0) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller == "yaml" or caller.startswith("yaml."):
            return DeferredPattern(pattern, flags)
        return compile_now(pattern, flags)

    re.compile = compile_from
    try:
        yield
    finally:
        re.compile = compile_now


if "yaml" in sys.modules:  # imported the ordinary way already (a test, a plugin): as it is
    import yaml
else:
    with _yaml_patterns_deferred():
        import yaml

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode  # noqa: E402

__all__ = ["DeferredPattern", "MappingNode", "Node", "ScalarNode", "SequenceNode", "yaml"]
