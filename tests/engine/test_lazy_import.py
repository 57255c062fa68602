"""litellm takes seconds to import: the engine (and so the language server and the CLI) must not
pay for it until a real model is called."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import codeact_lsp.engine, codeact_lsp.cli
from codeact_lsp.engine import make_model
model = make_model("openai/gpt-4o-mini", api_key="k")
heavy = sorted(m for m in ("litellm", "openai", "httpx", "tiktoken") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_importing_the_engine_does_not_import_litellm() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "none", out.stdout
