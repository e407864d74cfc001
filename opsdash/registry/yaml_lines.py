"""YAML to plain Python values, remembering the line of every key and rejecting duplicates.

PyYAML's loaders keep the last of two equal keys without a word, and the values they build
carry no line numbers. So the document is composed into PyYAML's node tree (which has marks)
and walked here: mappings become dicts keyed by the key *as written* (``yes:`` stays the
string ``"yes"``, a name is never turned into a boolean), scalars are resolved by PyYAML's
safe constructor, and every key path gets its :class:`~opsdash.registry.problems.Position`.
"""

from __future__ import annotations

import re
from typing import Any

from opsdash.lazy_yaml import MappingNode, Node, ScalarNode, SequenceNode, yaml
from opsdash.records import dataclass, field
from opsdash.registry.model import Loc
from opsdash.registry.problems import Position, Problem

# libyaml's parser when PyYAML has it (its wheels do): the same nodes and marks, several times
# faster on a large registry. The constructor is PyYAML's safe one either way.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 64
_MAX_NODES = 200_000
"""Anchors and aliases can make a tiny file expand enormously ("billion laughs"): stop early."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed file: its data (``None`` when empty or unusable), key positions, problems."""

    data: Any
    positions: dict[Loc, Position]
    problems: list[Problem]
    unusable: list[Loc] = field(default_factory=list)
    """Values left out because of a problem already reported (not to be reported again)."""


class _TooLarge(Exception):
    """The document nests too deeply or expands too far through aliases."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Walker:
    """Walks one document's node tree into plain values, collecting positions and problems."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.positions: dict[Loc, Position] = {}
        self.problems: list[Problem] = []
        self.unusable: list[Loc] = []
        self.budget = _MAX_NODES

    def position(self, node: Node) -> Position:
        return Position(self.file, node.start_mark.line + 1)

    def value(self, node: Node, loc: Loc) -> Any:
        self.budget -= 1
        if self.budget < 0 or len(loc) > _MAX_DEPTH:
            raise _TooLarge(node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            return self.mapping(node, loc)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.positions[(*loc, index)] = self.position(item)
                items.append(self.value(item, (*loc, index)))
            return items
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as error:  # an unknown tag such as ``!python/object``
            problem = _syntax_problem(error, self.file)
            self.problems.append(Problem.at(self.position(node), loc, problem.message))
            self.unusable.append(loc)
            return None

    def mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        self.check_duplicates(node, loc)
        try:
            # Resolves ``<<: *anchor`` merge keys; explicit keys then override merged ones.
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as error:
            self.problems.append(_syntax_problem(error, self.file))
            return {}
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, loc)
            if key is None:
                continue
            self.positions[(*loc, key)] = self.position(key_node)
            result[key] = self.value(value_node, (*loc, key))
        return result

    def check_duplicates(self, node: MappingNode, loc: Loc) -> None:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first_line:
                message = f"duplicate key {key!r} (first written at line {first_line[key]})"
                self.problems.append(Problem.at(self.position(key_node), (*loc, key), message))
            else:
                first_line[key] = line

    def key(self, node: Node, loc: Loc) -> str | None:
        if isinstance(node, ScalarNode):
            return str(node.value)
        kind = "a mapping" if isinstance(node, MappingNode) else "a list"
        message = f"expected a plain key such as a name; found {kind}"
        self.problems.append(Problem.at(self.position(node), loc, message))
        return None


def _syntax_problem(error: yaml.YAMLError, file: str) -> Problem:
    """A PyYAML error as a problem at its line."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        parts = [part for part in (error.context, error.problem) if part]
        text = ", ".join(parts) or "unreadable YAML"
        return Problem(file, mark.line + 1 if mark else None, "", f"invalid YAML: {text}")
    return Problem(file, None, "", f"invalid YAML: {error}")


# What YAML forbids in a stream (PyYAML's reader says only "special characters are not
# allowed", at a character offset, from inside the loader's constructor). The reader's own
# pattern is the complement of what is allowed, slow to compile (its class reaches U+10FFFF):
# the forbidden characters as a class of their own compile in a tenth of the time, and an
# ASCII file (nearly every registry) needs only the C0 controls and DEL.
_NOT_PRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
_ASCII_NOT_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_NAMES = {0x00: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0x08: "BS", 0x0C: "FF", 0x0B: "VT"}


def _unprintable(text: str, file: str) -> Problem | None:
    """A problem at the first character YAML does not allow (NUL, ESC...), or ``None``."""
    found = _ASCII_NOT_PRINTABLE.search(text) if text.isascii() else re.search(_NOT_PRINTABLE, text)
    if found is None:
        return None
    code = ord(found.group())
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    name = f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else ""
    message = (
        f"character U+{code:04X}{name} at column {column} is not allowed in YAML "
        "(write it as an escape such as \\x1b inside double quotes, or remove it)"
    )
    return Problem(file, line, "", message)


def parse_yaml(text: str, file: str) -> Parsed:
    """Parse one YAML document; syntax errors and duplicate keys come back as problems."""
    unprintable = _unprintable(text, file)
    if unprintable is not None:
        return Parsed(None, {}, [unprintable])
    parsed = _parse(text, file, _Loader)
    if (
        _Loader is not yaml.SafeLoader
        and parsed.data is None
        and parsed.problems
        and not parsed.problems[0].message.startswith(_TOO_DEEP)
    ):
        # libyaml's syntax messages are terser ("cannot start any token" for a tab): a broken
        # file is parsed again by the pure-Python parser, whose messages name the character.
        fallback = _parse(text, file, yaml.SafeLoader)
        return fallback if fallback.problems else parsed
    return parsed


_TOO_DEEP = "the document nests deeper than"


def _parse(text: str, file: str, loader_class: type[yaml.SafeLoader]) -> Parsed:
    too_deep = f"{_TOO_DEEP} {_MAX_DEPTH} levels or expands too far"
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Parsed(None, {}, [])
        walker = _Walker(loader, file)
        walker.positions[()] = walker.position(node)
        try:
            data = walker.value(node, ())
        except _TooLarge as error:
            return Parsed(None, {}, [Problem(file, error.line, "", too_deep)])
        return Parsed(data, walker.positions, walker.problems, walker.unusable)
    except yaml.YAMLError as error:
        problem = _syntax_problem(error, file)
        if "maximum nesting depth" in problem.message:  # libyaml's own limit (1,000 levels)
            problem = Problem(file, problem.line, "", too_deep)
        return Parsed(None, {}, [problem])
    except RecursionError:
        # The pure-Python composer recurses once per level: far past _MAX_DEPTH anyway.
        line = text.count("\n", 0, loader.get_mark().index) + 1
        return Parsed(None, {}, [Problem(file, line, "", too_deep)])
    finally:
        loader.dispose()
