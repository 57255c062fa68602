"""The README's first command: the demo drives the real server over stdio and must succeed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_example_through_the_language_server(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "codeact_lsp.demo", str(ROOT / "examples" / "quickstart")],
        capture_output=True,
        text=True,
        timeout=150,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        },  # no CODEACT_MODEL: the scripted stand-in
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "SCRIPTED STAND-IN" in out  # never passes itself off as a real model
    assert '■ run finished: outputs={"answer": 76.9}' in out
    assert "codeact.accept" in out and '"applied": true' in out
    # the program landed in the target document, after the user's own text
    after = out.split("after Accept", 1)[1]
    assert "# The agent's program goes here." in after
    assert "return total" in after and "final_answer" not in after
    # the workspace's MCP server next to tools.py: listed and tried like any tool
    assert "mcp:carrier: def delivery_estimate(country: str) -> dict[str, Any]" in out
    assert '→ {"country": "DE", "days": 1, "service": "road"}' in out
    # the tool bench showed lenses on tools.py
    assert "codeact.tryTool" in out
    # and the example stays untouched: the demo works on a copy
    assert not (ROOT / "examples" / "quickstart" / "quote.py").exists()
