"""The tool boundary seen from a run (issue 11): a confirm tool never runs without the step's
approval however the code reaches it, and whatever a snippet passes, the run record stays
bounded, clipped where it had to be (and marked), and loadable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from codeact_lsp.api import CodeAct, PendingStep
from codeact_lsp.trajectory import Trajectory

INDIRECT = r"""
import sys
name = 'delete_' + 'everything'
ways = {
    'globals': lambda: globals()[name]('/data'),
    'eval': lambda: eval(name + "('/data')"),
    'getattr': lambda: getattr(sys.modules[__name__], name, globals()[name])('/data'),
    'alias': lambda: [v for k, v in globals().items() if k == name][0]('/data'),
}
for way, call in ways.items():
    try:
        call()
        print(way, 'RAN')
    except PermissionError as exc:
        print(way, 'refused:', exc)
final_answer('done')
"""


def _tools(log: Path) -> list[Callable[..., object]]:
    def delete_everything(path: str) -> str:
        """Delete everything under `path` (needs a person's approval)."""
        log.write_text(f"deleted {path}")
        return "gone"

    def echo(value: object) -> int:
        """The size of what arrived (in characters of its repr)."""
        return len(repr(value))

    return [delete_everything, echo]


def _reply(tmp: Path, code: str) -> str:
    path = tmp / "reply.json"
    path.write_text(json.dumps([f"```python\n{code}\n```"]))
    return f"scripted:{path}"


def test_indirect_calls_of_a_confirm_tool_are_refused_where_served(tmp_path: Path) -> None:
    log = tmp_path / "deleted.log"
    asked: list[int] = []

    def reviewer(step: PendingStep) -> bool:  # would approve, if a step ever showed the call
        asked.append(step.index)
        return True

    with CodeAct(
        "task -> answer",
        tools=_tools(log),
        confirm=["delete_*"],
        reviewer=reviewer,
        model=_reply(tmp_path, INDIRECT),
        runs_dir=tmp_path / "runs",
    ) as act:
        result = act(task="clean up")
    assert result.ok, result.error
    assert not log.exists(), "the confirm tool ran without approval"
    assert asked == []  # the static check did not see it: nobody was asked
    lines = result.steps[0].stdout.splitlines()
    assert len(lines) == 4 and all("refused: delete_everything() needs" in x for x in lines)
    refused = [c for c in result.steps[0].tool_calls if c.name == "delete_everything"]
    assert len(refused) == 4 and all((c.error or "").startswith("PermissionError") for c in refused)


FLOOD = r"""
blob = 'x' * 20_000
deep = 'leaf'
for _ in range(60):
    deep = [deep]
for i in range(1200):
    echo({'i': i, 'blob': blob})
echo(deep)
final_answer('done')
"""


def test_a_flood_of_big_arguments_leaves_a_bounded_loadable_record(tmp_path: Path) -> None:
    with CodeAct(
        "task -> answer",
        tools=_tools(tmp_path / "unused.log"),
        model=_reply(tmp_path, FLOOD),
        runs_dir=tmp_path / "runs",
    ) as act:
        result = act(task="flood")
    assert result.ok, result.error
    step = result.trajectory.steps[0]
    assert len(step.tool_calls) == 1000  # sandbox.max_recorded_calls
    assert step.model_dump()["tool_calls_omitted"] == 202  # 200 echoes + echo(deep) + answer
    first = step.tool_calls[0].args["value"]
    assert isinstance(first, str) and "[clipped:" in first and len(first) < 2200
    text = result.trajectory.model_dump_json()
    assert len(text) < 5_000_000
    assert Trajectory.model_validate_json(text) == result.trajectory
    saved = list((tmp_path / "runs").glob("*.json"))
    assert saved and Trajectory.model_validate_json(saved[0].read_text()).status == "finished"
