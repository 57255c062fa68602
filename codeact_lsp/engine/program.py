"""The run's program: what Accept inserts, replayable outside the sandbox against the real tools.

Inside the sandbox every tool is a plain call and `final_answer` ends the run. Outside, async tools
need a synchronous wrapper and `final_answer` has to do something sensible, so the program defines
both before the steps' code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codeact_lsp.engine.approval import names_used
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import Step


def program_steps(steps: Sequence[Step]) -> list[Step]:
    """Steps that ran without error, in order (the ones whose effects the answer rests on)."""
    return [s for s in steps if s.code and (s.status == "ok" or s.final) and s.error is None]


def build_program(
    steps: Sequence[Step],
    tools: Sequence[ToolSchema],
    inputs: dict[str, Any] | None = None,
    *,
    extra_code: Sequence[str] = (),
) -> str:
    kept = program_steps(steps)
    chosen = [*extra_code, *(s.code for s in kept)]
    if not chosen:
        return ""
    body = "\n\n".join(code.rstrip() for code in chosen)
    used: set[str] = set().union(*(names_used(code) for code in chosen))
    for step in kept:
        used.update(c.name for c in step.tool_calls)
    by_name = {t.name: t for t in tools}
    header: list[str] = []
    wrappers: list[str] = []
    by_module: dict[str, list[str]] = {}
    needs_asyncio = False
    for name in sorted(used):
        schema = by_name.get(name)
        if schema is None or not schema.module:
            continue
        if schema.is_async:
            by_module.setdefault(schema.module, []).append(f"{name} as _{name}_async")
            wrappers.append(
                f"def {name}(*args, **kwargs):\n"
                f"    return asyncio.run(_{name}_async(*args, **kwargs))"
            )
            needs_asyncio = True
        else:
            by_module.setdefault(schema.module, []).append(name)
    if needs_asyncio:
        header.append("import asyncio")
    for module in sorted(by_module):
        header.append(f"from {module} import {', '.join(by_module[module])}")
    if "final_answer" in used:
        wrappers.append(
            "def final_answer(*args, **kwargs):\n"
            "    for value in args:\n"
            "        print(value)\n"
            "    for key, value in kwargs.items():\n"
            '        print(f"{key} = {value!r}")'
        )
    assigns = [f"{name} = {value!r}" for name, value in (inputs or {}).items() if name in used]
    sections = ["\n".join(header), "\n\n\n".join(wrappers), "\n".join(assigns), body]
    return "\n\n".join(s for s in sections if s) + "\n"
