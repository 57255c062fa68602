"""The program's text, read back: its parts for merging into a file, and the "as a script" form.

The trajectory stores the program as text (what `codeact run --program` prints), so everything a
client does with it later starts from that text rather than from the run's live objects.
"""

from __future__ import annotations

import ast
from typing import Any

from codeact_lsp.engine.program.build import Program
from codeact_lsp.engine.program.imports import Need, needs_of


def parse_program(text: str) -> Program:
    """Split program text into its leading imports and the rest (the function and its helpers)."""
    tree = ast.parse(text)
    imports: list[Need] = []
    lines = text.splitlines(keepends=True)
    body_start = len(lines)
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            imports += needs_of(stmt)
            continue
        body_start = stmt.lineno - 1
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body_start = min([body_start, *(d.lineno - 1 for d in stmt.decorator_list)])
        break
    func = _main_function(tree)
    return Program(
        name=func.name if func else "",
        is_async=isinstance(func, ast.AsyncFunctionDef),
        imports=imports,
        body="".join(lines[body_start:]).strip("\n") + "\n",
        params=[a.arg for a in func.args.args] if func else [],
    )


def _main_function(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    funcs = [s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    return funcs[-1] if funcs else None


def as_script(text: str, inputs: dict[str, Any] | None = None) -> str:
    """The program with an `if __name__ == "__main__":` block that calls it with the run's inputs
    and prints the result (`asyncio.run` there, at the top of a script, is where it belongs)."""
    program = parse_program(text)
    if not program.name:
        return text
    values = inputs or {}
    args = ", ".join(f"{p}={values[p]!r}" for p in program.params if p in values)
    call = f"{program.name}({args})"
    if program.is_async:
        program.imports = sorted({*program.imports, Need("asyncio")})
        text = program.text()
        call = f"asyncio.run({call})"
    return text.rstrip("\n") + f'\n\n\nif __name__ == "__main__":\n    print({call})\n'


def renamed(text: str, name: str) -> str:
    """The program with its function called `name` (the result class follows the new name)."""
    tree = ast.parse(text)
    func = _main_function(tree)
    if func is None or func.name == name:
        return text
    old = func.name
    lines = text.splitlines(keepends=True)
    row = func.lineno - 1
    lines[row] = lines[row].replace(f"def {old}(", f"def {name}(", 1)
    return "".join(lines)
