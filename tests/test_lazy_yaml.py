"""PyYAML as opsdash imports it (``opsdash.lazy_yaml``): its patterns compile when first
used, a registry load compiles none it does not need, and every deferred pattern matches as
PyYAML's own; the registry's own check of forbidden characters is PyYAML's rule exactly."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml.reader

from opsdash.lazy_yaml import DeferredPattern
from opsdash.registry.yaml_lines import _ASCII_NOT_PRINTABLE, _NOT_PRINTABLE, parse_yaml

ROOT = Path(__file__).resolve().parent.parent

SCALARS = "a: yes\nb: 1.5\nc: 0x1f\nd: 2001-12-14\ne: ~\nf: text\ng: 12\nh: .inf\n"


def _fresh(code: str) -> object:
    """What ``code`` (run in a new interpreter, which imported no yaml yet) prints as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_a_registry_load_leaves_the_reader_pattern_uncompiled(tmp_path: Path) -> None:
    registry = tmp_path / "services.yaml"
    registry.write_text(
        "version: 1\nplatform: p\ndefaults:\n  timeout: 3s\n"
        "services:\n  api:\n    url: http://127.0.0.1:8080\n"
    )
    figures = _fresh(
        f"""
        import json
        from pathlib import Path
        from opsdash.registry import load_registry
        from opsdash.lazy_yaml import DeferredPattern, yaml

        registry = load_registry(Path({str(registry)!r}))
        reader = yaml.reader.Reader.NON_PRINTABLE
        print(json.dumps({{
            "services": list(registry.services),
            "deferred": isinstance(reader, DeferredPattern),
            "reader_compiled": reader.compiled,
        }}))
        """
    )
    assert figures == {"services": ["api"], "deferred": True, "reader_compiled": False}


def test_deferred_patterns_resolve_and_reject_as_pyyaml_does() -> None:
    resolved = _fresh(
        f"""
        import json
        from opsdash.lazy_yaml import DeferredPattern, yaml

        values = yaml.load({SCALARS!r}, Loader=yaml.SafeLoader)  # the pure-Python reader too
        try:
            yaml.load("a: \\x00", Loader=yaml.SafeLoader)
            rejected = None
        except yaml.reader.ReaderError as error:
            rejected = error.character
        print(json.dumps({{
            "types": {{key: type(value).__name__ for key, value in values.items()}},
            "values": {{key: str(value) for key, value in values.items()}},
            "rejected": rejected,
            "deferred": isinstance(yaml.resolver.Resolver.yaml_implicit_resolvers["1"][0][1],
                                   DeferredPattern),
        }}))
        """
    )
    eager = yaml.load(SCALARS, Loader=yaml.SafeLoader)
    assert resolved == {
        "types": {key: type(value).__name__ for key, value in eager.items()},
        "values": {key: str(value) for key, value in eager.items()},
        "rejected": 0,  # the code point PyYAML reports
        "deferred": True,
    }
    assert resolved["types"] == {  # type: ignore[index]
        "a": "bool", "b": "float", "c": "int", "d": "date",
        "e": "NoneType", "f": "str", "g": "int", "h": "float",
    }  # fmt: skip


def test_forbidden_characters_are_exactly_those_pyyaml_forbids() -> None:
    every = "".join(map(chr, range(0x110000)))
    theirs = yaml.reader.Reader.NON_PRINTABLE.findall(every)
    assert len(theirs) > 2_000  # controls, surrogates, U+FFFE/F
    assert re.findall(_NOT_PRINTABLE, every) == theirs
    ascii_chars = every[:128]
    assert _ASCII_NOT_PRINTABLE.findall(ascii_chars) == re.findall(_NOT_PRINTABLE, ascii_chars)


def test_a_forbidden_character_past_ascii_is_named_with_its_line() -> None:
    parsed = parse_yaml("version: 1\nplatform: caf\u00e9\nnote: a\u0085b\u009bc\n", "r.yaml")
    assert [(p.line, p.message.split(" is ")[0]) for p in parsed.problems] == [
        (3, "character U+009B at column 10")
    ]


def test_a_deferred_pattern_compiles_once_and_survives_a_copy() -> None:
    pattern = DeferredPattern(r"^(?:[0-9]+)$")
    duplicate = copy.copy(pattern)  # made without __init__: asks for __setstate__ first
    assert not pattern.compiled
    assert pattern.match("123") and not pattern.match("12a")
    assert pattern.compiled and pattern.pattern == r"^(?:[0-9]+)$"
    assert duplicate.match("7")
