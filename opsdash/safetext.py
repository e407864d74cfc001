"""Text a server controls, made safe for a terminal: the one place control characters are
escaped.

A reason phrase, a RabbitMQ queue state or a health body is the server's text, and a terminal
obeys what it contains: ``\\x1b[2J`` in a reason phrase cleared the on-call engineer's screen
through ``opsdash check``, and a newline could forge a line of the report. The harness passes
every result's summary, error message and figure strings through :func:`printable` when it
makes the result, so every face (text, dashboard, JUnit, alerts, history) shows the escaped
form; JSON keeps JSON's own escaping of whatever remains.
"""

from __future__ import annotations

import re

# C0 controls (newline and tab included: a report line must stay one line), DEL, C1 controls
# (0x9b is a CSI on some terminals) and the bidirectional overrides that reorder what is shown.
# Python counts every one of them as not printable, so a text that str.isprintable() passes
# needs no search; re compiles the pattern the first time a text does (most runs: never).
_UNSAFE = "[\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def is_printable(text: str) -> bool:
    """Whether ``text`` holds nothing :func:`printable` would escape."""
    return text.isprintable() or re.search(_UNSAFE, text) is None


def printable(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\n``).

    Idempotent in effect: an escaped text holds no control character, so escaping it again
    changes nothing.
    """
    if is_printable(text):
        return text
    return re.sub(_UNSAFE, _escape, text)
