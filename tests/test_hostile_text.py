"""Server-controlled text never reaches a terminal raw (issue 11, class 6): a reason phrase, a
health body, a RabbitMQ queue state with ESC sequences or newlines shows as visible escapes in
``check``'s text, and JSON stays valid with no raw control character in any string."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdash.cli import main
from opsdash.safetext import printable
from tests import adversarial
from tests.loopback import Platform

CLEAR = "\x1b[2J"


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("plain text, é, 中文") == "plain text, é, 中文"
    assert printable(f"a{CLEAR}b") == "a\\x1b[2Jb"
    assert printable("line\nforged ok\r\t\x00\x7f\x9b\u202e") == (
        "line\\nforged ok\\r\\t\\x00\\x7f\\x9b\\u202e"
    )
    assert printable(printable(f"{CLEAR}\n")) == printable(f"{CLEAR}\n")


def test_every_escaped_character_is_escaped_alone_and_among_printable_text() -> None:
    """Each character of every escaped class, alone and inside text that is otherwise
    printable (the common text takes a quicker path than the search), comes out escaped."""
    escaped = [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F)]
    for code in [*escaped, *range(0x2066, 0x206A)]:
        char = chr(code)
        for text in (char, f"200 OK{char}done", f"é{char}"):
            shown = printable(text)
            assert char not in shown and "\\" in shown, (hex(code), shown)
    assert printable("nbsp\xa0and\u2028separators") == "nbsp\xa0and\u2028separators"


@pytest.fixture
def platform() -> Iterator[Platform]:
    running = Platform()
    yield running
    running.close()


def run(capsys: pytest.CaptureFixture[str], registry: Path, *extra: str) -> str:
    main(["check", "-r", str(registry), *extra])
    return capsys.readouterr().out


def no_raw_controls(text: str) -> None:
    assert printable(text.replace("\n", "")) == text.replace("\n", ""), repr(text)


async def test_a_reason_phrase_and_a_body_with_escapes_are_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps(
        {
            "status": "DOWN",
            "components": {
                f"db{CLEAR}": {
                    "status": "DOWN",
                    "details": {"error": f"gone{CLEAR}\nbooking-service ok"},
                }
            },
        }
    ).encode()
    handler = adversarial.fixed(503, f"Busy{CLEAR}", body, {"Content-Type": "application/json"})
    async with adversarial.serve(handler) as server:
        registry = tmp_path / "services.yaml"
        registry.write_text(
            "version: 1\nplatform: p\ndefaults: {timeout: 2s}\n"
            f"services:\n  api: {{url: '{server.url}', ready: false}}\n"
        )
        # check runs its own event loop: run it in a thread, the server stays on ours.
        text = await asyncio.to_thread(run, capsys, registry)
        document = await asyncio.to_thread(run, capsys, registry, "--json")
    assert "\x1b" not in text
    no_raw_controls(text)
    assert "Busy\\x1b[2J" in text
    checks = json.loads(document)["checks"]
    dumped = json.dumps(checks, ensure_ascii=False)
    assert "\x1b" not in dumped and "\\u001b" not in dumped  # escaped before JSON, not by it


def test_a_rabbitmq_queue_state_with_escapes_is_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: Platform
) -> None:
    queue = {"name": "q", "messages": 2, "messages_ready": 2, "messages_unacknowledged": 0,
             "consumers": 0, "state": f"crashed{CLEAR}\nall ok"}  # fmt: skip
    base = platform.add(
        {"/api/queues/%2F/q": (200, "application/json", json.dumps(queue).encode())}
    )
    registry = tmp_path / "services.yaml"
    registry.write_text(
        "version: 1\nplatform: p\nworkers:\n  w:\n"
        f"    dlq: {{source: rabbitmq, management_url: '{base}', queue: q}}\n"
    )
    text = run(capsys, registry)
    assert "\x1b" not in text
    assert "queue crashed\\x1b[2J\\nall ok" in text
    no_raw_controls(text)
    state = json.loads(run(capsys, registry, "--json"))["checks"][0]["details"]["state"]
    assert state == "crashed\\x1b[2J\\nall ok"
