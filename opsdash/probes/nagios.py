"""Reading what a Nagios plugin prints (the monitoring-plugins development guidelines).

::

    DISK OK - free space: / 79142MiB (76%)|/=25957498880B;243497277849;257024904396;0;270552
    long output line 1
    long output line 2 | more=1;;;0

The first line up to ``|`` is the summary, the rest of it performance data; the lines after
it are long output, and perfdata may continue after a ``|`` in the long output (it runs to the
end). Perfdata is ``'label'=value[unit];[warn];[crit];[min];[max]``, space separated; a label
with spaces is quoted, and ``''`` in a quoted label is one quote. Malformed items are skipped:
a plugin's odd perfdata must not hide its verdict.
"""

from __future__ import annotations

import re

from opsdash.figures import PerfDatum
from opsdash.records import dataclass

_VALUE = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|U)\s*([^;\d\s][^;]*)?\s*$")
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$")
MAX_PERFDATA = 200
"""Perfdata items kept per run: a plugin printing thousands must not bloat every result."""


@dataclass(frozen=True, slots=True)
class PluginOutput:
    """A plugin's stdout, split the Nagios way."""

    summary: str
    perfdata: tuple[PerfDatum, ...]
    long_output: tuple[str, ...]


def parse_output(text: str) -> PluginOutput:
    """Split a plugin's stdout into summary, perfdata and long output."""
    first, _, rest = text.partition("\n")
    summary, bar, perf = first.partition("|")
    long_lines: list[str] = []
    perf_texts = [perf] if bar else []
    in_perf = False
    for line in rest.splitlines():
        if in_perf:
            perf_texts.append(line)
            continue
        text_part, bar, perf_part = line.partition("|")
        long_lines.append(text_part.rstrip())
        if bar:
            perf_texts.append(perf_part)
            in_perf = True
    while long_lines and not long_lines[-1].strip():
        long_lines.pop()
    perfdata: list[PerfDatum] = []
    for chunk in perf_texts:
        for item in _items(chunk):
            datum = parse_perfdatum(item)
            if datum is not None and len(perfdata) < MAX_PERFDATA:
                perfdata.append(datum)
    return PluginOutput(summary.strip(), tuple(perfdata), tuple(long_lines))


def _items(text: str) -> list[str]:
    """Perfdata items, split on spaces outside single-quoted labels."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "'":
            if quoted and text[index + 1 : index + 2] == "'":
                current.append("''")
                index += 2
                continue
            quoted = not quoted
        if char.isspace() and not quoted:
            if current:
                items.append("".join(current))
                current = []
        else:
            current.append(char)
        index += 1
    if current:
        items.append("".join(current))
    return items


def parse_perfdatum(item: str) -> PerfDatum | None:
    """One ``label=value[unit];warn;crit;min;max`` item; ``None`` when it is not one."""
    label, equals, data = item.rpartition("=")
    if not equals or not label:
        return None
    if len(label) >= 2 and label[0] == label[-1] == "'":
        label = label[1:-1].replace("''", "'")
    fields = data.split(";")
    match = _VALUE.match(fields[0])
    if match is None:
        return None
    value = None if match.group(1) == "U" else float(match.group(1))
    unit = (match.group(2) or "").strip()
    warn, crit, low, high = (fields[1:] + [""] * 4)[:4]
    return PerfDatum(
        label=label,
        value=value,
        unit=unit,
        warn=warn.strip() or None,
        crit=crit.strip() or None,
        min=_number(low),
        max=_number(high),
    )


def _number(text: str) -> float | None:
    return float(text) if _NUMBER.match(text) else None
