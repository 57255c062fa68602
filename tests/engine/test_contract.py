"""The session's contract holds every step: a step that redefines the tools or final_answer cannot
disable them, is told so, and copying the prompt's stubs into a step is valid Python there."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
from engine_helpers import Script, code

from codeact_lsp.config import CodeActConfig
from codeact_lsp.engine import Engine, RunRequest
from codeact_lsp.engine.contract import redefined
from codeact_lsp.engine.prompt import build_messages, observation, session_valid
from codeact_lsp.engine.session import Session
from codeact_lsp.engine.signature import Signature
from codeact_lsp.tools import ToolHost
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import Trajectory

REAL = Path(__file__).parents[1] / "fixtures" / "real_replies" / "replies.json"
TOOLS = {"stock_level", "price_of", "convert_currency", "shipping_quote", "reserve", "final_answer"}


async def _wait(handle: object) -> Trajectory:
    return await handle.wait()  # type: ignore[attr-defined,no-any-return]


def _real(name: str) -> str:
    return next(c["reply"] for c in json.loads(REAL.read_text()) if c["name"] == name)


async def test_echoed_stubs_do_not_shadow_the_tools(engine: Engine, script: Script) -> None:
    """SmolLM2's real reply redefines every tool as a no-op and final_answer with `Any`: the step
    is valid (no NameError), the model is told, and the next step reaches the real tools."""
    model = script(
        [
            _real("stub-echo-labelled"),
            code("n = stock_level('SKU-42')\nprint(n)\nfinal_answer(n)"),
        ]
    )
    traj = await _wait(await engine.start(RunRequest(task="units of SKU-42?", model=model)))
    first, second = traj.steps
    assert first.status == "ok", first.error
    assert redefined(first.code, TOOLS) == sorted(TOOLS)
    text = observation(first, TOOLS)
    assert "redefined" in text and "final_answer" in text and "do not define" in text
    assert traj.status == "finished", traj.error
    assert [c.name for c in second.tool_calls][:1] == ["stock_level"]
    assert traj.outputs == {"answer": second.tool_calls[0].result}
    assert isinstance(traj.outputs["answer"], int)


async def test_a_redefined_final_answer_is_restored_next_step(
    engine: Engine, script: Script
) -> None:
    model = script(
        [
            code("def final_answer(*a, **k):\n    print('fake', a)\nfinal_answer(1)"),
            code("final_answer(2)"),
        ]
    )
    traj = await _wait(await engine.start(RunRequest(task="t", model=model)))
    assert traj.steps[0].stdout == "fake (1,)\n" and not traj.steps[0].final
    assert traj.status == "finished" and traj.outputs == {"answer": 2}


@pytest.mark.parametrize(
    ("snippet", "names"),
    [
        ("def stock_level(sku): return 0", ["stock_level"]),
        ("stock_level = lambda s: 0", ["stock_level"]),
        ("from tools import stock_level, price_of as p", ["stock_level"]),
        ("import final_answer", ["final_answer"]),
        ("for reserve in range(3):\n    pass", ["reserve"]),
        ("if True:\n    class price_of: pass", ["price_of"]),
        ("try:\n    x = 1\nexcept Exception as final_answer:\n    pass", ["final_answer"]),
        ("def f():\n    global reserve\n    reserve = 1", ["reserve"]),
        ("(stock_level := 3)", ["stock_level"]),
        ("def f():\n    stock_level = 1  # local: harmless", []),
        ("print(stock_level('x'))", []),
        ("def broken(:", []),
    ],
)
def test_redefinition_is_found_statically(snippet: str, names: list[str]) -> None:
    assert redefined(snippet, TOOLS) == names


def _schema(name: str, signature: str) -> ToolSchema:
    return ToolSchema(name=name, signature=signature, doc="d", parameters={}, file="t.py", line=1)


SIGNATURES = [
    "def search(query: str, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]",
    "def pick(items: Sequence[Item], key: Callable[[Item], float]) -> Optional[Item]",
    "def when(day: datetime.date, tz: str = DEFAULT_TZ, *, strict: bool = True) -> 'Report'",
    "def odd(*args: Any, **kwargs: Literal['a', 'b']) -> Union[int, str]",
]


async def test_prompt_stubs_are_valid_in_the_session_as_written(
    host: ToolHost, config: CodeActConfig
) -> None:
    """Every stub the system prompt shows (tool stubs with typing names, unknown classes and
    non-literal defaults, and final_answer's `Any`) runs in a real session without an error."""
    schemas = [_schema(s.split("(")[0][4:], s) for s in SIGNATURES]
    system = build_messages(
        tools=schemas, signature=Signature.parse(None), task="t", inputs={}, steps=[]
    )[0]["content"]
    block = system.split("Tools:\n```python\n", 1)[1].rsplit("\n```", 1)[0]
    assert "DEFAULT_TZ" in block  # moved to the docstring, not lost
    assert "'datetime.date'" in block and "Optional['Item']" not in block
    session = Session(host, schemas, config.sandbox)
    try:
        sandbox = await session.ensure_open()
        result = await sandbox.execute(block + "\nprint(search.__annotations__['filters'])")
    finally:
        await session.close()
    assert result.error is None, result.error
    assert result.stdout.strip() == "dict[str, typing.Any] | None"


@pytest.mark.parametrize(
    ("sig", "want"),
    [
        ("def f(x: int) -> str", "def f(x: int) -> str"),
        ("def f(x: Any = None) -> Any", "def f(x: Any = None) -> Any"),
        ("def f(x: Item) -> list[Item]", "def f(x: 'Item') -> 'list[Item]'"),
        ("def f(n=LIMIT, *, k: int = 2)", "def f(n=..., *, k: int = 2)"),
        ("def f(é: Größe)", "def f(é: 'Größe')"),
        ("not python at all (", "not python at all ("),
    ],
)
def test_session_valid_quotes_only_what_the_session_lacks(sig: str, want: str) -> None:
    bound = set(dir(builtins)) | {"Any"}
    assert session_valid(sig, bound)[0] == want


async def test_scripted_cut_off_reaches_the_step(engine: Engine, script: Script) -> None:
    model = script(
        [{"reply": "```python\nx = '''", "finish_reason": "length"}, code("final_answer(1)")]
    )
    traj = await _wait(await engine.start(RunRequest(task="t", model=model)))
    assert traj.steps[0].cut_off and not traj.steps[1].cut_off
