"""A suite's matrix on a Ray cluster (`codeact test --ray [ADDRESS]`, `suite.executor = "ray"`).

When 82 tasks x 5 models x 3 repeats outgrow one machine, Ray places the runs; nothing here
schedules. Each run (`SuiteRun`) is one Ray task that builds, on whichever node Ray picks, what a
local fresh run has: a tool host process of its own, an engine, its sandbox workers; it returns
the `TaskResult` and the run file, which the driver writes to its own `.codeact/runs/` as each
run finishes (the trajectories stream back; nothing stays on the node).

- The workspace reaches the nodes as the tasks' runtime environment (`working_dir`: the
  workspace, minus `.codeact`, `.git`, virtualenvs and `node_modules`), merged with
  `suite.ray.runtime_env` (e.g. `pip`). A node runs the task in that directory.
- Concurrency per node: each run asks for one `codeact_slot` resource when the cluster has that
  resource (a node offers N with `ray start --resources '{"codeact_slot": N}'`; the local
  instance started without an address offers `suite.ray.node_jobs`, else `suite.jobs`), else
  for one CPU.
- Model rate limits: `suite.model_jobs` caps one model's runs in flight; the driver submits a
  run only when its model has room (the cap holds cluster-wide, since one driver submits all).
- A worker or node that dies mid-run: Ray reports it for that task; the run is submitted once
  more and its result says `attempts = 2` and why, or it is an `error` result — never lost.
- Cancel (Ctrl-C): every run still in flight is cancelled (`ray.cancel`), and a local instance
  this module started is stopped, with its workers and theirs.

Ray is an optional extra (`pip install codeact-lsp[ray]`); it is imported only here, only when
a suite is run this way.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from codeact_lsp.config import CodeActConfig
from codeact_lsp.engine.approval import Decision
from codeact_lsp.engine.suite import (
    SuiteError,
    SuiteRun,
    TaskResult,
    load_suite,
    plan_runs,
    run_model,
    run_task,
    select_tasks,
)
from codeact_lsp.tools.models import ToolProvider

SLOT = "codeact_slot"
# never shipped to a node: run files, VCS, environments the node has (or builds) its own of,
# and secrets (.env files: a node gets its API keys from its own environment)
EXCLUDES = [
    ".codeact", ".git", ".venv", "venv", "node_modules", "__pycache__", ".env", ".env.*",
]  # fmt: skip
StartTools = Callable[[Path, CodeActConfig], Awaitable[ToolProvider]]


class RayUnavailable(SuiteError):
    """Ray is not installed (the `[ray]` extra) or the cluster cannot be reached."""


async def _host_tools(workspace: Path, config: CodeActConfig) -> ToolProvider:
    """The default on a node: the workspace's tool host (no MCP servers)."""
    from codeact_lsp.tools.host import ToolHost

    return await ToolHost.astart(workspace, config)


def _node_run(
    run_json: str, config_json: str, start_tools: StartTools | None, approve: bool
) -> tuple[str, str | None]:
    """What a Ray task runs on its node, in the shipped workspace (its working directory)."""
    return asyncio.run(_node_run_async(run_json, config_json, start_tools, approve))


async def _node_run_async(
    run_json: str, config_json: str, start_tools: StartTools | None, approve: bool
) -> tuple[str, str | None]:
    import time

    from codeact_lsp.engine.engine import Engine

    started = time.perf_counter()
    run = SuiteRun.model_validate_json(run_json)
    config = CodeActConfig.model_validate_json(config_json)
    workspace = Path.cwd()

    async def approver(handle: Any, step: Any, confirm: list[str]) -> Decision:
        if approve:
            return Decision(action="approve")
        return Decision(
            action="reject",
            feedback="Not approved: this step needs approval and nobody can approve it on a"
            " cluster node (run the suite with --yes to approve every step).",
        )

    tools = await (start_tools or _host_tools)(workspace, config)
    pid = getattr(tools, "pid", None)  # while it runs (a closed host has none)
    with tempfile.TemporaryDirectory(prefix="codeact-ray-runs-") as runs:
        engine = Engine(config, tools, workspace=workspace, runs_dir=Path(runs), approver=approver)
        try:
            result = await run_task(engine, run.pinned(), tools=tools)
            await engine.flushed()
        finally:
            await engine.close()
            await tools.close()
        record = Path(runs) / f"{result.run_id}.json"
        text = record.read_text(encoding="utf-8") if result.run_id and record.is_file() else None
    result.duration_s = time.perf_counter() - started  # like a local run: its tool host's start too
    result.repeat = run.repeat
    result.model = run.model or result.model
    result.isolation = "fresh"
    result.tool_host_pid = pid if isinstance(pid, int) else None
    import ray

    # the host name, and which Ray node on it (several raylets can share a machine)
    result.node = f"{os.uname().nodename}/{ray.get_runtime_context().get_node_id()[:8]}"
    return result.model_dump_json(), text


async def run_suite_ray(
    config: CodeActConfig,
    workspace: Path,
    file: Path,
    names: Sequence[str] | None = None,
    *,
    models: Sequence[str] | None = None,
    repeat: int | None = None,
    address: str | None = None,
    runs_dir: Path | None = None,
    start_tools: StartTools | None = None,
    approve: bool = False,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """The suite's matrix as Ray tasks; results in the order `run_suite` gives them.

    `address` (default: config `suite.ray.address`): a running cluster, joined as a job of its
    own; None starts a local instance for this suite and stops it after. `start_tools(workspace, config)` builds a run's tools on its node (it must be
    importable there; default: the workspace's tool host). `runs_dir` (default: the workspace's
    `.codeact/runs`) receives each run file as its run finishes."""
    settings = config.suite
    if settings.isolation == "shared":
        raise SuiteError(
            'isolation = "shared" cannot run on Ray: its tasks build on one tool host, one'
            " after another, and Ray runs each on a node of its own; run it locally"
        )
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "running a suite on Ray needs the ray extra: pip install 'codeact-lsp[ray]'"
        ) from None
    runs = plan_runs(
        select_tasks(load_suite(file), names, file),
        models or settings.models,
        repeat or settings.repeat,
    )
    target = runs_dir or workspace / ".codeact" / "runs"
    if ray.is_initialized():
        # the workspace is shipped as the job's runtime environment, fixed when a driver connects
        raise SuiteError(
            "Ray is already initialised in this process: run_suite_ray connects itself"
        )
    where = address or settings.ray.address
    env = runtime_env(workspace, settings.ray.runtime_env)
    # ray.init, cluster_resources, cancel and shutdown block (seconds, for a local instance):
    # off the event loop, which may be the language server's
    try:
        await asyncio.to_thread(_connect, ray, where, env, settings.ray.node_jobs or settings.jobs)
    except Exception as exc:  # ConnectionError, a bad address, a cluster of another version
        raise RayUnavailable(f"cannot start or reach Ray ({where or 'local'}): {exc}") from None
    try:
        options: dict[str, Any] = {"max_retries": 0}  # a lost run is retried once, here, visibly
        if SLOT in await asyncio.to_thread(ray.cluster_resources):
            options.update(num_cpus=0, resources={SLOT: 1})
        else:
            options.update(num_cpus=1)
        remote = ray.remote(_node_run).options(**options)
        return await _drive(ray, remote, runs, config, start_tools, approve, target, on_result)
    finally:
        # a local instance stops with it; a cluster stays, this job ends. Shielded: a cancelled
        # suite still waits for its instance to be gone
        await asyncio.shield(asyncio.to_thread(ray.shutdown))


def runtime_env(workspace: Path, user: dict[str, Any]) -> dict[str, Any]:
    """The tasks' runtime environment: the workspace as `working_dir` minus `EXCLUDES`, plus
    the user's `suite.ray.runtime_env`; its `excludes` add to the defaults (never ship `.env`)."""
    extra = user.get("excludes") or []
    excludes = list(dict.fromkeys([*EXCLUDES, *(extra if isinstance(extra, list) else [extra])]))
    return {"working_dir": str(workspace), **user, "excludes": excludes}


def _connect(ray: Any, where: str | None, env: dict[str, Any], slots: int) -> None:
    quiet = {"log_to_driver": False, "configure_logging": False}
    if where:
        ray.init(address=where, runtime_env=env, **quiet)
        return
    # a suite's private instance reports nothing to Ray's usage statistics (unless the user
    # opted in): a test run should not phone home. Set only while it starts (its processes
    # inherit it), so the server process keeps its own environment
    unset = "RAY_USAGE_STATS_ENABLED" not in os.environ
    if unset:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        ray.init(resources={SLOT: slots}, runtime_env=env, include_dashboard=False, **quiet)
    finally:
        if unset:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)


async def _drive(
    ray: Any,
    remote: Any,
    runs: list[SuiteRun],
    config: CodeActConfig,
    start_tools: StartTools | None,
    approve: bool,
    target: Path,
    on_result: Callable[[TaskResult], None] | None,
) -> list[TaskResult]:
    """Submit runs as their model's cap allows, collect them as they finish, retry a lost one
    once; cancel what is in flight when cancelled."""
    caps = config.suite.model_jobs
    config_json = config.model_dump_json()
    waiting = deque(enumerate(runs))
    in_flight: dict[asyncio.Future[Any], tuple[int, int, Any]] = {}  # -> index, attempt, ref
    busy: Counter[str] = Counter()
    results: list[TaskResult | None] = [None] * len(runs)
    target.mkdir(parents=True, exist_ok=True)

    def key(run: SuiteRun) -> str:  # the model's name on the driver ($CODEACT_MODEL too)
        return run_model(run.model, config.model)

    def submit(index: int, attempt: int) -> None:
        run = runs[index]
        # the model as the driver resolves it (its $CODEACT_MODEL too): the node runs that one
        shipped = run.model_copy(update={"model": key(run) or None})
        ref = remote.remote(shipped.model_dump_json(), config_json, start_tools, approve)
        in_flight[asyncio.wrap_future(ref.future())] = (index, attempt, ref)
        busy[key(run)] += 1

    def fill() -> None:
        held: list[tuple[int, SuiteRun]] = []
        while waiting:
            index, run = waiting.popleft()
            cap = caps.get(key(run))
            if cap is not None and busy[key(run)] >= cap:
                held.append((index, run))
                continue
            submit(index, 1)
        waiting.extend(held)

    try:
        fill()
        while in_flight:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                index, attempt, _ref = in_flight.pop(fut)
                run = runs[index]
                busy[key(run)] -= 1
                result = _finish(fut, run, attempt, target, key(run))
                if result is None:  # lost with its worker or node: once more
                    submit(index, attempt + 1)
                    continue
                results[index] = result
                if on_result is not None:
                    on_result(result)
            fill()
    except BaseException:
        refs = [ref for _index, _attempt, ref in in_flight.values()]
        await asyncio.shield(asyncio.to_thread(_cancel, ray, refs))
        raise
    return [r for r in results if r is not None]


def _cancel(ray: Any, refs: list[Any]) -> None:
    for ref in refs:
        ray.cancel(ref, force=True)


def _finish(
    fut: asyncio.Future[Any], run: SuiteRun, attempt: int, target: Path, model: str
) -> TaskResult | None:
    """The run's result with its run file written on the driver; None to retry it."""
    from ray import exceptions as rx

    lost = (rx.WorkerCrashedError, rx.NodeDiedError, rx.OwnerDiedError, rx.LocalRayletDiedError)
    try:
        result_json, record = fut.result()
    except lost as exc:
        if attempt == 1:
            return None
        return _error(
            run, model, attempt, f"lost twice with its Ray worker or node: {_first_line(exc)}"
        )
    except rx.RayTaskError as exc:  # an exception inside the task: a bug, not a lost node
        return _error(run, model, attempt, f"the run failed on its node: {_first_line(exc)}")
    except rx.RayError as exc:
        return _error(run, model, attempt, f"Ray could not run it: {_first_line(exc)}")
    result = TaskResult.model_validate_json(result_json)
    result.attempts = attempt
    if attempt > 1:
        result.message = (
            f"(retried: the first attempt was lost with its Ray worker) {result.message}"
        ).rstrip()
    result.trajectory = None  # the node's copy is gone with its temporary directory
    if record is not None and result.run_id:
        path = target / f"{result.run_id}.json"
        path.write_text(record, encoding="utf-8")
        result.trajectory = str(path)
    return result


def _error(run: SuiteRun, model: str, attempt: int, message: str) -> TaskResult:
    return TaskResult(
        name=run.task.name,
        passed=False,
        status="error",
        message=message,
        model=model,
        repeat=run.repeat,
        attempts=attempt,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
