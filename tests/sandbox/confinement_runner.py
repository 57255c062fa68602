"""Run the confinement attack table as whoever starts this script, and print the verdicts as JSON.

test_confinement.py starts it as `nobody` (setpriv) when the suite runs as root, so every class is
also shown blocked for an unprivileged server: `python confinement_runner.py SCRATCH_DIR`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from confinement_cases import CASES, make_env, run_case
from sandbox_helpers import TOOLS, Recorder

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import Sandbox, SandboxPool


async def main(tmp: Path) -> dict[str, object]:
    env = make_env(tmp)
    pool = SandboxPool(spares=1)
    verdicts: dict[str, object] = {}
    info: list[str] = []
    try:
        for case in CASES:
            sb = await Sandbox.start(
                SandboxSettings(timeout=30, memory_mb=case.memory_mb, disk_mb=8),
                TOOLS,
                Recorder(),
                pool=pool,
            )
            try:
                ok, detail = await run_case(case, sb, env)
                info = sb.info.isolation + [f"NOT: {m}" for m in sb.info.not_enforced]
            finally:
                await sb.close()
            verdicts[case.id] = {"blocked": ok, "detail": detail}
    finally:
        await pool.close()
        env.close()
    return {"verdicts": verdicts, "isolation": info}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
