"""The accepted program over many real runs: each one is run by the engine (real sandbox, real tool
host, scripted replies), its program is checked for shape, then imported and called in a fresh
interpreter against the real tools, where it must return what the run answered."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import EXAMPLE, Script, code

from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.engine.program import as_script, build_program, parse_program
from codeact_lsp.engine.program.placement import place
from codeact_lsp.trajectory import Step, Trajectory

QUOTE_TASK = "What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?"
QUOTE_REPLIES = json.loads((EXAMPLE / "replies" / "quote.json").read_text())

STATS = '''"""A second tool module: one async tool, one sync tool."""

import asyncio


async def rating(sku: str) -> int:
    """Average rating of `sku`, 1-5."""
    await asyncio.sleep(0)
    return {"SKU-42": 4, "SKU-7": 2}.get(sku, 0)


def mean(values: list[float]) -> float:
    """Arithmetic mean."""
    return sum(values) / len(values)
'''

EXISTING = '''"""The shop's own code."""

from __future__ import annotations

import json
from tools import price_of


def main() -> None:
    print(json.dumps(price_of("SKU-42")))
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws") / "shop"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    (ws / "stats.py").write_text(STATS)
    pyproject = (ws / "pyproject.toml").read_text()
    (ws / "pyproject.toml").write_text(
        pyproject.replace('tools = ["tools.py"]', 'tools = ["tools.py", "stats.py"]')
    )
    return ws


@dataclass
class Case:
    id: str
    replies: list[str]
    task: str = "compute it"
    signature: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    existing: str | None = None  # a file the program is merged into (at its end)
    async_: bool = False
    absent: tuple[str, ...] = ()  # text the program must not contain (exploration, failures)
    present: tuple[str, ...] = ()


CASES = [
    Case(
        "quickstart",
        QUOTE_REPLIES,
        task=QUOTE_TASK,
        async_=True,
        absent=("print(", "units = 3\n    print"),
        present=('stock_level("SKU-42")', "await shipping_quote(", "return total"),
    ),
    Case(
        "multi-output",
        [
            code("item = price_of(sku)\nprint(item)\nitem"),
            code(
                "level = stock_level(sku)\n"
                "goods = convert_currency(item['usd'] * units, 'USD', 'EUR')\n"
                "final_answer(total_eur=goods, in_stock=level >= units)"
            ),
        ],
        task="Price of some units of a SKU, and whether they are in stock",
        signature="sku: str, units: int -> total_eur: float, in_stock: bool",
        inputs={"sku": "SKU-42", "units": 3},
        present=("(NamedTuple)", "sku: str, units: int", "total_eur: float", "in_stock: bool"),
        absent=("print(",),
    ),
    Case(
        "async-tools",
        [
            code(
                "quotes = [shipping_quote(2.0, c) for c in ['DE', 'FR']]\n"
                "stars = sum(rating(s) for s in ('SKU-42', 'SKU-7'))\n"
                "print(quotes, stars)"
            ),
            code("final_answer(answer=round(min(quotes) + stars, 2))"),
        ],
        async_=True,
        present=("await shipping_quote(", "await rating(", "from stats import rating"),
        absent=("print(",),
    ),
    Case(
        "failed-then-fixed",
        [
            code("units = 2\nitem = price_of('SKU-999')"),
            code("tmp = 5\nitem = price_of('SKU-42')\ntmp = 6\nprint(tmp)"),
            code("final_answer(item['usd'] * units)"),
        ],
        present=("units = 2",),
        absent=("SKU-999", "tmp"),
    ),
    Case(
        "answer-from-tool",
        [code("print('checking')\nfinal_answer(stock_level('SKU-42'))")],
        present=('return stock_level("SKU-42")', "-> int"),
        absent=("print(",),
    ),
    Case(
        "existing-imports",
        QUOTE_REPLIES,
        task=QUOTE_TASK,
        existing=EXISTING,
        async_=True,
    ),
    Case(
        "step-imports-and-helpers",
        [
            code(
                "import math\nimport os\n\ndef eur(usd):\n    return convert_currency(usd, 'USD', 'EUR')\n"
            ),
            code(
                "# round down to whole euros\nfinal_answer(math.floor(eur(price_of('SKU-42')['usd'])))"
            ),
        ],
        signature="-> euros: int",
        present=("import math\n", "# round down to whole euros", "def eur(usd):"),
        absent=("import os",),
    ),
]


async def _run(engine: Engine, script: Script, case: Case) -> Trajectory:
    request = RunRequest(
        task=case.task,
        model=script(case.replies),
        inputs=case.inputs,
        **({"signature": case.signature} if case.signature else {}),
    )
    handle = await engine.start(request)
    traj = await handle.wait()
    assert traj.status == "finished", (traj.status, traj.error, [s.error for s in traj.steps])
    return traj


def _call(workspace: Path, module: str, function: str, inputs: dict[str, Any]) -> Any:
    """Import the module and call the function in a fresh interpreter, against the real tools."""
    probe = (
        "import asyncio, importlib, inspect, json, sys\n"
        f"fn = getattr(importlib.import_module({module!r}), {function!r})\n"
        "out = fn(**json.loads(sys.argv[1]))\n"
        "out = asyncio.run(out) if inspect.iscoroutine(out) else out\n"
        "print(json.dumps(out._asdict() if hasattr(out, '_asdict') else out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(inputs)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _top_imports_first(tree: ast.Module) -> list[str]:
    """The names the module imports, asserting imports come before everything else."""
    seen_other = False
    names: list[str] = []
    for i, stmt in enumerate(tree.body):
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            assert not seen_other, f"import after code: {ast.unparse(stmt)}"
            names += [a.asname or a.name for a in stmt.names]
        elif not (i == 0 and isinstance(stmt, ast.Expr)):
            seen_other = True
    for node in ast.walk(tree):
        if node not in tree.body and isinstance(node, ast.Import | ast.ImportFrom):
            raise AssertionError(f"nested import left in the function: {ast.unparse(node)}")
    return names


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_accepted_program_shape_and_answer(
    engine: Engine, script: Script, workspace: Path, case: Case
) -> None:
    traj = await _run(engine, script, case)
    program = traj.program or ""
    assert program, "a finished run has a program"

    tree = ast.parse(program)
    assert "final_answer" not in program and "asyncio.run" not in program
    for text in case.present:
        assert text in program, (text, program)
    for text in case.absent:
        assert text not in program, (text, program)

    funcs = [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    func = funcs[-1]
    assert isinstance(func, ast.AsyncFunctionDef) == case.async_, program
    assert ast.get_docstring(func) == case.task.splitlines()[0]
    assert func.returns is not None
    # no statement of the program runs on import: only imports and definitions at top level
    assert all(
        isinstance(
            s, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        )
        for s in tree.body
    ), program
    names = _top_imports_first(tree)
    assert len(names) == len(set(names)), names
    used_tools = {c.name for s in traj.steps if s.status == "ok" for c in s.tool_calls} - {
        "final_answer"
    }
    assert used_tools <= set(names)

    module = f"accepted_{case.id.replace('-', '_')}"
    if case.existing is not None:
        placed = place(case.existing, program)
        text = placed.text_after
        merged = ast.parse(text)
        names = _top_imports_first(merged)
        assert len(names) == len(set(names)), text
        assert text.count("from tools import") == 1, text
        assert text.startswith(
            '"""The shop\'s own code."""\n\nfrom __future__ import annotations\n'
        )
        assert "def main() -> None:" in text
    else:
        text = program
    (workspace / f"{module}.py").write_text(text)

    outputs = traj.outputs or {}
    expected = outputs if len(outputs) > 1 else next(iter(outputs.values()))
    assert _call(workspace, module, func.name, case.inputs) == expected


async def test_script_form_prints_the_answer(
    engine: Engine, script: Script, workspace: Path
) -> None:
    traj = await _run(engine, script, CASES[0])
    text = as_script(traj.program or "", traj.inputs)
    assert 'if __name__ == "__main__":' in text and "asyncio.run(" in text.split("__main__")[1]
    assert text.index("import asyncio") < text.index("from tools import")
    (workspace / "quote_script.py").write_text(text)
    proc = subprocess.run(
        [sys.executable, "quote_script.py"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "76.9"


@pytest.mark.parametrize(
    ("task", "name", "expected"),
    [
        (QUOTE_TASK, None, "cost_eur_buy_units"),
        ("Reserve two units!", None, "reserve_two_units"),
        ("???", None, "run_task"),
        ("x", "quote", "quote"),
        ("x", "Quote for Germany", "quote_germany"),
        ("list", None, "list_"),
    ],
)
def test_function_name_from_task_or_setting(task: str, name: str | None, expected: str) -> None:
    steps = [Step(index=1, code="final_answer(1)", status="ok", final=True)]
    program = build_program(steps, [], task=task, name=name, outputs={"answer": 1})
    assert parse_program(program).name == expected


def test_only_failed_steps_give_no_program() -> None:
    steps = [Step(index=1, code="x = 1/0", status="error")]
    assert build_program(steps, []) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a name joins the file's own line, nothing else moves
        (
            "import math\nfrom tools import a\n\nx = 1\n",
            "import math\nfrom tools import a, b\n\nx = 1\n",
        ),
        # a local import after the file's standard-library group: a group of its own
        ("import math\n\n# x\n", "import math\n\nfrom tools import b\n\n# x\n"),
        # after the docstring, one blank line between
        ('"""D."""\n\nx = 1\n', '"""D."""\n\nfrom tools import b\n\nx = 1\n'),
        # below a header comment, `from __future__` stays first
        ("# header\n", "# header\n\nfrom tools import b\n"),
        (
            "from __future__ import annotations\n",
            "from __future__ import annotations\n\nfrom tools import b\n",
        ),
        # already imported (or defined): nothing to do
        ("from tools import b as b\n", "from tools import b as b\n"),
        ("def b():\n    pass\n", "def b():\n    pass\n"),
    ],
)
def test_imports_merge_into_the_file(text: str, expected: str) -> None:
    from codeact_lsp.engine.program.imports import Need, apply, merge

    edits, _ = merge(text, [Need("tools", "b")])
    assert apply(text, edits) == expected


def test_typing_names_the_session_bound_are_imported() -> None:
    """Steps may use the session's pre-bound typing names unimported; the program, run outside
    the session, imports the ones it still reads (and no others)."""
    steps = [
        Step(
            index=1,
            code="def pick(x: Optional[int]) -> Union[int, str]:\n    return x or 'none'\n"
            "final_answer(pick(None))",
            status="ok",
            final=True,
        )
    ]
    text = build_program(steps, [], task="pick one", outputs={"answer": "none"})
    assert "from typing import Optional, Union\n" in text, text
    assert "Literal" not in text and "Any" not in text.split("def pick")[0]
    namespace: dict[str, Any] = {}
    exec(compile(text, "<program>", "exec"), namespace)
    assert namespace[parse_program(text).name]() == "none"
