"""The engine is headless: the check path never imports textual (start-up time, cron, CI)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    probe = textwrap.dedent(
        f"""
        import sys
        {code}
        print("\\n".join(sorted(sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(out.stdout.split())


def test_importing_the_cli_loads_no_tui_and_no_driver() -> None:
    loaded = _modules_after("import opsdash.cli")
    assert "opsdash.cli" in loaded
    for heavy in ("textual", "httpx", "asyncpg", "redis", "pymongo", "pydantic"):
        assert heavy not in loaded, f"importing opsdash.cli loads {heavy}"


def test_a_check_round_loads_no_textual() -> None:
    loaded = _modules_after(
        """
        import asyncio
        from opsdash.rounds import check_rounds
        from opsdash.plan import build_plan
        from opsdash.registry.model import Registry
        registry = Registry.model_validate(
            {"version": 1, "platform": "t", "services": {"a": {"url": "http://127.0.0.1:9"}}}
        )
        specs = build_plan(registry, timeout=0.5)
        snapshot = asyncio.run(check_rounds(registry, specs, wait=None, concurrency=4))
        assert len(snapshot.results) == 2
        from opsdash.render.json import check_document
        from opsdash.render.text import render_text
        render_text(snapshot); check_document(snapshot)
        """
    )
    assert "opsdash.engine" in loaded
    assert not any(name == "textual" or name.startswith("textual.") for name in loaded)


def test_no_module_outside_the_tui_imports_textual() -> None:
    engine_modules = [
        path
        for path in (ROOT / "opsdash").rglob("*.py")
        if "tui" not in path.relative_to(ROOT / "opsdash").parts
    ]
    assert len(engine_modules) > 10
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in engine_modules
        if any(
            line.strip().startswith(("import textual", "from textual"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []


def test_the_check_command_without_from_loads_no_http_client_library(tmp_path: Path) -> None:
    """``--from``'s client (httpx) loads only when ``--from`` is given: click calls the option's
    callback for its empty default too, which once put 0.4 s of imports on every ``check``."""
    registry = tmp_path / "services.yaml"
    registry.write_text("version: 1\nplatform: t\nservices:\n  a:\n    url: http://127.0.0.1:9\n")
    loaded = _modules_after(
        f"""
        from opsdash.cli import main
        code = main(["check", "--json", "--timeout", "0.2s", "-r", {str(registry)!r}])
        assert code == 2, code  # the service is down: crit, so the round really ran
        """
    )
    assert "opsdash.rounds" in loaded
    assert "httpx" not in loaded and "opsdash.remote" not in loaded
