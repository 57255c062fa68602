"""What a tool module's names are bound to, read from its `ast`: definitions, assignments,
imports and `__all__`, followed through aliases, bound methods, callable instances and
`functools.partial`; and the signature the model is shown for each."""

from __future__ import annotations

import ast

from codeact_lsp.tools.models import ToolKind

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef


def source_text(node: ast.AST) -> str:
    """Source text of an annotation or default; the common shapes without `ast.unparse` (which
    dominates the cost of rendering signatures)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and node.value is not Ellipsis:
        return repr(node.value)
    if isinstance(node, ast.Attribute):
        return f"{source_text(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        inner = node.slice
        if isinstance(inner, ast.Tuple) and inner.elts:
            return f"{source_text(node.value)}[{', '.join(source_text(e) for e in inner.elts)}]"
        return f"{source_text(node.value)}[{source_text(inner)}]"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return f"{source_text(node.left)} | {source_text(node.right)}"
    return ast.unparse(node)


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


class ModuleNames:
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


class Resolved:
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


def resolve(mod: ModuleNames, name: str, depth: int = 0) -> Resolved | None:
    """What a module-level name is bound to, followed through aliases, bound methods of module-level
    instances, callable instances and `functools.partial`."""
    if depth > 5:
        return None
    node = mod.defs.get(name)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return Resolved(node, "async" if isinstance(node, ast.AsyncFunctionDef) else "function")
    if isinstance(node, ast.ClassDef):
        return None
    bound = mod.assigns.get(name)
    if bound is None:
        return None
    value = bound[1]
    if isinstance(value, ast.Name):
        return resolve(mod, value.id, depth + 1)
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
                return Resolved(meth, kind, 0 if is_static else 1)
        if isinstance(mod.defs.get(owner), ast.ClassDef):
            meth = mod.class_method(owner, value.attr)
            if meth is not None:
                is_cm = any(
                    isinstance(d, ast.Name) and d.id == "classmethod" for d in meth.decorator_list
                )
                return Resolved(meth, "method", 1 if is_cm else 0)
        return Resolved(None, "method")
    if isinstance(value, ast.Call):
        if _is_partial(value.func) and value.args:
            inner = value.args[0]
            base = resolve(mod, inner.id, depth + 1) if isinstance(inner, ast.Name) else None
            kw = frozenset(k.arg for k in value.keywords if k.arg)
            if base is None:
                return Resolved(None, "partial")
            return Resolved(base.func, "partial", base.drop + len(value.args) - 1, kw)
        if isinstance(value.func, ast.Name) and isinstance(
            mod.defs.get(value.func.id), ast.ClassDef
        ):
            call = mod.class_method(value.func.id, "__call__")
            if call is not None:
                return Resolved(call, "callable", 1)
            return None  # an instance that is not callable: not a tool
        return Resolved(None, "callable")
    if isinstance(value, ast.Lambda):
        return Resolved(None, "function")
    return None


def render_signature(name: str, res: Resolved) -> str:
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
        text = arg.arg + (f": {source_text(arg.annotation)}" if arg.annotation else "")
        default = defaults[i]
        if arg.arg in res.kw_bound:
            text += " = ..."
        elif default is not None:
            text += (" = " if arg.annotation else "=") + source_text(default)
        parts.append(text)
        if i < n_posonly:
            kept_posonly = True
    if kept_posonly:
        parts.append("/")
    if a.vararg:
        ann = f": {source_text(a.vararg.annotation)}" if a.vararg.annotation else ""
        parts.append(f"*{a.vararg.arg}{ann}")
    elif a.kwonlyargs:
        parts.append("*")
    for arg, kd in zip(a.kwonlyargs, a.kw_defaults, strict=False):
        text = arg.arg + (f": {source_text(arg.annotation)}" if arg.annotation else "")
        if arg.arg in res.kw_bound:
            text += " = ..."
        elif kd is not None:
            text += (" = " if arg.annotation else "=") + source_text(kd)
        parts.append(text)
    if a.kwarg:
        ann = f": {source_text(a.kwarg.annotation)}" if a.kwarg.annotation else ""
        parts.append(f"**{a.kwarg.arg}{ann}")
    ret = f" -> {source_text(func.returns)}" if func.returns else ""
    return f"def {name}({', '.join(parts)}){ret}"
