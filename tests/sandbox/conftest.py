"""Real worker processes for every test: one warm pool per test session."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sandbox_helpers import TOOLS, Factory, Recorder

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool, ToolHandler, ToolStub

# backend -> attack -> blocked?  (filled by test_attacks.py, printed at the end of the run)
ATTACK_RESULTS: dict[str, dict[str, bool]] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ATTACK_RESULTS:
        return
    terminalreporter.section("sandbox attack suite")
    for backend, results in sorted(ATTACK_RESULTS.items()):
        blocked = sum(results.values())
        line = f"{backend}: {blocked}/{len(results)} blocked"
        leaked = sorted(k for k, ok in results.items() if not ok)
        if leaked:
            line += "  LEAKED: " + ", ".join(leaked)
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pool() -> Iterator[SandboxPool]:
    p = SandboxPool(spares=1)
    yield p
    p._kill_all()


@pytest.fixture
async def make_sandbox(pool: SandboxPool) -> AsyncIterator[Factory]:
    made: list[Sandbox] = []

    async def make(
        handler: ToolHandler | None = None,
        tools: list[ToolStub] | None = None,
        python: str | None = None,
        extra_paths: tuple[str, ...] = (),
        **settings: Any,
    ) -> Sandbox:
        sb = await Sandbox.start(
            SandboxSettings(**settings),
            TOOLS if tools is None else tools,
            handler or Recorder(),
            python=python or sys.executable,
            extra_paths=extra_paths,
            pool=pool,
        )
        made.append(sb)
        return sb

    yield make
    for sb in made:
        await sb.close()
