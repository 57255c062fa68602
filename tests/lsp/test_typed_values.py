"""One table of values crossing the tool boundary, driven through the CLI, the language server and
the Python API: every front end must show the snippet the same typed values (issue 11).

Each row is an expression evaluated in a generated step against the tools of
`tests/fixtures/typed_ws` (real tool host for the CLI and the server, in-process callables for the
API) and the repr the snippet must see. Rows cover tool -> snippet (results), snippet -> tool
(arguments, rebuilt in the tool's process), tool exceptions caught by class, builtins exported as
tools used with a `key=` lambda, and functions refused as arguments with a clear error.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codeact_lsp.api import CodeAct
from codeact_lsp.trajectory import Trajectory

from .conftest import code_reply, start_client, stop_client

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "typed_ws"
TASK = "show the values"

ROWS: list[tuple[str, str]] = [
    # tool -> snippet
    ("sample('tuple')", "(1, 'a', (2.5, None))"),
    ("sample('nan')", "nan"),
    ("sample('inf')", "(inf, -inf)"),
    ("sample('intkeys')", "{1: 'one', 2: 'two'}"),
    ("sample('tuplekeys')", "{('E', 'A'): 450}"),
    ("sample('set')", "{1, 2, 3}"),
    ("sample('frozenset')", "frozenset({'x'})"),
    ("sample('bytes')", "b'\\x00\\xffok'"),
    ("sample('decimal')", "Decimal('19.99')"),
    ("sample('complex')", "(1-2j)"),
    (
        "sample('datetime')",
        "datetime.datetime(2024, 5, 17, 9, 30, tzinfo=datetime.timezone.utc)",
    ),
    ("sample('date')", "datetime.date(2024, 5, 17)"),
    ("sample('time')", "datetime.time(9, 30, 15)"),
    ("sample('timedelta')", "datetime.timedelta(days=2, seconds=10800)"),
    ("sample('npint')", "np.int64(7)"),
    ("sample('npint') + 1", "np.int64(8)"),
    (
        "(sample('nparray').tolist(), str(sample('nparray').dtype))",
        "([[0, 1, 2], [3, 4, 5]], 'int32')",
    ),
    ("sample('npfloat')", "np.float32(0.5)"),
    ("sample('flight')", "Flight(code='LH1', price=420.0, stops=1)"),
    ("sample('flight').price", "420.0"),
    ("[f.code for f in flights()]", "['LH1', 'AF2', 'BA3']"),
    ("sample('opaque')", "<unserialisable typed_tools._Opaque: <a socket, say>>"),
    # snippet -> tool: what the tool's own process received
    ("describe((1, 2))", "'tuple (1, 2)'"),
    ("describe({1, 2})", "'set {1, 2}'"),
    ("describe(frozenset({3}))", "'frozenset frozenset({3})'"),
    ("describe(b'ab')", "\"bytes b'ab'\""),
    ("describe({1: 'a', (2, 3): 'b'})", "\"dict {1: 'a', (2, 3): 'b'}\""),
    ("describe(float('nan'))", "'float nan'"),
    ("describe(decimal.Decimal('1.50'))", "\"Decimal Decimal('1.50')\""),
    ("describe(datetime.date(2024, 1, 2))", "'date datetime.date(2024, 1, 2)'"),
    ("describe(3 + 4j)", "'complex (3+4j)'"),
    ("describe(sample('flight'))", "\"Flight Flight(code='LH1', price=420.0, stops=1)\""),
    ("describe(sample('tuple'))", "\"tuple (1, 'a', (2.5, None))\""),
    # tool exceptions, caught by the tool's class or its builtin base
    ("catch(lambda: withdraw(500))", "'InsufficientFunds: balance 100 < 500.0'"),
    ("catch_value(lambda: withdraw(500))", "'ValueError caught InsufficientFunds'"),
    ("withdraw(40)", "60.0"),
    # builtins exported as tools run in the sandbox: natural code with callables works
    ("min(flights(), key=lambda f: f.price).code", "'AF2'"),
    ("sorted(flights(), key=lambda f: -f.stops)[0].code", "'BA3'"),
    ("max([3, 9, 4], key=lambda x: -x)", "3"),
    # a function cannot cross: the model is told what to do instead
    ("err(lambda: describe(lambda x: x))", '"TypeError: describe(): a function cannot be passed'),
]

PRELUDE = """
import datetime, decimal

def catch(fn):
    try:
        return repr(fn())
    except InsufficientFunds as exc:
        return f"InsufficientFunds: {exc}"

def catch_value(fn):
    try:
        return repr(fn())
    except ValueError as exc:
        return f"ValueError caught {type(exc).__name__}"

def err(fn):
    try:
        return repr(fn())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"

def show(i, fn):
    try:
        text = repr(fn())
    except Exception as exc:
        text = f"raised {type(exc).__name__}: {exc}"
    print(f"ROW {i} {text}")
"""


def _snippet() -> str:
    rows = "\n".join(f"show({i}, lambda: {expr})" for i, (expr, _) in enumerate(ROWS))
    return PRELUDE + "\n" + rows + "\nfinal_answer('done')\n"


def _workspace(tmp: Path) -> Path:
    ws = tmp / "typed_ws"
    shutil.copytree(FIXTURE, ws, ignore=shutil.ignore_patterns("__pycache__", ".codeact"))
    (ws / "replies").mkdir()
    (ws / "replies" / "typed.json").write_text(json.dumps([code_reply(_snippet())]))
    return ws


def _check(stdout: str, front: str) -> None:
    seen: dict[int, str] = {}
    for line in stdout.splitlines():
        if line.startswith("ROW "):
            index, _, text = line[4:].partition(" ")
            seen[int(index)] = text
    wrong = []
    for i, (expr, expected) in enumerate(ROWS):
        got = seen.get(i, "<missing>")
        if not (
            got == expected or (expected.endswith("cannot be passed") and got.startswith(expected))
        ):
            wrong.append(f"  {expr}: expected {expected}, got {got}")
    assert not wrong, f"{front}: values changed across the boundary:\n" + "\n".join(wrong)


def _check_record(traj: Trajectory) -> None:
    """The trajectory shows readable JSON and keeps the exact value for replays; it round-trips."""
    assert Trajectory.model_validate_json(traj.model_dump_json()) == traj
    calls = [c for c in traj.steps[0].tool_calls if c.name == "sample"]
    first = calls[0]
    assert first.args == {"kind": "tuple"}
    assert first.result == [1, "a", [2.5, None]]
    assert first.wire is not None and first.wire["$"] == "tuple"
    raised = next(c for c in traj.steps[0].tool_calls if c.name == "withdraw" and c.error)
    assert raised.error == "InsufficientFunds: balance 100 < 500.0"
    detail = raised.error_detail
    assert detail is not None and detail.file is not None and detail.file.endswith("typed_tools.py")
    assert detail.line is not None and detail.exception is not None
    assert detail.exception["bases"][0]["name"] == "ValueError"
    assert not any(c.name in ("min", "sorted", "max") for c in traj.steps[0].tool_calls)


def test_cli(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "codeact_lsp.cli",
            "run",
            TASK,
            "-w",
            str(ws),
            "-m",
            "scripted:replies/typed.json",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ws,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    traj = Trajectory.model_validate_json(out.stdout)
    assert traj.status == "finished", traj.error
    _check(traj.steps[0].stdout, "CLI")
    _check_record(traj)


def test_python_api(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    spec = importlib.util.spec_from_file_location("typed_tools", ws / "typed_tools.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["typed_tools"] = module
    try:
        spec.loader.exec_module(module)
        tools: dict[str, Any] = {
            name: getattr(module, name, None) or getattr(builtins, name) for name in module.__all__
        }
        tools = {k: v for k, v in tools.items() if not isinstance(v, type)}
        with CodeAct(
            "task -> answer",
            tools=tools,
            model=f"scripted:{ws / 'replies' / 'typed.json'}",
            runs_dir=tmp_path / "runs",
        ) as act:
            result = act(task=TASK)
        assert result.ok, result.error
        _check(result.steps[0].stdout, "Python API")
        _check_record(result.trajectory)
    finally:
        sys.modules.pop("typed_tools", None)


@pytest.mark.asyncio
async def test_language_server(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    client = await start_client(ws)
    try:
        started = await client.command(
            "codeact.run", {"task": TASK, "model": "scripted:replies/typed.json"}
        )
        run = await client.run_until(started["runId"], {"finished"})
        traj = Trajectory.model_validate(run)
        _check(traj.steps[0].stdout, "language server")
        _check_record(traj)
        await client.shutdown_session()
    finally:
        await stop_client(client)
