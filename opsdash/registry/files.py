"""Reading the files the registry is made of: the registry, its overlay, ``.sql`` probes.

Each is read once, and only when it is a regular file no larger than a cap: a path naming
``/dev/zero``, ``/dev/urandom`` or a FIFO must cost an error message, not gigabytes of memory or
a hang. The file is opened non-blocking (opening a FIFO for reading would otherwise wait for a
writer forever) and judged by ``fstat`` of the opened descriptor, so what is judged is what is
read.

The cap is 16 MiB by default; ``OPSDASH_MAX_FILE_SIZE`` sets another (bytes, or with a ``KiB``,
``MiB`` or ``GiB`` suffix).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

MAX_FILE_SIZE_ENV = "OPSDASH_MAX_FILE_SIZE"
DEFAULT_MAX_FILE_SIZE = 16 * 1024 * 1024

# As text: re compiles it on first use (only when the variable is set).
_SIZE = r"(?i)^\s*(\d+)\s*(|b|k|kib|m|mib|g|gib)\s*$"
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_READ_CHUNK = 1024 * 1024


class Unreadable(Exception):
    """The file cannot be used; the message says why in plain words (``not a regular file``)."""


def max_file_size(environ: Mapping[str, str]) -> int:
    """The cap on every registry file, from ``OPSDASH_MAX_FILE_SIZE`` (default 16 MiB).

    Raises :class:`ValueError` with a message naming the variable when its value is not a size.
    """
    raw = environ.get(MAX_FILE_SIZE_ENV)
    if raw is None or raw == "":
        return DEFAULT_MAX_FILE_SIZE
    match = re.match(_SIZE, raw)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{MAX_FILE_SIZE_ENV} must be a size such as 16777216 or 16MiB; found {raw[:40]!r}"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()[:1]]


def size_text(size: int) -> str:
    """``16 MiB``, ``512 KiB``, ``300 bytes``: a cap for a message."""
    for unit, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bytes(path: Path, *, limit: int) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes.

    Raises :class:`FileNotFoundError` when it does not exist, :class:`Unreadable` for anything
    else that stops it being read (a directory, a device, a FIFO, over the cap, permissions).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise Unreadable(f"cannot read the file: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable("cannot read the file: Is a directory")  # as open() words it
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"cannot read the file: it is {_kind(info.st_mode)}, not a file")
        if info.st_size > limit:
            raise Unreadable(_too_large(info.st_size, limit))
        chunks: list[bytes] = []
        size = 0
        # Read to the cap, not to st_size: a file growing while it is read stays bounded.
        while chunk := os.read(fd, min(_READ_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise Unreadable(_too_large(size, limit))
        return b"".join(chunks)
    except OSError as error:
        raise Unreadable(f"cannot read the file: {error.strerror or error}") from None
    finally:
        os.close(fd)


def _too_large(size: int, limit: int) -> str:
    return (
        f"the file is larger than {size_text(limit)} ({size} bytes); "
        f"set {MAX_FILE_SIZE_ENV} to allow more"
    )


def confined(base_dir: Path, name: str) -> Path:
    """``name`` (relative to ``base_dir``) resolved, symlinks included, which must lie inside
    ``base_dir``'s tree: a registry entry must not make opsdash read ``/etc/passwd`` and send it
    to a database. Raises :class:`Unreadable` saying why."""
    root = base_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise Unreadable(
            f"{name} is outside the registry's directory {root} "
            "(files must be in its tree, symlinks resolved)"
        )
    return path


def check_file(base_dir: Path, name: str, *, limit: int, missing_ok: bool = False) -> str | None:
    """What is wrong with ``name`` as a file of the registry (outside its tree, missing unless
    ``missing_ok``, not a regular file, over the cap), or ``None``: checked without reading it."""
    try:
        path = confined(base_dir, name)
        info = path.stat()
    except Unreadable as error:
        return str(error)
    except FileNotFoundError:
        return None if missing_ok else f"{name} does not exist (relative to {base_dir})"
    except OSError as error:
        return f"cannot read {name}: {error.strerror or error}"
    if not stat.S_ISREG(info.st_mode):
        return f"{name} is {_kind(info.st_mode)}, not a file"
    if info.st_size > limit:
        return f"{name}: {_too_large(info.st_size, limit)}"
    return None
