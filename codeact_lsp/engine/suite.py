"""Task suites (`codeact test`, `codeact.runTasks`): tasks with expected answers, run on the engine.

A suite file holds `[[task]]` tables: `name`, `task`, optional `inputs`, `signature`, `model`, and
either `expect` (equal to the answer) or `check` (a Python expression over `answer`, the outputs by
name, and `outputs`). The expression is the user's own, like a test assertion; it sees no builtins
beyond a few pure helpers.

Tasks are isolated by default, like unit tests: each one gets a tool host process of its own, so
stateful tools start fresh and tasks running side by side (`jobs`) cannot see each other's state.
A suite whose tasks are meant to build on each other opts in with `isolation = "shared"`: one
tool host for the suite, tasks one after another in file order.

A suite is also a matrix: every task runs on each of `models` (`--models`, config
`suite.models`), `repeat` times, so that "do my tools still work with model X" gets an answer with
an error bar (statistics in `engine.matrix`). A task that names its own `model` is pinned to it.
`plan_runs` expands the matrix into `SuiteRun`s, the unit every executor runs.

The runner's interface (also for other executors, e.g. a distributed one): `run_suite(engine,
file, names, jobs=, isolation=, fresh_tools=, models=, repeat=, on_start=, on_result=)`; each
run is `run_task(engine, task, tools=provider)`, which needs nothing but an engine and a
`ToolProvider` and returns a `TaskResult` (pydantic, JSON-safe). `TaskResult` is the one result
model of a task's run: `codeact test`, the editor's `codeact.runTasks` (and its stored lens
results) and MCP's `run_task` all answer with it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import re
import time
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codeact_lsp.engine.engine import Engine, EngineError
from codeact_lsp.engine.run import RunHandle, RunRequest
from codeact_lsp.tools.models import ToolProvider
from codeact_lsp.trajectory import Trajectory

Isolation = Literal["fresh", "shared"]
ToolsFactory = Callable[[], Awaitable[ToolProvider]]


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


class RootError(BaseModel):
    """The first thing that went wrong in a task's run: a tool's exception or a step's error."""

    kind: Literal["tool", "step"]
    type: str
    message: str
    step: int  # the step it happened in
    line: int | None = None  # in the step's code (the call's line, for a tool)
    tool: str | None = None
    file: str | None = None  # where the tool raised
    file_line: int | None = None

    def text(self) -> str:
        at = f"step {self.step}" + (f", line {self.line}" if self.line else "")
        if self.kind == "tool":
            where = f" at {self.file}:{self.file_line}" if self.file and self.file_line else ""
            return f"tool {self.tool} raised {self.type}: {self.message}{where} (called in {at})"
        return f"{at}: {self.type}: {self.message}"


class TaskResult(BaseModel):
    """One run of a task and its verdict. Also what MCP's `run_task` answers (a run with no
    expected answer: `passed` is "it finished") and what the editor keeps for its lenses."""

    name: str  # the task's ("" for an MCP run_task run, which has no name)
    passed: bool
    status: str  # the run's status, or "error" when it could not start
    answer: Any = None
    outputs: dict[str, Any] | None = None
    message: str = ""  # why it failed, for a person: the root error first, then the consequence
    error: str | None = None  # the run's own error, as recorded in its trajectory
    run_id: str | None = None
    trajectory: str | None = None  # the run file (.codeact/runs/<id>.json)
    steps: int = 0
    duration_s: float = 0.0
    scripted: bool = False
    root_error: RootError | None = None  # the first error in the run (what went wrong first)
    consequence: str = ""  # how the run ended because of it ("ran out of replies", "expected ...")
    isolation: Isolation = "fresh"
    tool_host_pid: int | None = None  # the tool process that served the task (fresh: its own)
    # the matrix: which model, which repeat (1-based), and what the run used
    model: str = ""
    repeat: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None: the model's price is unknown (not: it was free)
    # where it ran (suite_ray): the node's host name, and 2 when the first attempt was lost
    # with its worker or node and the run was submitted again
    node: str | None = None
    attempts: int = 1

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def label(self) -> str:
        """The run's name in a matrix, `task[rN]` (JUnit groups it under its model)."""
        return f"{self.name}[r{self.repeat}]"


class SuiteRun(BaseModel):
    """One cell of the matrix: a task on a model, the `repeat`-th time (1-based)."""

    model_config = ConfigDict(extra="forbid")

    task: SuiteTask
    model: str | None = None  # None: the configured default model
    repeat: int = 1

    def pinned(self) -> SuiteTask:
        """The task as this run runs it (the matrix's model unless the task names its own)."""
        return self.task.model_copy(update={"model": self.model})


def run_model(model: str | None, config_model: str | None) -> str:
    """The model a run uses, by the engine's rule (the run's, the config's, $CODEACT_MODEL);
    "" when none is set (the run then fails to start and says so). One name per run, for its
    model's cap and on its result, also when it could not start."""
    from codeact_lsp.engine.model import ModelError, resolve_model_name

    try:
        return resolve_model_name(model, config_model)
    except ModelError:
        return ""


def plan_runs(tasks: Sequence[SuiteTask], models: Sequence[str], repeat: int) -> list[SuiteRun]:
    """Every task on every model, `repeat` times, in file order (then model, then repeat).
    A task that names its `model` in the suite file keeps it: the override wins over the matrix."""
    if repeat < 1:
        raise SuiteError(f"repeat must be at least 1, not {repeat}")
    runs: list[SuiteRun] = []
    for task in tasks:
        chosen: list[str | None] = [task.model] if task.model else list(models) or [None]
        for model in dict.fromkeys(chosen):
            runs += [SuiteRun(task=task, model=model, repeat=r) for r in range(1, repeat + 1)]
    return runs


def from_trajectory(traj: Trajectory, *, name: str = "", path: Path | None = None) -> TaskResult:
    """What a finished run says, before any judging: status, outputs, the answer, usage."""
    outputs = traj.outputs
    answer: Any = None
    if outputs is not None:
        answer = outputs.get(
            "answer", next(iter(outputs.values())) if len(outputs) == 1 else outputs
        )
    return TaskResult(
        name=name,
        passed=traj.status == "finished",
        status=traj.status,
        answer=answer,
        outputs=outputs,
        error=traj.error,
        run_id=traj.id,
        trajectory=str(path) if path is not None else None,
        steps=len(traj.steps),
        scripted=traj.scripted,
        model=traj.model,
        prompt_tokens=traj.usage.prompt_tokens,
        completion_tokens=traj.usage.completion_tokens,
        cost_usd=traj.usage.cost_usd,
    )


def root_error(traj: Trajectory) -> RootError | None:
    """The first tool exception or step error, in the order they happened."""
    for step in traj.steps:
        for call in step.tool_calls:
            if call.error is None:
                continue
            detail = call.error_detail
            kind, _, message = call.error.partition(": ")
            return RootError(
                kind="tool" if call.name != "final_answer" else "step",
                type=detail.type if detail else kind,
                message=detail.message if detail else message,
                step=step.index,
                line=call.line,
                tool=call.name if call.name != "final_answer" else None,
                file=detail.file if detail else None,
                file_line=detail.line if detail else None,
            )
        if step.error is not None:
            return RootError(
                kind="step",
                type=step.error.type,
                message=step.error.message,
                step=step.index,
                line=step.error.line,
            )
    return None


class SuiteError(ValueError):
    """The suite file cannot be read: exit code 2 in the CLI."""


_HEADER = re.compile(r"^\s*\[\[\s*task\s*\]\]")
_NAME = re.compile(r"""^\s*name\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_TABLE = re.compile(r"^\s*\[")


@dataclass(frozen=True)
class TaskLocation:
    name: str
    line: int  # 0-based line of the [[task]] header


def find_tasks(text: str) -> list[TaskLocation]:
    """Where each `[[task]]` table starts and its name (tomllib gives no line numbers)."""
    found: list[TaskLocation] = []
    lines = text.splitlines()
    for no, line in enumerate(lines):
        if not _HEADER.match(line):
            continue
        name = f"task-{len(found) + 1}"
        for follow in lines[no + 1 :]:
            if _TABLE.match(follow):
                break
            match = _NAME.match(follow)
            if match:
                name = match.group(1) if match.group(1) is not None else match.group(2)
                break
        found.append(TaskLocation(name=name, line=no))
    return found


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
    lines = [found.line + 1 for found in find_tasks(text)]
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


def select_tasks(
    tasks: list[SuiteTask], names: Sequence[str] | None, file: object
) -> list[SuiteTask]:
    if not names:
        return tasks
    unknown = sorted(set(names) - {t.name for t in tasks})
    if unknown:
        raise SuiteError(f"no task named {', '.join(unknown)} in {file}")
    return [t for t in tasks if t.name in set(names)]


async def run_suite(
    engine: Engine,
    file: Path | str,
    names: Sequence[str] | None = None,
    *,
    jobs: int | None = None,
    isolation: Isolation | None = None,
    fresh_tools: ToolsFactory | None = None,
    concurrency: int | None = None,
    models: Sequence[str] | None = None,
    repeat: int | None = None,
    on_start: Callable[[SuiteTask, RunHandle], None] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Run the suite's tasks (or the named ones) and judge each answer; results in file order
    (then model, then repeat).

    `jobs` (default: config `suite.jobs`) runs at once; `isolation` (default: config
    `suite.isolation`) "fresh" gives each run a tool provider from `fresh_tools` (default: a new
    tool host process like the engine's, closed when the run ends), "shared" runs them one
    after another on the engine's tools. `models` and `repeat` (defaults: config `suite.models`,
    `suite.repeat`) make the matrix; config `suite.model_jobs` caps how many runs of one model
    go at once (a rate limit). `concurrency` is the old name of `jobs`."""
    tasks = select_tasks(load_suite(Path(file)), names, file)
    settings = engine.config.suite
    runs = plan_runs(tasks, models or settings.models, repeat or settings.repeat)
    mode: Isolation = isolation or settings.isolation
    width = jobs or concurrency or settings.jobs
    if width < 1:
        raise SuiteError(f"jobs must be at least 1, not {width}")
    factory = fresh_tools or (default_fresh_tools(engine) if mode == "fresh" else None)
    # tasks that share state run in file order, one at a time: interleaved they would race
    gate = asyncio.Semaphore(1 if mode == "shared" else width)
    caps = {model: asyncio.Semaphore(n) for model, n in settings.model_jobs.items()}
    spares = _Spares(factory, len(runs)) if factory is not None else None

    async def one(run: SuiteRun) -> TaskResult:
        model = run_model(run.model, engine.config.model)
        cap = caps.get(model)
        async with cap if cap is not None else contextlib.nullcontext(), gate:
            task = run.pinned()
            if spares is None:
                result = await run_task(engine, task, on_start=on_start)
                result.isolation = "shared"
                result.tool_host_pid = _pid(engine.tools)
            else:
                result = await _fresh_task(engine, task, spares.take, on_start)
        result.repeat = run.repeat
        result.model = model or result.model
        if on_result is not None:
            on_result(result)
        return result

    try:
        return list(await asyncio.gather(*(one(r) for r in runs)))
    finally:
        if spares is not None:
            await spares.close()


class _Spares:
    """Fresh tool providers, one started ahead while a task runs, so that a task waits for a
    tool host's start only when tasks are quicker than it. A spare has served nobody: it is as
    fresh as one started on demand (its own process, no call made to it)."""

    def __init__(self, factory: ToolsFactory, total: int) -> None:
        self.factory = factory
        self.left = total
        self.spare: asyncio.Future[ToolProvider] | None = None

    async def take(self) -> ToolProvider:
        fut = self.spare or asyncio.ensure_future(self.factory())
        self.spare = None
        self.left -= 1
        if self.left > 0:
            self.spare = asyncio.ensure_future(self.factory())
        return await fut

    async def close(self) -> None:
        spare, self.spare = self.spare, None
        if spare is None:
            return
        try:
            tools = await spare
        except Exception:
            return
        await tools.close()


def default_fresh_tools(engine: Engine) -> ToolsFactory:
    """A new tool host like the engine's (same workspace, config, interpreter) for each task.

    When the engine's tools also serve MCP servers (a provider wrapping the tool host as
    `.host`, with `.serves(name)` for the tools it answers itself), the workspace tools get the
    fresh host and the MCP servers stay shared: their processes are the workspace's, started
    once (their own state is not reset between tasks)."""
    from codeact_lsp.tools.host import ToolHost

    base = engine.tools
    host = base if isinstance(base, ToolHost) else getattr(base, "host", None)
    if not isinstance(host, ToolHost):
        raise SuiteError(
            "isolated tasks need a fresh tool state for each task, which these tools cannot"
            " provide (they are not served by a tool host); pass fresh_tools=, or opt in to"
            ' shared state with isolation="shared"'
        )

    async def start() -> ToolProvider:
        fresh = await ToolHost.astart(host.workspace, host.config, python=host.python)
        return fresh if base is host else _BesideShared(base, fresh)

    return start


class _BesideShared:
    """A fresh tool host for the workspace's tools next to the engine's shared MCP tools.

    Everything a run asks of its tools besides the calls (the direct route, the tool modules'
    exception classes, python, problem...) is the fresh host's, as `CombinedTools` answers with
    its host. Closing it closes only the fresh host; a run's view (`for_run`, per-run MCP
    servers of its own) closes only those servers: the fresh host is the task's, closed by it."""

    def __init__(self, shared: Any, host: Any, *, owns_host: bool = True) -> None:
        self.shared = shared
        self.host = host
        self.owns_host = owns_host  # False: a run's view; the task closes the host

    def __getattr__(self, name: str) -> Any:
        if name in ("shared", "host", "owns_host"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.host, name)

    def for_run(self) -> _BesideShared | None:
        """One run's view with its per-run MCP servers, or None when every server is shared."""
        for_run = getattr(self.shared, "for_run", None)
        scoped = for_run() if callable(for_run) else None
        return None if scoped is None else _BesideShared(scoped, self.host, owns_host=False)

    @property
    def pid(self) -> int | None:
        return _pid(self.host)

    @property
    def direct_route(self) -> Any:
        """The fresh host serves its own tools' calls straight from the sandbox workers."""
        return getattr(self.host, "direct_route", None)

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        """The fresh host's exception classes, and the shared provider's others (MCP's)."""
        own = getattr(self.host, "exceptions", None)
        found = list(own) if isinstance(own, list) else []
        seen = {(e.get("module"), e.get("qualname", e.get("name"))) for e in found}
        more = getattr(self.shared, "exceptions", None)
        for e in more if isinstance(more, list) else []:
            if (e.get("module"), e.get("qualname", e.get("name"))) not in seen:
                found.append(e)
        return found

    def schemas(self) -> list[Any]:
        return list(self.shared.schemas())

    def serves(self, name: str) -> bool:
        return bool(self.shared.serves(name))

    def call_sync(
        self, name: str, args: list[Any], kwargs: dict[str, Any], timeout: float | None = None
    ) -> Any:
        if self.shared.serves(name):
            return self.shared.call_sync(name, args, kwargs, timeout)
        if timeout is None:
            return self.host.call_sync(name, args, kwargs)
        return self.host.call_sync(name, args, kwargs, timeout=timeout)

    def cancel(self, thread: int | None = None) -> None:
        for tools in (self.host, self.shared):
            cancel = getattr(tools, "cancel", None)
            if callable(cancel):
                cancel(thread)

    async def close(self) -> None:
        if self.owns_host:
            await self.host.close()
        else:  # a run's view: only its own per-run servers (the shared view leaves the rest)
            await self.shared.close()


async def _fresh_task(
    engine: Engine,
    task: SuiteTask,
    factory: ToolsFactory,
    on_start: Callable[[SuiteTask, RunHandle], None] | None,
) -> TaskResult:
    started = time.perf_counter()
    try:
        tools = await factory()
    except Exception as exc:
        return TaskResult(
            name=task.name,
            passed=False,
            status="error",
            message=f"could not start a fresh tool host for the task: {exc}",
            duration_s=time.perf_counter() - started,
        )
    pid = _pid(tools)
    try:
        result = await run_task(engine, task, on_start=on_start, tools=tools)
    finally:
        await tools.close()
    result.duration_s = time.perf_counter() - started
    result.isolation = "fresh"
    result.tool_host_pid = pid
    if result.run_id is not None:
        # its sandbox served tools that are gone now: a follow-up rebuilds from the record
        engine.evict(result.run_id, "a suite task's tool host ends with the task")
    return result


def _pid(tools: object) -> int | None:
    pid = getattr(tools, "pid", None)
    return pid if isinstance(pid, int) else None


async def run_task(
    engine: Engine,
    task: SuiteTask,
    *,
    on_start: Callable[[SuiteTask, RunHandle], None] | None = None,
    tools: ToolProvider | None = None,
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
        handle = await engine.start(request, tools=tools)
    except EngineError as exc:
        return TaskResult(
            name=task.name,
            passed=False,
            status="error",
            message=str(exc),
            duration_s=0.0,
            model=run_model(task.model, engine.config.model),
        )
    if on_start is not None:
        on_start(task, handle)
    traj = await handle.wait()
    store = engine.store
    result = from_trajectory(
        traj, name=task.name, path=store.path(traj.id) if store is not None else None
    )
    result.duration_s = time.perf_counter() - started
    if traj.status != "finished" or traj.outputs is None:
        result.passed = False
        return _failed(result, traj, traj.error or f"run ended {traj.status}")
    result.passed, message = judge(task, result.answer, traj.outputs)
    return result if result.passed else _failed(result, traj, message)


def _failed(result: TaskResult, traj: Trajectory, consequence: str) -> TaskResult:
    """The message leads with what went wrong first, then what it led to."""
    result.consequence = consequence
    result.root_error = root_error(traj)
    if result.root_error is None:
        result.message = consequence
    else:
        result.message = f"{result.root_error.text()}; then: {consequence}"
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


def is_matrix(results: Sequence[TaskResult]) -> bool:
    """Did these runs vary the model or repeat a task (then a run is named `task[rN]`)?"""
    return len({r.model for r in results}) > 1 or any(r.repeat > 1 for r in results)


def junit_class(model: str) -> str:
    """A model's name as a JUnit classname: CI UIs split a classname at its dots into packages
    (`gpt-4.1` would become class `1` in package `gpt-4`), so dots become underscores."""
    return model.replace(".", "_")


def junit_xml(results: Sequence[TaskResult], suite_name: str = "codeact") -> str:
    """One testcase per run. In a matrix, the classname is the model (`junit_class`) and the
    name `task[rN]`, so CI UIs group the runs by model and a task's repeats sit side by side."""
    matrix = is_matrix(results)
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
            root,
            "testcase",
            classname=junit_class(r.model or suite_name) if matrix else suite_name,
            name=r.label if matrix else r.name,
            time=f"{r.duration_s:.3f}",
        )
        if r.status == "error":
            ET.SubElement(case, "error", message=r.message).text = r.message
        elif not r.passed:
            detail = [r.message]
            if r.root_error is not None:
                detail += [f"root error: {r.root_error.text()}", f"consequence: {r.consequence}"]
            detail.append(f"run: {r.run_id} ({r.status}, {r.steps} steps)")
            ET.SubElement(case, "failure", message=r.message).text = "\n".join(detail)
        if r.scripted:
            ET.SubElement(case, "system-out").text = "model: scripted stand-in (not a real model)"
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
