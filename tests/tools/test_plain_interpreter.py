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


def other_interpreters() -> list[str]:
    """Other CPython versions on this machine (the workspace's interpreter need not be ours):
    the oldest and newest found, else our own."""
    found: dict[tuple[int, ...], str] = {}
    candidates = [shutil.which(f"python3.{minor}") for minor in range(8, 15)]
    candidates += [str(p) for p in Path.home().glob(".pyenv/versions/3.*/bin/python")]
    for cand in candidates:
        if not cand or "shims" in cand:  # pyenv shims are slow to start; their targets are globbed
            continue
        probe = subprocess.run(
            [cand, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0:
            version = tuple(int(x) for x in probe.stdout.split())
            if version >= (3, 8):
                found.setdefault(version, cand)
    if not found:
        return [sys.executable]
    ordered = [found[v] for v in sorted(found)]
    return sorted({ordered[0], ordered[-1]})


def test_host_on_other_python_versions(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    for python in other_interpreters():
        host = ToolHost.start(ws, load_config(ws).config, python=python, timeout=10)
        try:
            assert host.problem is None, (python, host.problem)
            assert {s.name for s in host.schemas()} == {"repeat", "mean", "pick"}, python
            assert host.call_sync("mean", [[1, 2]], {}).result == 1.5, python
            bad = host.call_sync("repeat", ["a"], {"times": "x"})
            assert bad.error is not None and "'times'" in bad.error.message, python
        finally:
            host.close_sync()
