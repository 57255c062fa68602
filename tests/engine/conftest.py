"""End-to-end fixtures: the example workspace, a real tool host, real sandboxes, scripted replies."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from engine_helpers import EXAMPLE, Script

from codeact_lsp.config import CodeActConfig, load_config
from codeact_lsp.engine import Engine, RetryPolicy
from codeact_lsp.tools import ToolHost

FAST_RETRY = RetryPolicy(timeout=5.0, retries=3, base_delay=0.001, max_delay=0.01)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("ws") / "quickstart"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__"))
    return ws


@pytest.fixture(scope="module")
def config(workspace: Path) -> CodeActConfig:
    return load_config(workspace).config


@pytest.fixture(scope="module")
def host(workspace: Path, config: CodeActConfig) -> Iterator[ToolHost]:
    host = ToolHost.start(workspace, config)
    assert host.problem is None, host.problem
    yield host
    host.close_sync()


@pytest.fixture
async def engine(
    workspace: Path, config: CodeActConfig, host: ToolHost, tmp_path: Path
) -> AsyncIterator[Engine]:
    eng = Engine(config, host, workspace=workspace, runs_dir=tmp_path / "runs", retry=FAST_RETRY)
    yield eng
    await eng.close()


@pytest.fixture
def script(tmp_path: Path) -> Script:
    """Write replies to a file; returns the model name that replays them."""
    counter = iter(range(1000))

    def make(replies: list[object]) -> str:
        path = tmp_path / f"replies-{next(counter)}.json"
        path.write_text(json.dumps(replies))
        return f"scripted:{path}"

    return make
