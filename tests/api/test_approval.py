"""Review from Python: the callback sees each pending step and approves, edits or rejects it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from codeact_lsp.api import Approve, CodeAct, PendingStep, Reject

from .conftest import factorial


class Stock:
    def __init__(self, units: int) -> None:
        self.units = units

    def reserve(self, sku: str, units: int) -> int:
        """Reserve `units` of `sku`; returns the units left."""
        if units > self.units:
            raise ValueError(f"only {self.units} units of {sku} left")
        self.units -= units
        return self.units


def test_reject_then_approve(make_act: Callable[..., CodeAct]) -> None:
    stock = Stock(200)
    seen: list[PendingStep] = []
    threads: set[int] = set()

    def review(step: PendingStep) -> Approve | Reject:
        seen.append(step)
        threads.add(threading.get_ident())
        if "100" in step.code:
            return Reject("Reserve at most 2 units per order.")
        return Approve()

    act = make_act("task -> left: int", {"reserve": stock.reserve}, "review", approval=review)
    result = act(task="Reserve SKU-42 for the order.")
    assert result.ok, result.error
    assert result.left == 198
    assert stock.units == 198, "the rejected step never ran"
    assert [p.index for p in seen] == [1, 2]
    assert seen[0].run_id == result.run_id and "reserve(" in seen[0].code
    first, second = result.steps
    assert first.status == "rejected"
    assert first.feedback == "Reserve at most 2 units per order."
    assert first.tool_calls == []
    assert second.status == "ok" and second.tool_calls[0].result == 198
    # a sync reviewer runs on the thread that called act(): input() and Ctrl-C work there
    assert threads == {threading.get_ident()}


def test_approve_with_edited_code(make_act: Callable[..., CodeAct]) -> None:
    def review(step: PendingStep) -> Approve:
        return Approve(code=step.code.replace("final_answer(result)", "final_answer(result + 1)"))

    act = make_act("n: int -> factorial: int", [factorial], "factorial", approval=review)
    result = act(n=5)
    assert result.ok, result.error
    assert result.factorial == 121
    assert result.steps[0].edited
    assert "result + 1" in result.steps[0].code


def test_shorthand_answers_and_async_reviewer(make_act: Callable[..., CodeAct]) -> None:
    calls: list[int] = []

    async def review(step: PendingStep) -> bool:
        calls.append(step.index)
        return True

    act = make_act("n: int -> factorial: int", [factorial], "factorial", approval=review)
    assert act(n=4).factorial == 24
    assert calls == [1]


def test_confirm_tools_asks_only_for_flagged_tools(make_act: Callable[..., CodeAct]) -> None:
    stock = Stock(200)
    asked: list[str] = []

    def review(step: PendingStep) -> Reject | None:
        asked.append(step.code)
        return Reject("too many") if "100" in step.code else None

    act = make_act(
        "task -> left: int",
        {"reserve": stock.reserve},
        "review",
        approval="confirm-tools",
        confirm=["res*"],
        reviewer=review,
    )
    result = act(task="Reserve SKU-42.")
    assert result.left == 198
    assert len(asked) == 2


def test_reviewer_errors_surface_to_the_caller(make_act: Callable[..., CodeAct]) -> None:
    def review(step: PendingStep) -> Approve:
        raise RuntimeError("reviewer crashed")

    act = make_act("n: int -> factorial: int", [factorial], "factorial", approval=review)
    with pytest.raises(RuntimeError, match="reviewer crashed"):
        act(n=5)


def test_misconfigured_review_is_refused_up_front() -> None:
    model = "scripted:/nonexistent.json"
    with pytest.raises(ValueError, match="reviewer"):
        CodeAct("n -> f", tools=[factorial], model=model, approval="review")
    with pytest.raises(ValueError, match="reviewer"):
        CodeAct("n -> f", tools=[factorial], model=model, confirm=["factorial"])
    with pytest.raises(ValueError, match="never be asked"):
        CodeAct("n -> f", tools=[factorial], model=model, approval="auto", reviewer=print)
    with pytest.raises(TypeError, match="Approve"):
        from codeact_lsp.api.approval import normalize

        normalize("yes")


def test_reviewer_sees_static_checks(make_act: Callable[..., CodeAct]) -> None:
    stock = Stock(10)
    seen: list[PendingStep] = []

    def review(step: PendingStep) -> Approve | Reject:
        seen.append(step)
        errors = [c for c in step.checks if c["severity"] == "error"]
        return Reject("; ".join(c["message"] for c in errors)) if errors else Approve()

    act = make_act("task -> left: int", {"reserve": stock.reserve}, "bad_kwarg", approval=review)
    result = act(task="Reserve two units of SKU-42.")
    assert result.left == 8
    first, second = seen
    assert any("qty" in c["message"] and c["line"] == 1 for c in first.checks), first.checks
    assert not [c for c in second.checks if c["severity"] == "error"], second.checks
    assert result.steps[0].status == "rejected" and "qty" in (result.steps[0].feedback or "")


def test_interactive_review_with_input_in_a_script() -> None:
    """The terminal form of review: the callback prompts with input() on the calling thread."""
    import subprocess
    import sys

    from .conftest import scripted_model

    script = f"""
from codeact_lsp import CodeAct, Approve, Reject

class Stock:
    units = 200
    def reserve(self, sku: str, units: int) -> int:
        "Reserve units; returns the units left."
        self.units -= units
        return self.units

def review(step):
    answer = input(f"run step {{step.index}}? ")
    return Approve() if answer == "y" else Reject(answer)

act = CodeAct("task -> left: int", tools={{"reserve": Stock().reserve}},
              model={scripted_model("review")!r}, approval=review)
result = act(task="reserve")
print()
print(result.left, [s.feedback for s in result.steps])
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input="at most 2, please\ny\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "198 ['at most 2, please', None]"
    assert "run step 1? run step 2? " in proc.stdout
