"""Task suites (`codeact test`, `codeact.runTasks`): tasks with expected answers, run on the engine.

A suite file holds `[[task]]` tables: `name`, `task`, optional `inputs`, `signature`, `model`, and
either `expect` (equal to the answer) or `check` (a Python expression over `answer`, the outputs by
name, and `outputs`). The expression is the user's own, like a test assertion; it sees no builtins
beyond a few pure helpers.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codeact_lsp.engine.engine import Engine, EngineError
from codeact_lsp.engine.run import RunHandle, RunRequest


class SuiteTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    task: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    signature: str | None = None
    model: str | None = None
    expect: Any = None
    check: str | None = None
    max_iters: int | None = None
    line: int | None = None  # where the task's table starts in the file (for code lenses)


class TaskResult(BaseModel):
    name: str
    passed: bool
    status: str  # the run's status, or "error" when it could not start
    answer: Any = None
    outputs: dict[str, Any] | None = None
    message: str = ""  # why it failed, for a person
    run_id: str | None = None
    steps: int = 0
    duration_s: float = 0.0
    scripted: bool = False


class SuiteError(ValueError):
    """The suite file cannot be read: exit code 2 in the CLI."""


def load_suite(path: Path) -> list[SuiteTask]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise SuiteError(f"task suite not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: {exc}") from None
    raw = data.get("task", [])
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{path}: no [[task]] tables")
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == "[[task]]"]
    tasks: list[SuiteTask] = []
    for i, item in enumerate(raw):
        try:
            task = SuiteTask.model_validate({**item, "line": lines[i] if i < len(lines) else None})
        except ValidationError as exc:
            name = item.get("name", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise SuiteError(f"{path}: task {name}: {problems}") from None
        if "expect" not in item and task.check is None:
            raise SuiteError(f"{path}: task {task.name}: needs `expect` or `check`")
        tasks.append(task)
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SuiteError(f"{path}: duplicate task name(s) {', '.join(dupes)}")
    return tasks


def suite_path(workspace: Path | None, file: str | None, configured: str | None) -> Path:
    chosen = file or configured or "tasks.toml"
    path = Path(chosen)
    if not path.is_absolute() and workspace is not None and not (file and path.exists()):
        path = workspace / path
    return path


async def run_suite(
    engine: Engine,
    file: Path | str,
    names: Sequence[str] | None = None,
    *,
    concurrency: int = 2,
    on_start: Callable[[SuiteTask, RunHandle], None] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Run the suite's tasks (or the named ones) and judge each answer; results in file order."""
    tasks = load_suite(Path(file))
    if names:
        unknown = sorted(set(names) - {t.name for t in tasks})
        if unknown:
            raise SuiteError(f"no task named {', '.join(unknown)} in {file}")
        tasks = [t for t in tasks if t.name in set(names)]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(task: SuiteTask) -> TaskResult:
        async with gate:
            result = await run_task(engine, task, on_start=on_start)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(t) for t in tasks)))


async def run_task(
    engine: Engine,
    task: SuiteTask,
    *,
    on_start: Callable[[SuiteTask, RunHandle], None] | None = None,
) -> TaskResult:
    started = time.perf_counter()
    request = RunRequest(
        task=task.task,
        signature=task.signature,
        inputs=task.inputs,
        model=task.model,
        max_iters=task.max_iters,
    )
    try:
        handle = await engine.start(request)
    except EngineError as exc:
        return TaskResult(
            name=task.name, passed=False, status="error", message=str(exc), duration_s=0.0
        )
    if on_start is not None:
        on_start(task, handle)
    traj = await handle.wait()
    result = TaskResult(
        name=task.name,
        passed=False,
        status=traj.status,
        outputs=traj.outputs,
        run_id=traj.id,
        steps=len(traj.steps),
        duration_s=time.perf_counter() - started,
        scripted=traj.scripted,
    )
    if traj.status != "finished" or traj.outputs is None:
        result.message = traj.error or f"run ended {traj.status}"
        return result
    outputs = traj.outputs
    answer = outputs.get("answer", next(iter(outputs.values())) if len(outputs) == 1 else outputs)
    result.answer = answer
    result.passed, result.message = judge(task, answer, outputs)
    return result


def judge(task: SuiteTask, answer: Any, outputs: dict[str, Any]) -> tuple[bool, str]:
    if task.check is not None:
        scope = {**outputs, "answer": answer, "outputs": outputs}
        try:
            ok = bool(eval(task.check, {"__builtins__": _CHECK_BUILTINS}, scope))
        except Exception as exc:
            return False, f"check raised {type(exc).__name__}: {exc}"
        return ok, "" if ok else f"check failed: {task.check} (answer = {answer!r})"
    ok = equal(answer, task.expect)
    return ok, "" if ok else f"expected {task.expect!r}, got {answer!r}"


def equal(got: Any, want: Any) -> bool:
    """Equality that forgives float rounding noise (0.1 + 0.2 == 0.3) but nothing else."""
    if isinstance(got, bool) or isinstance(want, bool):
        return isinstance(got, bool) and isinstance(want, bool) and got is want
    if isinstance(got, int | float) and isinstance(want, int | float):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(equal(a, b) for a, b in zip(got, want, strict=True))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(equal(got[k], want[k]) for k in got)
    return bool(got == want)


_CHECK_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "float", "int", "isinstance", "len", "list", "max",
        "min", "round", "set", "sorted", "str", "sum", "tuple", "True", "False", "None",
    )
}  # fmt: skip


def junit_xml(results: Sequence[TaskResult], suite_name: str = "codeact") -> str:
    failures = sum(1 for r in results if not r.passed and r.status != "error")
    errors = sum(1 for r in results if r.status == "error")
    root = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        time=f"{sum(r.duration_s for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root, "testcase", classname=suite_name, name=r.name, time=f"{r.duration_s:.3f}"
        )
        if r.status == "error":
            ET.SubElement(case, "error", message=r.message).text = r.message
        elif not r.passed:
            ET.SubElement(
                case, "failure", message=r.message
            ).text = f"{r.message}\nrun: {r.run_id} ({r.status}, {r.steps} steps)"
        if r.scripted:
            ET.SubElement(case, "system-out").text = "model: scripted stand-in (not a real model)"
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
