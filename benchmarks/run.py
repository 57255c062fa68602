"""Run every benchmark (`benchmarks/bench_*.py`) and print its figures beside docs/contracts.md's targets.

Usage: `.venv/bin/python benchmarks/run.py [AREA ...]` (areas: sandbox, tools, engine, lsp).
Each module exposes `main()`, prints its own table, and may be run alone.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    wanted = set(argv if argv is not None else sys.argv[1:])
    failures = 0
    for path in sorted(HERE.glob("bench_*.py")):
        area = path.stem.removeprefix("bench_")
        if wanted and area not in wanted:
            continue
        print(f"\n=== {area} ({path.name})", flush=True)
        started = time.perf_counter()
        argv_before = sys.argv
        sys.argv = [str(path)]  # each benchmark parses its own arguments: give it none
        try:
            _load(path).main()  # type: ignore[attr-defined]
        except Exception:
            failures += 1
            traceback.print_exc()
        finally:
            sys.argv = argv_before
        print(f"--- {area}: {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
