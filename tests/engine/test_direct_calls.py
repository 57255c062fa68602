"""The direct route seen from a run (issue 11): host tools are served by the tool host without
the server in between, and the trajectory and the live events are what they were."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_helpers import Script, code

from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.tools import ToolHost


async def test_host_calls_go_direct_and_are_recorded_in_call_order(
    engine: Engine, host: ToolHost, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str] = []
    real = host.call_sync

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:  # the server's own route
        served.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(host, "call_sync", counted)
    model = script(
        [
            code(
                "a = stock_level('SKU-42')\nb = price_of('SKU-42')\n"
                "final_answer(answer=f'{a} {b[\"usd\"]}')\nstock_level('SKU-42')"
            )
        ]
    )
    handle = await engine.start(RunRequest(task="stock and price", model=model))
    traj = await asyncio.wait_for(handle.wait(), timeout=30)
    assert traj.status == "finished", traj.error
    step = traj.steps[0]
    # the host's calls first, in the order made, then final_answer (served by the server)
    assert [c.name for c in step.tool_calls] == ["stock_level", "price_of", "final_answer"]
    assert served == []  # neither went through the server
    first = step.tool_calls[0]
    assert first.args == {"sku": "SKU-42"} and first.line == 1 and first.error is None
    assert step.tool_calls[1].result == {"usd": 25.0, "kg": 0.8}
    events = [e async for e in handle.subscribe()]
    kinds = [(e.kind, e.step) for e in events]
    finished = kinds.index(("step_finished", 1))
    called = [i for i, k in enumerate(kinds) if k == ("tool_called", 1)]
    assert len(called) == 3 and max(called) < finished  # the live view saw them before the end
    assert [events[i].data["name"] for i in called] == ["stock_level", "price_of", "final_answer"]
