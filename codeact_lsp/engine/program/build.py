"""From a run's steps to one typed function a developer would keep.

In the sandbox the steps share one namespace, tools are plain calls and `final_answer(...)` ends
the run. Outside, the same work is a function: the signature's inputs are its parameters, the call
that ended the run is its `return`, async tools are awaited (so the function is `async def`), and
the tools are imported at the top. What the model did only to look around is dropped (see
`prune`). Statements that come through unchanged are written as the model wrote them (comments
and line breaks kept); rewritten ones are printed from the AST.
"""

from __future__ import annotations

import ast
import copy
import io
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codeact_lsp.engine.contract import prelude_names
from codeact_lsp.engine.program import naming
from codeact_lsp.engine.program.imports import Need, needs_of, render
from codeact_lsp.engine.program.prune import Item, Purity, effects_of, prune, reads
from codeact_lsp.engine.signature import DEFAULT_SIGNATURE, SigField, Signature
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import Step

FINAL = "final_answer"
_NOT_IMPORTABLE = frozenset({"", "__main__", "builtins"})


class ProgramError(ValueError):
    """The steps cannot be turned into a program (code that no longer parses)."""


def _importable(module: str) -> str:
    """An MCP server's tools ("mcp:<server>") are imported through codeact's own module for them."""
    if module.startswith("mcp:"):
        # the server name as an identifier, as codeact_lsp.mcp.schema.python_name makes it (not
        # imported: the engine sits below mcp); the remote module accepts either spelling
        import keyword
        import re

        name = re.sub(r"\W", "_", module[4:].strip(), flags=re.ASCII) or "tool"
        name = "_" + name if name[0].isdigit() else name
        name = name + "_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name
        return "codeact_lsp.mcp.remote." + name
    return module


def program_steps(steps: Sequence[Step]) -> list[Step]:
    """Steps that ran without error, in order (the ones whose effects the answer rests on)."""
    return [s for s in steps if s.code and (s.status == "ok" or s.final) and s.error is None]


@dataclass
class Program:
    """The accepted program in parts, so a caller can merge its imports into another file."""

    name: str
    is_async: bool
    imports: list[Need]
    body: str  # the result class (several outputs) and the function, without imports
    params: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = render(self.imports)
        return (head + "\n\n\n" if head else "") + self.body


def build_program(
    steps: Sequence[Step],
    tools: Sequence[ToolSchema],
    inputs: dict[str, Any] | None = None,
    *,
    extra_code: Sequence[str] = (),
    signature: Signature | str | None = None,
    task: str = "",
    outputs: dict[str, Any] | None = None,
    name: str | None = None,
) -> str:
    """The program as module text ("" when no step ran successfully)."""
    program = make_program(
        steps,
        tools,
        inputs,
        extra_code=extra_code,
        signature=signature,
        task=task,
        outputs=outputs,
        name=name,
    )
    return program.text() if program is not None else ""


def make_program(
    steps: Sequence[Step],
    tools: Sequence[ToolSchema],
    inputs: dict[str, Any] | None = None,
    *,
    extra_code: Sequence[str] = (),
    signature: Signature | str | None = None,
    task: str = "",
    outputs: dict[str, Any] | None = None,
    name: str | None = None,
) -> Program | None:
    sig = signature if isinstance(signature, Signature) else Signature.parse(signature)
    inputs = dict(inputs or {})
    fname = naming.explicit_identifier(name) if name else naming.identifier(task)
    multi = len(sig.outputs) > 1
    result_cls = naming.class_name(fname) if multi else None

    items: list[Item] = []
    for code in extra_code:  # earlier runs of a follow-up chain: their answers are not ours
        items += _items(code, 0, final=None)
    ran_any = False
    for step in steps:
        if not step.code:
            continue
        if step in program_steps([step]):
            ran_any = True
            items += _items(step.code, step.index, final=(sig, result_cls) if step.final else None)
        elif step.status == "error" and step.error is not None and step.error.line:
            # what ran before the failing line; kept only if a later step reads what it defined
            items += [
                Item(i.node, i.source, i.step, optional=True, verbatim=i.verbatim)
                for i in _items(step.code, step.index, final=None)
                if (i.node.end_lineno or i.node.lineno) < step.error.line
            ]
    if not ran_any and not extra_code:
        return None

    by_name = {t.name: t for t in tools}
    defined = {n for i in items for n in _defined_functions(i.node)}
    purity = Purity({*by_name, *defined, FINAL})

    # hoist imports the steps made; the file gets them at the top
    hoisted: list[Need] = []
    body_items: list[Item] = []
    for item in items:
        if isinstance(item.node, ast.Import | ast.ImportFrom):
            if not item.optional:
                hoisted += needs_of(item.node)
        else:
            body_items.append(item)

    declared = [f for f in sig.inputs]
    default_sig = sig.text.replace(" ", "") == DEFAULT_SIGNATURE.replace(" ", "")
    # the inputs of earlier runs of a chain that this signature does not take become constants
    constants = [
        Item(_assign(k, v), "", 0, verbatim=False)
        for k, v in inputs.items()
        if k not in sig.input_names
    ]
    kept = prune(constants + body_items, purity, set())
    used = set().union(*(reads(i.node) for i in kept)) if kept else set()
    params = [f for f in declared if not default_sig or f.name in used]

    async_tools = {n for n in used if n in by_name and by_name[n].is_async}
    for item in kept:
        new = _AwaitTools(async_tools).visit(copy.deepcopy(item.node))
        if ast.dump(new) != ast.dump(item.node):
            item.node, item.verbatim = new, False
    is_async = bool(async_tools) or any(
        isinstance(n, ast.Await) for i in kept for n in _walk_scope(i.node)
    )

    bound_here = {n for i in kept for n in _bound_top(i.node)} | {f.name for f in params}
    needs = [n for n in hoisted if n.bound in used]
    # the session pre-binds the common typing names (the prompt's stubs use them), so steps use
    # them unimported; the program, outside the session, must import what it still reads
    imported = {n.bound for n in hoisted}
    unbound = used & prelude_names(t.signature for t in tools) - bound_here - imported
    needs += [Need("typing", t) for t in sorted(unbound)]
    for tool_name in sorted(used - bound_here):
        schema = by_name.get(tool_name)
        if schema is not None and schema.module not in _NOT_IMPORTABLE:
            needs.append(Need(_importable(schema.module), tool_name))

    annotations: list[str] = []
    param_text: list[str] = []
    for f in params:
        ann = f.type_text or naming.type_of_value(inputs.get(f.name))
        param_text.append(f"{f.name}: {ann}" if ann else f.name)
        annotations += [ann] if ann else []
    returns = any(isinstance(n, ast.Return) for i in kept for n in _walk_scope(i.node))
    if not returns:
        ret = "None"
    elif result_cls:
        ret = result_cls
    else:
        ret = _annotation(sig.outputs[0], outputs) or ""
    annotations.append(ret)

    parts: list[str] = []
    if result_cls:
        fields = []
        for f in sig.outputs:
            ann = _annotation(f, outputs) or "Any"
            annotations.append(ann)
            fields.append(f"    {f.name}: {ann}")
        parts.append(
            f"class {result_cls}(NamedTuple):\n"
            f'    """What {fname} returns."""\n\n' + "\n".join(fields) + "\n"
        )
        needs.append(Need("typing", "NamedTuple"))
    for ann in annotations:
        needs += [Need("typing", t) for t in naming.typing_names(ann)]

    head = f"{'async def' if is_async else 'def'} {fname}({', '.join(param_text)})"
    head += f" -> {ret}:" if ret else ":"
    doc = naming.docstring(task)
    lines = [head, f'    """{doc}"""' if doc else '    """The accepted run."""']
    lines += _render_body(kept)
    parts.append("\n".join(lines) + "\n")
    return Program(
        name=fname,
        is_async=is_async,
        imports=sorted(set(needs)),
        body="\n\n".join(parts),
        params=[f.name for f in params],
    )


# -- statements -------------------------------------------------------------------------------


def _items(code: str, index: int, final: tuple[Signature, str | None] | None) -> list[Item]:
    """A step's top-level statements; `final_answer` becomes `return` in the step that ended the
    run, and elsewhere (an earlier run's answer) only its arguments' effects stay."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise ProgramError(f"step {index} does not parse: {exc.msg} (line {exc.lineno})") from None
    out: list[Item] = []
    for stmt in tree.body:
        rewritten = _FinalAnswer(final).visit(copy.deepcopy(stmt))
        nodes = [n for n in (rewritten if isinstance(rewritten, list) else [rewritten]) if n]
        same = len(nodes) == 1 and ast.dump(nodes[0]) == ast.dump(stmt)
        out += [Item(n, code, index, verbatim=same) for n in nodes]
    return out


class _FinalAnswer(ast.NodeTransformer):
    def __init__(self, final: tuple[Signature, str | None] | None) -> None:
        self.final = final

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node  # a helper's own body is left alone

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return node

    def visit_Expr(self, node: ast.Expr) -> Any:
        call = node.value
        if not (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == FINAL
        ):
            return self.generic_visit(node)
        if self.final is None:
            effects = [
                e
                for a in [*call.args, *(k.value for k in call.keywords)]
                for e in effects_of(a, _ANY)
            ]
            return [ast.copy_location(ast.Expr(value=e), node) for e in effects] or None
        sig, cls = self.final
        value: ast.expr
        if cls is not None:
            value = ast.Call(func=ast.Name(cls, ast.Load()), args=[], keywords=call.keywords)
        elif call.args:
            value = call.args[0]
        elif call.keywords and call.keywords[0].arg is None:
            kw = call.keywords[0].value
            value = ast.Subscript(kw, ast.Constant(sig.output_names[0]), ast.Load())
        elif call.keywords:
            value = call.keywords[0].value
        else:
            value = ast.Constant(None)
        return ast.copy_location(ast.Return(value=value), node)


# any call counts as an effect when an earlier run's answer is dropped
_ANY = Purity(())


class _AwaitTools(ast.NodeTransformer):
    """`tool(...)` -> `await tool(...)` for async tools; a generator over awaits becomes a list."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_Await(self, node: ast.Await) -> ast.AST:
        if isinstance(node.value, ast.Call):
            node.value = self.generic_visit(node.value)  # type: ignore[assignment]
            return node
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.names:
            return ast.copy_location(ast.Await(value=node), node)
        return node

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        self.generic_visit(node)
        if any(isinstance(n, ast.Await) for n in ast.walk(node)):
            return ast.copy_location(ast.ListComp(elt=node.elt, generators=node.generators), node)
        return node


def _walk_scope(node: ast.AST) -> list[ast.AST]:
    """Nodes of this scope (nested functions and lambdas excluded)."""
    out: list[ast.AST] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        out.append(cur)
        for child in ast.iter_child_nodes(cur):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                stack.append(child)
    return out


def _defined_functions(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
        elif (
            isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Lambda)
            and all(isinstance(t, ast.Name) for t in n.targets)
        ):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _bound_top(node: ast.AST) -> set[str]:
    return {
        n.id for n in _walk_scope(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    } | (_defined_functions(node))


def _assign(name: str, value: Any) -> ast.stmt:
    stmt = ast.parse(f"{name} = {value!r}").body[0]
    return stmt


def _annotation(f: SigField, outputs: dict[str, Any] | None) -> str | None:
    if f.type_text:
        return f.type_text
    if outputs and f.name in outputs:
        return naming.type_of_value(outputs[f.name])
    return None


# -- rendering --------------------------------------------------------------------------------


def _render_body(items: list[Item]) -> list[str]:
    if not items:
        return ["    pass"]
    lines: list[str] = []
    prev: Item | None = None
    commented: set[tuple[int, int]] = set()
    for item in items:
        node = item.node
        src_lines = item.source.splitlines()
        if prev is not None and (
            prev.step != item.step
            or isinstance(prev.node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            or (
                prev.source == item.source
                and node.lineno - (prev.node.end_lineno or prev.node.lineno) > 1
                and any(
                    not ln.strip()
                    for ln in src_lines[(prev.node.end_lineno or 0) : node.lineno - 1]
                )
            )
        ):
            lines.append("")
        if item.source and (item.step, node.lineno) not in commented:
            commented.add((item.step, node.lineno))
            lines += ["    " + c for c in _comments_above(src_lines, node.lineno)]
        text = _verbatim(item) if item.verbatim else None
        if text is None:
            text = ast.unparse(ast.fix_missing_locations(node))
        lines += [("    " + ln) if ln.strip() else "" for ln in _double_quotes(text).splitlines()]
        prev = item
    return lines


def _comments_above(lines: list[str], lineno: int) -> list[str]:
    out: list[str] = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        out.insert(0, lines[i].strip())
        i -= 1
    return out


def _verbatim(item: Item) -> str | None:
    """The statement as written, trailing comment included; None when re-indenting would change
    it (a string literal spanning lines)."""
    node = item.node
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant | ast.JoinedStr) and (sub.end_lineno or 0) > sub.lineno:
            return None
    segment = ast.get_source_segment(item.source, node)
    if segment is None:
        return None
    last = item.source.splitlines()[(node.end_lineno or node.lineno) - 1]
    tail = last.encode("utf-8")[node.end_col_offset or 0 :].decode("utf-8", "ignore").strip()
    if tail.startswith("#"):
        segment += "  " + tail
    return segment


def _double_quotes(code: str) -> str:
    """ast.unparse writes 'single' quotes; most Python code (and ruff/black) uses double."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return code
    lines = code.splitlines(keepends=True)
    for tok in reversed(tokens):
        if tok.type != tokenize.STRING or tok.start[0] != tok.end[0]:
            continue
        text = tok.string
        prefix_len = len(text) - len(text.lstrip("rbuRBUfF"))
        prefix, body = text[:prefix_len], text[prefix_len:]
        if not (body.startswith("'") and not body.startswith("'''")):
            continue
        inner = body[1:-1]
        if '"' in inner or "\\" in inner:
            continue
        row, (c0, c1) = tok.start[0] - 1, (tok.start[1], tok.end[1])
        line = lines[row]
        lines[row] = line[:c0] + prefix + '"' + inner + '"' + line[c1:]
    return "".join(lines)
