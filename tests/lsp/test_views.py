"""The pure parts of the editor view: hand-built trajectories in, lenses/diagnostics/hovers out."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from lsprotocol import types as lsp

from codeact_lsp.engine.checks import CheckContext, ToolSig
from codeact_lsp.lsp import accept as acc
from codeact_lsp.lsp.args import CommandArgumentError, RunArgs, TryToolArgs, parse_args
from codeact_lsp.lsp.document import (
    parse_sections,
    render,
    replace_file,
    run_id_from_uri,
    trajectory_path,
)
from codeact_lsp.lsp.settings import settings_to_overrides
from codeact_lsp.lsp.tasks_view import TaskResult, find_tasks, task_diagnostics, task_lenses
from codeact_lsp.lsp.tool_view import bench_diagnostics, bench_lenses, tool_stats
from codeact_lsp.lsp.trajectory_view import build_view
from codeact_lsp.trajectory import ErrorLocation, Step, StepError, ToolCall, Trajectory, Usage

TOOLS = Path("/ws/tools.py")


def _traj(**kw: object) -> Trajectory:
    steps = [
        Step(
            index=1,
            code='item = price_of("SKU-42")\nprint(item)\n',
            stdout="{'usd': 25.0}\n",
            status="ok",
            duration_ms=12.0,
            usage=Usage(prompt_tokens=100, completion_tokens=20),
            tool_calls=[
                ToolCall(name="price_of", args={"sku": "SKU-42"}, result={"usd": 25.0}, line=1)
            ],
        ),
        Step(
            index=2,
            code='x = 1\nq = shipping_quote(1, "XX")\nprint(q)\n',
            status="error",
            error=StepError(
                type="ValueError",
                message="no shipping to 'XX'",
                line=2,
                traceback="Traceback...\nValueError: no shipping",
            ),
            tool_calls=[
                ToolCall(
                    name="shipping_quote",
                    args={"weight_kg": 1, "country": "XX"},
                    error="ValueError: no shipping to 'XX'",
                    error_detail=ErrorLocation(
                        type="ValueError", message="no shipping to 'XX'", file=str(TOOLS), line=33
                    ),
                    line=2,
                )
            ],
        ),
    ]
    data: dict[str, object] = {"id": "r1", "task": "quote", "status": "failed", "steps": steps}
    data.update(kw)
    return Trajectory.model_validate(data)


def test_render_then_parse_finds_every_step_and_its_code() -> None:
    traj = _traj()
    text = render(traj)
    sections = parse_sections(text)
    assert [s.index for s in sections] == [1, 2]
    assert sections[0].code.strip() == traj.steps[0].code.strip()
    assert sections[1].code.strip() == traj.steps[1].code.strip()
    lines = text.splitlines()
    assert lines[sections[1].code_start] == "x = 1"
    assert "#> {'usd': 25.0}" in text  # the observation is shown but is not code


def test_step_lenses_status_and_rerun_actions() -> None:
    traj = _traj(status="finished", outputs={"answer": 1})
    view = build_view(traj)
    titles = [lens.command.title for lens in view.lenses if lens.command]
    assert any(t.startswith("✓ step 1 · 1 tool call · 12 ms · 120 tok") for t in titles)
    assert any(t.startswith("✗ step 2 · 1 tool call (1 failed)") for t in titles)
    commands = [lens.command.command for lens in view.lenses if lens.command]
    assert commands.count("codeact.rerun") == 2
    assert "codeact.accept" in commands and "codeact.discard" in commands
    assert "codeact.followUp" in commands


def test_a_failed_tool_call_is_one_error_at_the_call_with_the_raising_line() -> None:
    traj = _traj()
    view = build_view(traj, uri="file:///ws/.codeact/runs/r1.py")
    section = view.sections[1]
    [error] = view.diagnostics  # not a step error and a tool warning on the same line
    assert error.code == "tool-error" and error.severity == lsp.DiagnosticSeverity.Error
    assert error.range.start.line == section.code_start + 1
    assert error.message == "`shipping_quote` raised ValueError: no shipping to 'XX'"
    [raised] = error.related_information or []
    assert raised.location.uri == TOOLS.as_uri() and raised.location.range.start.line == 32
    assert "Traceback" not in raised.message  # the traceback is in the hover, once


def test_a_step_error_is_one_diagnostic_and_a_caught_tool_error_stays_a_warning() -> None:
    traj = _traj()
    failing = traj.steps[1]
    failing.error = StepError(type="ZeroDivisionError", message="division by zero", line=3)
    view = build_view(traj, uri="file:///ws/.codeact/runs/r1.py")
    section = view.sections[1]
    by_code = {str(d.code): d for d in view.diagnostics}
    assert sorted(by_code) == ["step-error", "tool-error"]
    step_error = by_code["step-error"]
    assert step_error.range.start.line == section.code_start + 2
    assert step_error.message == "ZeroDivisionError: division by zero"
    assert not step_error.related_information, "no traceback entries: the hover has it"
    caught = by_code["tool-error"]
    assert caught.severity == lsp.DiagnosticSeverity.Warning
    assert caught.range.start.line == section.code_start + 1
    assert "caught by the step" in caught.message
    run_level = [d for d in view.diagnostics if d.code == "run-failed"]
    assert not run_level  # no run error text in this trajectory


def test_hover_on_tool_call_shows_its_result_and_on_step_its_stdout() -> None:
    view = build_view(_traj())
    first = view.sections[0]
    col = view.text.splitlines()[first.code_start].index("price_of") + 2
    hover = view.hover_at(first.code_start, col)
    assert hover is not None and "price_of(sku='SKU-42')" in hover.markdown
    step_hover = view.hover_at(first.header_line, 0)
    assert step_hover is not None and "{'usd': 25.0}" in step_hover.markdown


def test_edited_step_keeps_lenses_on_shifted_lines_and_drops_stale_errors() -> None:
    traj = _traj(status="finished", outputs={"answer": 1})
    text = render(traj).replace("x = 1\n", "x = 1\ny = 2\nz = 3\n")
    view = build_view(
        traj,
        text,
        CheckContext(
            tools={
                "shipping_quote": ToolSig(
                    "shipping_quote", ("weight_kg", "country"), ("weight_kg", "country")
                )
            }
        ),
    )
    rerun = [
        lens for lens in view.lenses if lens.command and lens.command.command == "codeact.rerun"
    ]
    assert rerun[1].command is not None and "(your edit)" in rerun[1].command.title
    assert rerun[1].range.start.line == view.sections[1].header_line
    assert not [d for d in view.diagnostics if d.code == "step-error"]


def test_pending_step_gets_static_checks_and_review_lenses() -> None:
    step = Step(
        index=1,
        code='reserve("SKU-42", unitz=2)\nfoo(1)\ndef broken(:\n',
        status="awaiting_approval",
    )
    traj = Trajectory(id="r2", task="t", status="awaiting_approval", steps=[step])
    ctx = CheckContext(
        tools={"reserve": ToolSig("reserve", ("sku", "units"), ("sku", "units"), confirm=True)}
    )
    view = build_view(traj, None, ctx)
    assert [d.code for d in view.diagnostics] == ["syntax"]
    step.code = 'reserve("SKU-42", unitz=2)\nfoo(1)\n'
    view = build_view(traj, None, ctx)
    codes = sorted(str(d.code) for d in view.diagnostics)
    assert codes == ["confirm-tool", "tool-args", "tool-args", "unknown-tool"]
    messages = " | ".join(d.message for d in view.diagnostics)
    assert "did you mean `units`" in messages and "missing required argument(s): units" in messages
    commands = [lens.command.command for lens in view.lenses if lens.command]
    assert "codeact.approve" in commands and "codeact.reject" in commands
    assert "codeact.cancel" in commands


def test_bench_lenses_and_raising_line_diagnostic() -> None:
    class Tool:
        def __init__(self, name: str, line: int) -> None:
            self.name, self.file, self.line = name, str(TOOLS), line

    traj = _traj()
    stats = tool_stats(traj)
    assert stats["shipping_quote"].errors == 1
    lenses = bench_lenses(
        [Tool("shipping_quote", 27), Tool("price_of", 48)], str(TOOLS), stats, "r1"
    )
    titles = [lens.command.title for lens in lenses if lens.command]
    assert titles == [
        "▷ Try",
        "used 1× in last run · 1 error",
        "▷ Try",
        "used 1× in last run · 0 errors",
    ]
    diags = bench_diagnostics(str(TOOLS), [], traj)
    assert len(diags) == 1 and diags[0].range.start.line == 32
    assert "raised by `shipping_quote`" in diags[0].message


def test_task_lenses_show_last_result() -> None:
    text = '[[task]]\nname = "a"\ntask = "x"\n\n[[task]]\nname = \'b\'\n'
    assert [(t.name, t.line) for t in find_tasks(text)] == [("a", 0), ("b", 4)]
    results = {
        "a": TaskResult(name="a", passed=True, status="finished", duration_s=1.23),
        "b": TaskResult(name="b", passed=False, status="finished", message="got 3"),
    }
    titles = [
        lens.command.title for lens in task_lenses(text, "tasks.toml", results) if lens.command
    ]
    assert titles == ["▷ Run task · last ✓ 1.2 s", "▷ Run task · last ✗ 0.0 s"]
    diags = task_diagnostics(text, results)
    assert len(diags) == 1 and diags[0].range.start.line == 4


def test_accept_refuses_when_the_document_changed() -> None:
    rng = lsp.Range(lsp.Position(1, 0), lsp.Position(1, 0))
    start = "a\nb\n"
    ok = acc.plan_at_target("x = 1\n", acc.DocState("file:///t.py", start, 3), rng, start, "")
    # the cursor is on the top-level statement `b`: the program goes after it
    assert ok.ok and ok.version == 3 and ok.document_after == "a\nb\n\n\nx = 1\n"
    changed = acc.plan_at_target(
        "x = 1\n", acc.DocState("file:///t.py", "a\nB\n", 4), rng, start, ""
    )
    assert not changed.ok and "t.py was edited after the run started (1 line changed)" in (
        changed.reason or ""
    )
    edit = acc.workspace_edit(
        acc.plan_new_file("x = 1\n", "file:///new.py"), annotate=True, label=""
    )
    assert isinstance((edit.document_changes or [])[0], lsp.CreateFile)
    assert edit.change_annotations and all(
        a.needs_confirmation for a in edit.change_annotations.values()
    )


def test_arguments_are_validated_with_actionable_messages() -> None:
    with pytest.raises(CommandArgumentError, match="did you mean `maxIters`"):
        parse_args("codeact.run", RunArgs, [{"task": "t", "maxIter": 3}])
    with pytest.raises(CommandArgumentError, match="`task` is required"):
        parse_args("codeact.run", RunArgs, [])
    with pytest.raises(CommandArgumentError, match="one JSON object"):
        parse_args("codeact.run", RunArgs, ["t"])
    assert parse_args("codeact.tryTool", TryToolArgs, [{"name": "f"}]).args == {}


def test_settings_accept_camel_and_snake_case() -> None:
    got = settings_to_overrides(
        {"maxIters": 3, "model": None, "sandbox": {"memoryMb": 64}, "trace": "x"}
    )
    assert got == {"max_iters": 3, "sandbox": {"memory_mb": 64}}


def test_trajectory_uri_round_trip(tmp_path: Path) -> None:
    path = trajectory_path(tmp_path, "20260101-abc")
    assert run_id_from_uri(path.resolve().as_uri()) == "20260101-abc"
    assert run_id_from_uri((tmp_path / "tools.py").as_uri()) is None


def test_tool_stats_cache_matches_a_full_count_as_the_run_grows() -> None:
    from codeact_lsp.lsp.tool_view import ToolStatsCache

    traj = _traj(status="running")
    cache = ToolStatsCache()
    full = tool_stats(traj)
    assert {k: (v.calls, v.errors) for k, v in cache.get(traj).items()} == {
        k: (v.calls, v.errors) for k, v in full.items()
    }
    traj.steps[-1].tool_calls.append(ToolCall(name="price_of", args={}))  # the last step grows
    traj.steps.append(Step(index=3, code="x", tool_calls=[ToolCall(name="price_of")]))
    traj.status = "finished"
    assert cache.get(traj)["price_of"].calls == tool_stats(traj)["price_of"].calls == 3
    assert cache.get(traj)["shipping_quote"].errors == 1


def _stamp(path: Path) -> tuple[int, int]:
    """What an editor compares to decide that a file changed: mtime in ms (VS Code) and size."""
    st = path.stat()
    return st.st_mtime_ns // 1_000_000, st.st_size


def test_back_to_back_rewrites_of_equal_size_are_all_visible(tmp_path: Path) -> None:
    path = tmp_path / ".codeact" / "runs" / "r1.py"
    stamps = []
    for status in ["running", "waiting", "running", "stopped", "stopped"]:
        # Same length every time, as fast as possible: within one timestamp tick.
        if replace_file(path, f"# run r1 · {status}\n") is not None:
            stamps.append(_stamp(path))
    assert len(stamps) == 4  # the last write repeated the text: no rewrite at all
    for before, after in itertools.pairwise(stamps):
        assert after[0] > before[0] and after[1] != before[1]
    assert path.read_text().rstrip("\n") == "# run r1 · stopped"
    assert os.listdir(path.parent) == ["r1.py"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("fields", "header"),
    [
        ({"relation": "rerun", "rerun_from": 2}, "# re-run of parent-1 from step 2"),
        ({"relation": "follow_up"}, "# follows up run parent-1 (same sandbox state)"),
        ({}, "# from run parent-1"),
    ],
)
def test_the_document_says_where_a_derived_run_came_from(
    fields: dict[str, object], header: str
) -> None:
    traj = _traj(parent="parent-1", **fields)
    assert header in render(traj).splitlines()


def test_a_replayed_step_says_so_in_its_lens() -> None:
    from codeact_lsp.lsp.trajectory_view import step_summary

    traj = _traj()
    traj.steps[0].replayed = True
    assert "replayed: tool calls answered from the record" in step_summary(traj.steps[0])
    assert "replayed" not in step_summary(traj.steps[1])


def test_a_run_out_of_steps_offers_to_continue_with_the_same_budget() -> None:
    traj = _traj(status="max_iters", max_iters=4, task="quote")
    lenses = build_view(traj).lenses
    [cont] = [lens for lens in lenses if lens.command and "Continue" in lens.command.title]
    assert cont.command is not None
    assert cont.command.title == "⏩ Continue (4 more steps)"
    assert cont.command.command == "codeact.followUp"
    assert cont.command.arguments == [{"runId": "r1", "task": "Continue: quote"}]
    again = build_view(_traj(status="max_iters", max_iters=1, task="Continue: quote")).lenses
    assert any(lens.command and lens.command.title == "⏩ Continue (1 more step)" for lens in again)
    assert all(
        (lens.command.arguments or [{}])[0].get("task") in (None, "Continue: quote")
        for lens in again
        if lens.command
    )
    finished = build_view(_traj(status="finished")).lenses
    assert not [lens for lens in finished if lens.command and "Continue" in lens.command.title]


def test_the_suite_and_its_lenses_locate_tasks_the_same_way(tmp_path: Path) -> None:
    from codeact_lsp.engine.suite import load_suite

    text = (
        '[[task]]  # first\nname = "a"\ntask = "x"\nexpect = 1\n\n'
        '[[ task ]]\nname = "b"\ntask = "y"\nexpect = 2\n'
    )
    (tmp_path / "tasks.toml").write_text(text, encoding="utf-8")
    suite_lines = [(t.name, t.line) for t in load_suite(tmp_path / "tasks.toml")]
    lens_lines = [(t.name, t.line + 1) for t in find_tasks(text)]
    assert suite_lines == lens_lines == [("a", 1), ("b", 6)]
