"""Static tool discovery: read tool modules with `ast`, never import or execute them.

It runs on every edit (code lenses, diagnostics), so each file's analysis is cached by path, size
and mtime, and `analyse_source` re-analyses one unsaved buffer on its own. What static analysis
cannot know (a tool imported from a library, a callable built at import time) is left to the tool
host, which reports the authoritative schemas.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

from codeact_lsp.config import DEFAULT_TOOL_GLOBS, CodeActConfig
from codeact_lsp.tools.models import DiscoveredTool, Discovery, ToolDiagnostic, ToolKind
from codeact_lsp.tools.targets import module_name_for, resolve_targets

RESERVED = frozenset({"final_answer"})
_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
_UNHELPFUL = frozenset({"Any", "typing.Any", "object", "t.Any"})

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef


def _text(node: ast.AST) -> str:
    """Source text of an annotation or default; the common shapes without `ast.unparse` (which
    dominates the cost of rendering signatures)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and node.value is not Ellipsis:
        return repr(node.value)
    if isinstance(node, ast.Attribute):
        return f"{_text(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        inner = node.slice
        if isinstance(inner, ast.Tuple) and inner.elts:
            return f"{_text(node.value)}[{', '.join(_text(e) for e in inner.elts)}]"
        return f"{_text(node.value)}[{_text(inner)}]"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return f"{_text(node.left)} | {_text(node.right)}"
    return ast.unparse(node)


# ---------------------------------------------------------------------------------------------
# Parsing, incrementally for big modules: top-level blocks are parsed on their own and cached by
# their text, so an edit re-parses only the block it touched.

_BLOCK_RE = re.compile(r"[A-Za-z_@]")
_GLUE = frozenset({"else", "elif", "except", "finally"})
_WORD_RE = re.compile(r"\w+")
CHUNKED_MIN_LINES = 300
_CHUNK_CACHE_MAX = 4000
_chunks: OrderedDict[tuple[str, str], tuple[list[ast.stmt], int]] = OrderedDict()
_chunks_lock = threading.RLock()
_seeded: set[str] = set()


def _split_blocks(lines: list[str]) -> list[int]:
    """0-based first lines of top-level blocks. A wrong split (inside a string or brackets)
    leaves a block that does not parse, which sends the caller to a whole-file parse."""
    starts: list[int] = []
    in_decorator = False
    for i, line in enumerate(lines):
        if not line or not _BLOCK_RE.match(line):
            continue
        if line[0] == "@":
            if not in_decorator:
                starts.append(i)
            in_decorator = True
            continue
        if in_decorator:
            in_decorator = False
            continue
        m = _WORD_RE.match(line)
        if m is not None and m.group(0) in _GLUE:
            continue
        starts.append(i)
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return starts


def _trim(stmts: list[ast.stmt]) -> None:
    """Drop function bodies but their docstring: nothing else is read, and cached trees stay small."""
    for node in stmts:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = [first]
            else:
                node.body = [ast.Pass(lineno=node.lineno, col_offset=0)]
        elif isinstance(node, ast.ClassDef):
            _trim(node.body)
        elif isinstance(node, ast.If | ast.With):
            _trim(node.body)
            _trim(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try | ast.TryStar):
            _trim(node.body)
            for h in node.handlers:
                _trim(h.body)
            _trim(node.orelse)
            _trim(node.finalbody)


def _shift(node: ast.AST, delta: int) -> None:
    """Move a cached block's line numbers (function bodies are trimmed, so this stays cheap)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if "lineno" in cur._attributes:
            cur.lineno = getattr(cur, "lineno", 1) + delta  # type: ignore[attr-defined]
            end = getattr(cur, "end_lineno", None)
            if end is not None:
                cur.end_lineno = end + delta  # type: ignore[attr-defined]
        stack.extend(ast.iter_child_nodes(cur))


def _parse_chunked(text: str, file: str) -> ast.Module | None:
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None
    lines = text.split("\n")
    starts = _split_blocks(lines)
    body: list[ast.stmt] = []
    used: set[int] = set()
    with _chunks_lock:
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            chunk = "\n".join(lines[start:end])
            key = (file, chunk)
            hit = _chunks.get(key)
            if hit is not None and not (hit[0] and id(hit[0][0]) in used):
                stmts, at = hit
                if at != start:
                    for stmt in stmts:
                        _shift(stmt, start - at)
                _chunks[key] = (stmts, start)
                _chunks.move_to_end(key)
            else:
                try:
                    stmts = ast.parse(chunk, filename=file).body
                except (SyntaxError, ValueError):
                    return None
                _trim(stmts)
                if start:
                    for stmt in stmts:
                        _shift(stmt, start)
                _chunks[key] = (stmts, start)
                if len(_chunks) > _CHUNK_CACHE_MAX:
                    _chunks.popitem(last=False)
            if stmts:
                used.add(id(stmts[0]))
            body.extend(stmts)
    return ast.Module(body=body, type_ignores=[])


def _seed(file: str, text: str, tree: ast.Module) -> None:
    """Cache the blocks of a whole-file parse, so the first edit after it is already incremental."""
    lines = text.split("\n")
    starts = _split_blocks(lines)
    bounds = [*starts[1:], len(lines)]
    stmts = tree.body
    i = 0
    with _chunks_lock:
        for start, end in zip(starts, bounds, strict=True):
            block: list[ast.stmt] = []
            while i < len(stmts) and stmts[i].lineno - 1 < end:
                stmt = stmts[i]
                first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
                if first - 1 < start or (stmt.end_lineno or stmt.lineno) - 1 >= end:
                    return  # the split does not follow statements here: no seeding
                block.append(stmt)
                i += 1
            _chunks[(file, "\n".join(lines[start:end]))] = (block, start)
        while len(_chunks) > _CHUNK_CACHE_MAX:
            _chunks.popitem(last=False)
        _seeded.add(file)


def parse_module(text: str, file: str) -> ast.Module:
    """`ast.parse`, incremental for big modules; raises SyntaxError like `ast.parse`."""
    if text.count("\n") < CHUNKED_MIN_LINES:
        return ast.parse(text, filename=file)
    if file in _seeded:
        chunked = _parse_chunked(text, file)
        if chunked is not None:
            return chunked
    tree = ast.parse(text, filename=file)
    _trim(tree.body)
    if "\r" not in text:
        _seed(file, text, tree)
    return tree


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, including those under `if`/`try`/`with` (not in defs or classes)."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, ast.If):
            out.extend(_top_level(node.body) + _top_level(node.orelse))
        elif isinstance(node, ast.Try | ast.TryStar):
            out.extend(_top_level(node.body))
            for h in node.handlers:
                out.extend(_top_level(h.body))
            out.extend(_top_level(node.orelse) + _top_level(node.finalbody))
        elif isinstance(node, ast.With):
            out.extend(_top_level(node.body))
    return out


def _str_list(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        vals: list[str] = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                vals.append(elt.value)
            else:
                return None
        return vals
    return None


class _Module:
    """The module-level names of one file and what they are bound to."""

    def __init__(self, tree: ast.Module) -> None:
        self.defs: dict[str, ast.stmt] = {}
        self.assigns: dict[str, tuple[ast.stmt, ast.expr]] = {}
        self.imports: dict[str, ast.stmt] = {}
        self.all_names: list[str] | None = None
        self.all_node: ast.stmt | None = None
        self.all_dynamic = False
        for node in _top_level(tree.body):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.defs[node.name] = node
                self.assigns.pop(node.name, None)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                for tgt in targets:
                    if not isinstance(tgt, ast.Name) or value is None:
                        continue
                    if tgt.id == "__all__":
                        self._set_all(node, value)
                    else:
                        self.assigns[tgt.id] = (node, value)
                        self.defs.pop(tgt.id, None)
            elif isinstance(node, ast.AugAssign):
                if isinstance(node.target, ast.Name) and node.target.id == "__all__":
                    extra = _str_list(node.value)
                    if extra is None or self.all_names is None:
                        self.all_dynamic = True
                    else:
                        self.all_names.extend(extra)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                self._all_call(node.value)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if alias.name != "*":
                        self.imports[bound] = node

    def _set_all(self, node: ast.stmt, value: ast.expr) -> None:
        names = _str_list(value)
        self.all_node = node
        if names is None:
            self.all_dynamic = True
            self.all_names = []
        else:
            self.all_names = names

    def _all_call(self, call: ast.Call) -> None:
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "__all__"
            and self.all_names is not None
        ):
            if func.attr == "append" and call.args:
                arg = call.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    self.all_names.append(arg.value)
                    return
            elif func.attr == "extend" and call.args:
                extra = _str_list(call.args[0])
                if extra is not None:
                    self.all_names.extend(extra)
                    return
            self.all_dynamic = True

    def class_method(self, cls_name: str, method: str) -> FuncNode | None:
        cls = self.defs.get(cls_name)
        if not isinstance(cls, ast.ClassDef):
            return None
        for node in cls.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == method:
                return node
        return None

    def instance_class(self, name: str) -> str | None:
        """`obj = Cls(...)` at module level: the class name, when Cls is defined here."""
        bound = self.assigns.get(name)
        if bound is None:
            return None
        value = bound[1]
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and isinstance(self.defs.get(value.func.id), ast.ClassDef)
        ):
            return value.func.id
        return None


class _Resolved:
    def __init__(
        self,
        func: FuncNode | None,
        kind: ToolKind,
        drop: int = 0,
        kw_bound: frozenset[str] = frozenset(),
    ) -> None:
        self.func = func
        self.kind = kind
        self.drop = drop  # leading positional parameters already bound (self, partial args)
        self.kw_bound = kw_bound


def _is_partial(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "partial") or (
        isinstance(func, ast.Attribute) and func.attr == "partial"
    )


def _resolve(mod: _Module, name: str, depth: int = 0) -> _Resolved | None:
    """What a module-level name is bound to, followed through aliases, bound methods of module-level
    instances, callable instances and `functools.partial`."""
    if depth > 5:
        return None
    node = mod.defs.get(name)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return _Resolved(node, "async" if isinstance(node, ast.AsyncFunctionDef) else "function")
    if isinstance(node, ast.ClassDef):
        return None
    bound = mod.assigns.get(name)
    if bound is None:
        return None
    value = bound[1]
    if isinstance(value, ast.Name):
        return _resolve(mod, value.id, depth + 1)
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
        owner = value.value.id
        cls = mod.instance_class(owner)
        if cls is not None:
            meth = mod.class_method(cls, value.attr)
            if meth is not None:
                is_static = any(
                    isinstance(d, ast.Name) and d.id == "staticmethod" for d in meth.decorator_list
                )
                kind: ToolKind = "async" if isinstance(meth, ast.AsyncFunctionDef) else "method"
                return _Resolved(meth, kind, 0 if is_static else 1)
        if isinstance(mod.defs.get(owner), ast.ClassDef):
            meth = mod.class_method(owner, value.attr)
            if meth is not None:
                is_cm = any(
                    isinstance(d, ast.Name) and d.id == "classmethod" for d in meth.decorator_list
                )
                return _Resolved(meth, "method", 1 if is_cm else 0)
        return _Resolved(None, "method")
    if isinstance(value, ast.Call):
        if _is_partial(value.func) and value.args:
            inner = value.args[0]
            base = _resolve(mod, inner.id, depth + 1) if isinstance(inner, ast.Name) else None
            kw = frozenset(k.arg for k in value.keywords if k.arg)
            if base is None:
                return _Resolved(None, "partial")
            return _Resolved(base.func, "partial", base.drop + len(value.args) - 1, kw)
        if isinstance(value.func, ast.Name) and isinstance(
            mod.defs.get(value.func.id), ast.ClassDef
        ):
            call = mod.class_method(value.func.id, "__call__")
            if call is not None:
                return _Resolved(call, "callable", 1)
            return None  # an instance that is not callable: not a tool
        return _Resolved(None, "callable")
    if isinstance(value, ast.Lambda):
        return _Resolved(None, "function")
    return None


def _render(name: str, res: _Resolved) -> str:
    func = res.func
    if func is None:
        return ""
    a = func.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(
        a.defaults
    )
    parts: list[str] = []
    n_posonly = len(a.posonlyargs)
    kept_posonly = False
    for i, arg in enumerate(positional):
        if i < res.drop:
            continue
        if i >= n_posonly and kept_posonly:
            parts.append("/")
            kept_posonly = False
        text = arg.arg + (f": {_text(arg.annotation)}" if arg.annotation else "")
        default = defaults[i]
        if arg.arg in res.kw_bound:
            text += " = ..."
        elif default is not None:
            text += (" = " if arg.annotation else "=") + _text(default)
        parts.append(text)
        if i < n_posonly:
            kept_posonly = True
    if kept_posonly:
        parts.append("/")
    if a.vararg:
        ann = f": {_text(a.vararg.annotation)}" if a.vararg.annotation else ""
        parts.append(f"*{a.vararg.arg}{ann}")
    elif a.kwonlyargs:
        parts.append("*")
    for arg, kd in zip(a.kwonlyargs, a.kw_defaults, strict=False):
        text = arg.arg + (f": {_text(arg.annotation)}" if arg.annotation else "")
        if arg.arg in res.kw_bound:
            text += " = ..."
        elif kd is not None:
            text += (" = " if arg.annotation else "=") + _text(kd)
        parts.append(text)
    if a.kwarg:
        ann = f": {_text(a.kwarg.annotation)}" if a.kwarg.annotation else ""
        parts.append(f"**{a.kwarg.arg}{ann}")
    ret = f" -> {_text(func.returns)}" if func.returns else ""
    return f"def {name}({', '.join(parts)}){ret}"


def _quality(name: str, res: _Resolved, file: str, line: int, diags: list[ToolDiagnostic]) -> None:
    """Diagnostics for what leaves the model guessing: no docstring, no or vague annotations."""
    func = res.func
    if func is None:
        return

    def add(
        code: str, message: str, node: ast.AST | None = None, severity: str = "warning"
    ) -> None:
        ln = getattr(node, "lineno", line) if node is not None else line
        col = getattr(node, "col_offset", 0) if node is not None else 0
        diags.append(
            ToolDiagnostic(
                file=file,
                line=ln,
                column=col,
                severity=severity,  # type: ignore[arg-type]
                message=message,
                code=code,
                tool=name,
            )
        )

    if not ast.get_docstring(func):
        add(
            "tool-no-docstring",
            f"tool {name!r} has no docstring: the model sees only its signature; say what it "
            "does, what it returns and in which unit",
            func,
        )
    a = func.args
    positional = [*a.posonlyargs, *a.args][res.drop :]
    for arg in [*positional, *a.kwonlyargs]:
        if arg.arg in res.kw_bound:
            continue
        if arg.annotation is None:
            add(
                "tool-no-annotation",
                f"parameter {arg.arg!r} of tool {name!r} has no type annotation: the model has to "
                "guess what to pass, and arguments cannot be validated",
                arg,
            )
        elif _text(arg.annotation).strip("'\"") in _UNHELPFUL:
            add(
                "tool-any-annotation",
                f"parameter {arg.arg!r} of tool {name!r} is annotated "
                f"{_text(arg.annotation)}: that tells the model nothing; use a concrete type",
                arg,
            )
    stars = [f"{pre}{arg.arg}" for arg, pre in ((a.vararg, "*"), (a.kwarg, "**")) if arg]
    if stars:
        add(
            "tool-varargs",
            f"tool {name!r} takes {' and '.join(stars)}: the model cannot know which arguments "
            "it accepts; list the parameters explicitly",
            a.vararg or a.kwarg,
        )
    if func.returns is None:
        add(
            "tool-no-return-annotation",
            f"tool {name!r} has no return annotation: the model cannot know what it gets back",
            func,
            "info",
        )
    elif _text(func.returns).strip("'\"") in _UNHELPFUL:
        add(
            "tool-any-annotation",
            f"tool {name!r} returns {_text(func.returns)}: say what it returns",
            func.returns,
        )


def analyse_source(
    path: str | os.PathLike[str], text: str, module: str | None = None
) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    """Tools and diagnostics of one module's text (an unsaved buffer, or a file's content).

    Cross-module checks (name collisions) need the whole workspace: `discover` adds them.
    """
    if text.count("\n") < CHUNKED_MIN_LINES:
        return _analyse(path, text, module)
    with _chunks_lock:  # the cached blocks' line numbers must not move while they are read
        return _analyse(path, text, module)


def _analyse(
    path: str | os.PathLike[str], text: str, module: str | None
) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    file = str(path)
    modname = module or Path(file).stem
    diags: list[ToolDiagnostic] = []
    try:
        tree = parse_module(text, file)
    except SyntaxError as exc:
        diags.append(
            ToolDiagnostic(
                file=file,
                line=exc.lineno or 1,
                end_line=exc.end_lineno,
                column=max((exc.offset or 1) - 1, 0),
                severity="error",
                message=f"syntax error: {exc.msg}; no tools from this module can load",
                code="syntax-error",
            )
        )
        return [], diags
    except ValueError as exc:  # null bytes
        diags.append(
            ToolDiagnostic(file=file, severity="error", message=str(exc), code="syntax-error")
        )
        return [], diags
    mod = _Module(tree)
    tools: list[DiscoveredTool] = []

    if mod.all_names is not None and not mod.all_dynamic:
        names = list(dict.fromkeys(mod.all_names))
        from_all = True
    else:
        if mod.all_dynamic and mod.all_node is not None:
            diags.append(
                ToolDiagnostic(
                    file=file,
                    line=mod.all_node.lineno,
                    severity="info",
                    message="__all__ is computed at import time: the tool list is known only "
                    "once the tool host has loaded the module",
                    code="dynamic-all",
                )
            )
        lines = {n: node.lineno for n, node in mod.defs.items()}
        lines.update({n: bound[0].lineno for n, bound in mod.assigns.items()})
        names = sorted((n for n in lines if not n.startswith("_")), key=lines.__getitem__)
        from_all = False

    for name in names:
        res = _resolve(mod, name)
        binding: ast.stmt | None = mod.defs.get(name) or (
            mod.assigns[name][0] if name in mod.assigns else None
        )
        if res is None:
            if not from_all:
                continue
            imported = mod.imports.get(name)
            if imported is not None:
                origin = None
                if isinstance(imported, ast.ImportFrom):
                    real = next(
                        (a.name for a in imported.names if (a.asname or a.name) == name), name
                    )
                    origin = f"{'.' * imported.level}{imported.module or ''}:{real}"
                tools.append(
                    DiscoveredTool(
                        name=name,
                        module=modname,
                        file=file,
                        line=imported.lineno,
                        end_line=imported.end_lineno or imported.lineno,
                        signature="",
                        kind="function",
                        resolved=False,
                        imported_from=origin,
                    )
                )
                continue
            where = mod.all_node.lineno if mod.all_node is not None else 1
            if binding is None and name in _BUILTIN_NAMES:  # `__all__ = ["min"]`: the builtin
                tools.append(
                    DiscoveredTool(
                        name=name,
                        module=modname,
                        file=file,
                        line=where,
                        end_line=where,
                        signature="",
                        kind="builtin",
                        resolved=False,
                        imported_from=f"builtins:{name}",
                    )
                )
                continue
            severity = "error"
            code = "all-undefined"
            if binding is None:
                msg = f"{name!r} is listed in __all__ but not defined in this module"
            elif isinstance(binding, ast.ClassDef):
                # exporting a type the tools use is fine; it is just not a tool itself
                msg = f"{name!r} is a class: it is exported, but not offered to the model as a tool"
                severity, code = "info", "class-not-tool"
            else:
                continue  # a value the runtime may find callable (or report): leave it to the host
            diags.append(
                ToolDiagnostic(
                    file=file,
                    line=where,
                    severity=severity,  # type: ignore[arg-type]
                    message=msg,
                    code=code,
                    tool=name,
                )
            )
            continue
        bind_line = binding.lineno if binding is not None else 1
        func = res.func
        if func is not None:
            line = func.lineno
            if func.decorator_list:
                line = min(d.lineno for d in func.decorator_list)
            end = func.end_lineno or func.lineno
            doc = ast.get_docstring(func) or ""
            is_async = isinstance(func, ast.AsyncFunctionDef)
        else:
            line = bind_line
            end = (binding.end_lineno if binding is not None else None) or bind_line
            doc = ""
            is_async = False
        tools.append(
            DiscoveredTool(
                name=name,
                module=modname,
                file=file,
                line=line,
                end_line=end,
                signature=_render(name, res),
                doc=doc,
                is_async=is_async,
                kind="async" if is_async else res.kind,
                binding_line=bind_line if bind_line != line else None,
                resolved=func is not None,
            )
        )
        _quality(name, res, file, line, diags)
        if name in RESERVED:
            diags.append(
                ToolDiagnostic(
                    file=file,
                    line=bind_line,
                    severity="error",
                    code="tool-reserved-name",
                    message=f"{name!r} is reserved by CodeAct (it ends the run); rename the tool",
                    tool=name,
                )
            )
        elif name in _BUILTIN_NAMES:
            diags.append(
                ToolDiagnostic(
                    file=file,
                    line=bind_line,
                    severity="warning",
                    code="tool-shadows-builtin",
                    message=f"tool {name!r} shadows the Python builtin {name}() in the model's "
                    "code; give it a more specific name",
                    tool=name,
                )
            )
    return tools, diags


# ---------------------------------------------------------------------------------------------
# The workspace


_Key = tuple[str, int, int]
_cache: dict[str, tuple[_Key, list[DiscoveredTool], list[ToolDiagnostic]]] = {}
_cache_lock = threading.Lock()


def _analyse_file(path: str, module: str) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    try:
        st = os.stat(path)
    except OSError as exc:
        return [], [
            ToolDiagnostic(file=path, severity="error", message=str(exc), code="unreadable")
        ]
    key = (module, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [
            ToolDiagnostic(
                file=path, severity="error", message=f"unreadable: {exc}", code="unreadable"
            )
        ]
    tools, diags = analyse_source(path, text, module)
    with _cache_lock:
        _cache[path] = (key, tools, diags)
    return tools, diags


_texts: OrderedDict[tuple[str, str, str], tuple[list[DiscoveredTool], list[ToolDiagnostic]]] = (
    OrderedDict()
)


def _analyse_text(
    file: str, text: str, module: str
) -> tuple[list[DiscoveredTool], list[ToolDiagnostic]]:
    """An unsaved buffer, cached by its text: open editors are re-read on every discovery."""
    key = (file, module, text)
    with _cache_lock:
        hit = _texts.get(key)
        if hit is not None:
            _texts.move_to_end(key)
            return hit
    result = analyse_source(file, text, module)
    with _cache_lock:
        _texts[key] = result
        while len(_texts) > 64:
            _texts.popitem(last=False)
    return result


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _texts.clear()
    with _chunks_lock:
        _chunks.clear()
        _seeded.clear()


def discover(
    workspace: str | os.PathLike[str],
    config: CodeActConfig | None = None,
    sources: Mapping[str, str] | None = None,
) -> Discovery:
    """Every tool the workspace's config points at, read statically.

    `sources` maps file paths to unsaved editor text, which replaces the file's content on disk.
    """
    started = time.perf_counter()
    ws = Path(workspace).resolve()
    cfg = config or CodeActConfig()
    overrides = {str(Path(k).resolve()): v for k, v in (sources or {}).items()}
    targets, problems = resolve_targets(ws, cfg.tools)
    out = Discovery()
    if cfg.tools != DEFAULT_TOOL_GLOBS:
        for msg in problems:
            out.diagnostics.append(
                ToolDiagnostic(
                    file=_config_file(ws),
                    severity="error",
                    message=msg,
                    code="config-tools",
                    source="config",
                )
            )
    for target in targets:
        if target.file is None:
            continue
        out.files.append(target.file)
        out.modules[target.module] = target.file
        if target.file in overrides:
            tools, diags = _analyse_text(target.file, overrides[target.file], target.module)
        else:
            tools, diags = _analyse_file(target.file, target.module)
        out.tools.extend(tools)
        out.diagnostics.extend(diags)
    _follow_reexports(out, ws)
    if cfg.confirm:
        for i, tool in enumerate(out.tools):
            if cfg.needs_confirmation(tool.name):
                out.tools[i] = tool.model_copy(update={"confirm": True})  # cached: copy
    _collisions(out)
    out.duration_ms = (time.perf_counter() - started) * 1000
    return out


def _origin_file(tool: DiscoveredTool, ws: Path) -> str | None:
    """The workspace file a re-exported tool comes from (`from .ops import add`), if any."""
    if not tool.imported_from:
        return None
    spec, _, _name = tool.imported_from.partition(":")
    level = len(spec) - len(spec.lstrip("."))
    parts = [p for p in spec.lstrip(".").split(".") if p]
    if level:
        base = os.path.dirname(tool.file)
        for _ in range(level - 1):
            base = os.path.dirname(base)
        bases = [base]
    else:
        bases = [str(ws), str(ws / "src")]
    for base in bases:
        stem = os.path.join(base, *parts)
        for cand in (stem + ".py", os.path.join(stem, "__init__.py")):
            if parts and os.path.isfile(cand):
                return cand
    return None


def _follow_reexports(out: Discovery, ws: Path) -> None:
    """Give a tool re-exported by import the signature, doc and range of its definition, when
    that is a workspace file (a package's `__init__` exporting its submodules' functions)."""
    for i, tool in enumerate(out.tools):
        origin = _origin_file(tool, ws)
        if origin is None or tool.imported_from is None:
            continue
        real = tool.imported_from.partition(":")[2]
        try:
            with open(origin, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        # Ask for exactly that name, as if the module exported only it (appended: lines stay).
        found, diags = _analyse_text(origin, f"{text}\n__all__ = [{real!r}]\n", tool.module)
        target = next((t for t in found if t.name == real and t.resolved), None)
        if target is None:
            continue
        signature = target.signature.replace(f"def {real}(", f"def {tool.name}(", 1)
        out.tools[i] = target.model_copy(
            update={
                "name": tool.name,
                "module": tool.module,
                "signature": signature,
                "binding_line": None,
                "imported_from": tool.imported_from,
                "confirm": tool.confirm,
            }
        )
        known = {(d.file, d.line, d.code, d.tool) for d in out.diagnostics}
        for d in diags:
            if d.tool == real and (d.file, d.line, d.code, d.tool) not in known:
                out.diagnostics.append(d)


def _collisions(out: Discovery) -> None:
    by_name: dict[str, list[DiscoveredTool]] = {}
    for tool in out.tools:
        by_name.setdefault(tool.name, []).append(tool)
    for name, same in by_name.items():
        if len(same) < 2:
            continue
        for tool in same:
            others = ", ".join(sorted({t.module for t in same if t is not tool}))
            out.diagnostics.append(
                ToolDiagnostic(
                    file=tool.file,
                    line=tool.binding_line or tool.line,
                    severity="error",
                    code="tool-name-collision",
                    message=f"tool name {name!r} is also defined in {others}: the model can call "
                    "only one of them; rename one or leave it out of __all__",
                    tool=name,
                )
            )


def _config_file(ws: Path) -> str:
    for name in ("codeact.toml", "pyproject.toml"):
        if (ws / name).is_file():
            return str(ws / name)
    return str(ws)


def module_for_file(workspace: str | os.PathLike[str], file: str | os.PathLike[str]) -> str:
    """The module name the host will import a file under (for editors analysing one buffer)."""
    return module_name_for(Path(file), Path(workspace).resolve())[0]
