"""Configuration problems: where (file, line, key path) and what (expected vs found).

The loader collects every problem it finds and raises them together in one
:class:`RegistryError`, so that a user fixes a broken registry in one round instead of one
error at a time. Messages are plain text, never a traceback, and never quote a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opsdash.records import dataclass
from opsdash.registry.model import Loc


def key_path(loc: Loc) -> str:
    """``("services", "x", "depends_on", 0)`` -> ``services.x.depends_on[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True, slots=True)
class Position:
    """Where a key was written: the file as the user named it, and a 1-based line."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the registry."""

    file: str
    line: int | None
    """1-based; ``None`` when the problem is about the file as a whole (unreadable, missing)."""
    key: str
    """Dotted key path (``services.booking-service.timeout``); empty for the whole file."""
    message: str
    """What was expected and what was found, in plain words."""

    @classmethod
    def at(cls, position: Position, loc: Loc, message: str) -> Problem:
        """A problem at ``loc``, written at ``position``."""
        return cls(position.file, position.line, key_path(loc), message)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class RegistryError(Exception):
    """The registry cannot be used; ``problems`` lists everything that is wrong with it.

    ``str()`` is one line per problem, ``file:line: key.path: message``, ready to print.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def ordered(problems: Sequence[Problem], files: Sequence[str]) -> list[Problem]:
    """``problems`` by file (in ``files`` order), then line, without repeats."""
    rank = {file: index for index, file in enumerate(files)}
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (rank.get(p.file, len(rank)), p.line or 0, p.key))
