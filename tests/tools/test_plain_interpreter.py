"""The tool host in an interpreter without pydantic (a bare virtualenv): the stdlib fallback
describes and checks simple types, and says validation is partial."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeact_lsp.config import load_config, resolve_python
from codeact_lsp.tools import ToolHost

FIXTURE = Path(__file__).parent.parent / "fixtures" / "tool_ws_plain"


@pytest.fixture(scope="module")
def plain_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolHost]:
    ws = tmp_path_factory.mktemp("plain") / "ws"
    shutil.copytree(FIXTURE, ws)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(ws / ".venv")], check=True)
    config = load_config(ws).config
    assert resolve_python(ws, config) == str(ws / ".venv" / "bin" / "python")
    host = ToolHost.start(ws, config, timeout=10)
    assert host.problem is None, host.problem
    yield host
    host.close_sync()


def test_runs_in_the_workspace_interpreter_without_pydantic(plain_host: ToolHost) -> None:
    assert not plain_host.has_pydantic
    assert plain_host.python.endswith(".venv/bin/python")
    schemas = {s.name: s for s in plain_host.schemas()}
    assert set(schemas) == {"repeat", "mean", "pick"}
    assert not schemas["repeat"].validated
    assert schemas["repeat"].parameters == {
        "type": "object",
        "properties": {"text": {"type": "string"}, "times": {"type": "integer", "default": 2}},
        "required": ["text"],
    }
    assert schemas["mean"].parameters["properties"]["values"] == {
        "type": "array",
        "items": {"type": "number"},
    }
    assert schemas["pick"].parameters["properties"]["mode"] == {"enum": ["fast", "slow"]}
    assert schemas["pick"].signature == (
        "def pick(mode: Literal['fast', 'slow'], limit: Optional[int] = None) -> dict[str, object]"
    )


def test_simple_types_checked_by_the_fallback(plain_host: ToolHost) -> None:
    assert plain_host.call_sync("repeat", ["ab"], {"times": 3}).result == "ababab"
    assert plain_host.call_sync("mean", [[1, 2.5]], {}).result == 1.75
    bad = plain_host.call_sync("repeat", ["ab"], {"times": "3"})
    assert bad.error is not None and bad.error.type == "TypeError"
    assert "argument 'times' should be int" in bad.error.message
    lit = plain_host.call_sync("pick", ["medium"], {})
    assert lit.error is not None and "'mode'" in lit.error.message
    assert plain_host.call_sync("pick", ["fast"], {"limit": 3}).result == {
        "mode": "fast",
        "limit": 3,
    }
