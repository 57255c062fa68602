"""Prompt shape and growth; the run's program; static approval checks; run files."""

from __future__ import annotations

import json
from pathlib import Path

from codeact_lsp.engine.approval import confirm_tools, flagged_tools, needs_approval
from codeact_lsp.engine.program import build_program
from codeact_lsp.engine.prompt import build_messages, observation
from codeact_lsp.engine.signature import Signature
from codeact_lsp.engine.store import RunStore, new_run_id
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import Step, StepError, ToolCall, Trajectory

TOOLS = [
    ToolSchema(
        name="price_of",
        module="tools",
        signature="def price_of(sku: str) -> dict[str, float]",
        doc="Unit price in USD.",
    ),
    ToolSchema(
        name="shipping_quote",
        module="tools",
        signature="async def shipping_quote(weight_kg: float, country: str) -> float",
        doc="Price in EUR.",
        is_async=True,
    ),
]


def _step(i: int, stdout: str = "") -> Step:
    return Step(index=i, code=f"x{i} = price_of('A')\nprint(x{i})", stdout=stdout, status="ok")


def test_prompt_shows_stubs_task_and_each_step_once() -> None:
    steps = [_step(1, "out1"), _step(2, "out2")]
    msgs = build_messages(
        tools=TOOLS, signature=Signature.parse(None), task="Quote it", inputs={}, steps=steps
    )
    system = msgs[0]["content"]
    assert "def price_of(sku: str) -> dict[str, float]:" in system
    assert "def shipping_quote(" in system and "async def" not in system
    assert "def final_answer(answer: Any) -> None" in system
    assert msgs[1]["content"].startswith("Task: Quote it")
    joined = json.dumps(msgs)
    assert joined.count("x1 = price_of") == 1 and joined.count("x2 = price_of") == 1
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]


def test_prompt_grows_linearly_even_with_huge_outputs() -> None:
    sig = Signature.parse(None)
    sizes = []
    for n in (1, 5, 10, 20):
        steps = [_step(i, "y" * 50_000) for i in range(1, n + 1)]
        msgs = build_messages(tools=TOOLS, signature=sig, task="t", inputs={}, steps=steps)
        sizes.append(sum(len(m["content"]) for m in msgs))
    per_step = [(sizes[i + 1] - sizes[i]) / d for i, d in enumerate((4, 5, 10))]
    assert max(per_step) - min(per_step) < 5  # constant per-step increment
    assert per_step[0] < 3000  # capped: 50k of output costs a bounded amount


def test_observation_reports_error_line_and_lost_state() -> None:
    step = _step(3)
    step.status = "error"
    step.error = StepError(type="KeyError", message="'usd'", line=2, traceback="Traceback ...")
    step.state_lost = True
    text = observation(step)
    assert "Error (line 2): KeyError: 'usd'" in text and "restarted" in text


def test_program_is_one_function_with_imports_and_awaits() -> None:
    steps = [
        Step(index=1, code="item = price_of(sku)", status="ok"),
        Step(index=2, code="boom()", status="error"),
        Step(
            index=3,
            code="s = shipping_quote(item['kg'], 'DE')\nfinal_answer(s)",
            status="ok",
            final=True,
            tool_calls=[ToolCall(name="shipping_quote")],
        ),
    ]
    program = build_program(steps, TOOLS, {"sku": "SKU-42"}, signature="sku: str -> cost: float")
    assert "boom()" not in program and "final_answer" not in program
    assert program.startswith("from tools import price_of, shipping_quote\n\n\nasync def ")
    assert "(sku: str) -> float:" in program and "await shipping_quote(" in program
    assert "asyncio" not in program
    compile(program, "<program>", "exec")


def test_confirm_detection_is_static_and_conservative() -> None:
    flagged = flagged_tools(["reserve", "price_of", "delete_all"], {"reserve": True}, ["delete_*"])
    assert flagged == {"reserve", "delete_all"}
    assert confirm_tools("x = price_of('a')", flagged) == []
    assert confirm_tools("left = reserve('a', 1)", flagged) == ["reserve"]
    assert confirm_tools("f = delete_all\nf()", flagged) == ["delete_all"]
    assert needs_approval("auto", "reserve('a', 1)", flagged) == (True, ["reserve"])
    assert needs_approval("review", "print(1)", flagged) == (True, [])
    assert needs_approval("confirm-tools", "print(1)", flagged) == (False, [])


def test_run_store_is_atomic_and_validates_ids(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    traj = Trajectory(id=new_run_id(), task="t")
    store.save(traj)
    traj.steps.append(_step(1))
    store.save(traj)
    loaded = store.load(traj.id)
    assert loaded is not None and len(loaded.steps) == 1
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [f"{traj.id}.json"]
    assert store.load("../../etc/passwd") is None
    assert store.list_ids() == [traj.id]


def test_run_file_matches_the_trajectory_with_cached_steps(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    traj = Trajectory(id=new_run_id(), task="t")
    for i in range(1, 4):
        traj.steps.append(_step(i, f"out{i}"))
        store.save(traj)
    traj.steps.append(Step(index=4, code="x", status="running"))
    store.save(traj)
    traj.steps[-1].status = "ok"
    traj.steps[-1].stdout = "late"
    traj.status = "finished"
    store.save(traj)
    loaded = store.load(traj.id)
    assert loaded is not None
    assert loaded.model_dump() == traj.model_dump()


def test_observation_says_which_fences_did_not_run() -> None:
    reply = "```python\nprint(2)\n```\nThis will output:\n```\n2\n```"
    ran = Step(index=1, code="print(2)", reply=reply, status="ok", stdout="2\n")
    assert "Not run: an unlabelled fence next to a ```python block." in observation(ran)
    nothing = Step(index=2, code="", reply="Answer:\n```\nAnswer: 100\n```", status="no_code")
    text = observation(nothing)
    assert text.startswith("No code found") and "not run" in text
    plain = Step(index=3, code="", reply="I think 4.", status="no_code")
    assert "not run" not in observation(plain)


def test_a_reply_cut_at_the_cap_is_said_out_loud() -> None:
    cut = Step(index=1, code="x = '''", reply="```python\nx = '''", status="error", cut_off=True)
    assert "cut off at the reply length limit" in observation(cut)
    none = Step(index=2, code="", reply="The error is " * 50, status="no_code", cut_off=True)
    assert "cut off" in observation(none)
    assert "cut off" not in observation(Step(index=3, code="x", status="ok"))
