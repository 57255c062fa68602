"""The prompt: instructions, tools as Python stubs, inputs, and the steps so far.

Growth must stay linear in the number of steps: each step adds its code once (as the assistant turn)
and an observation capped at head + tail, so a chatty step cannot crowd out the task.
"""

from __future__ import annotations

import ast
import functools
import json
import textwrap
from collections.abc import Collection, Sequence
from typing import Any

from codeact_lsp.engine.contract import bound_names, redefined, redefinition_warning, resolvable
from codeact_lsp.engine.model import Message
from codeact_lsp.engine.parsing import NO_CODE_HINT, SKIPPED_HINT, parse_reply, reply_thought
from codeact_lsp.engine.signature import Signature
from codeact_lsp.tools.models import ToolSchema
from codeact_lsp.trajectory import Step, Trajectory

CUT_OFF_HINT = (
    "Your reply was cut off at the reply length limit (max_tokens): keep each step short, with"
    " little prose, and close the code block."
)
OBSERVATION_CHARS = 2000  # per stream, head + tail
DOC_CHARS = 700
INPUT_CHARS = 2000

INSTRUCTIONS = """\
You solve the task by writing Python code, one step at a time. Each reply contains one ```python
block; it runs in a persistent Python session (variables, imports and functions stay for the next
steps), and you then see what it printed, the value of its last expression, and any error.
The tools below are already defined in that session: call them as ordinary synchronous functions
(never `await` them, never import them). Print intermediate results you need to look at; keep each
step short and check results before relying on them. When you know the answer, call
{final_call} in code; its values are checked against the expected types.
The session has no network and no access to your files apart from what the tools give you. Each
step may run for at most {timeout:g} seconds."""


def tool_stub(schema: ToolSchema, bound: Collection[str] | None = None) -> str:
    """`def name(...) -> T:` plus the docstring, as the model will see the tool: valid Python in
    the session as written (a model that copies it must not hit a NameError)."""
    sig = schema.signature.strip() or f"def {schema.name}(*args, **kwargs)"
    if not sig.startswith(("def ", "async def ")):
        sig = f"def {sig}"
    sig = sig.removeprefix("async ")  # in the sandbox every tool is a plain call
    sig, defaults = session_valid(sig.rstrip(":"), bound_names([sig]) if bound is None else bound)
    doc = textwrap.dedent(schema.doc or "").strip()
    if defaults:
        note = "Defaults: " + ", ".join(defaults)
        doc = f"{doc}\n{note}" if doc else note
    if len(doc) > DOC_CHARS:
        doc = doc[: DOC_CHARS - 3] + "..."
    if schema.confirm:
        note = "(A person must approve each step that calls this tool before it runs.)"
        doc = f"{doc}\n{note}" if doc else note
    body = textwrap.indent(f'"""{doc}"""' if doc else "...", "    ")
    return f"{sig.rstrip(':')}:\n{body}"


def session_valid(sig: str, bound: Collection[str]) -> tuple[str, list[str]]:
    """`sig` with every annotation that names something the session does not bind quoted (a
    string annotation is never evaluated) and every such default replaced by `...`; returns the
    defaults it replaced as `name=text`, for the docstring. Unparseable text comes back as is."""
    text = sig + ": ..."
    try:
        fn = ast.parse(text).body[0]
    except (SyntaxError, ValueError, IndexError):
        return sig, []
    if not isinstance(fn, ast.FunctionDef):
        return sig, []
    edits: list[tuple[int, int, str]] = []
    moved: list[str] = []
    a = fn.args
    params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    params += [x for x in (a.vararg, a.kwarg) if x is not None]
    for ann in [p.annotation for p in params if p.annotation is not None] + [fn.returns]:
        if ann is not None and not resolvable(ann, bound):
            start, end = _span(text, ann)
            edits.append((start, end, repr(text[start:end])))
    positional = [*a.posonlyargs, *a.args]
    pairs = list(zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True))
    pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
    for param, default in pairs:
        if not resolvable(default, bound):
            start, end = _span(text, default)
            moved.append(f"{param.arg}={text[start:end]}")
            edits.append((start, end, "..."))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text.removesuffix(": ..."), moved


def _span(text: str, node: ast.expr) -> tuple[int, int]:
    """Character offsets of a node (ast columns count UTF-8 bytes)."""
    lines = text.splitlines(keepends=True)

    def offset(line: int, col: int) -> int:
        head = lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace")
        return sum(len(x) for x in lines[: line - 1]) + len(head)

    assert node.end_lineno is not None and node.end_col_offset is not None
    return offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset)


def final_answer_stub(signature: Signature, bound: Collection[str] | None = None) -> str:
    lines = []
    for f in signature.outputs:
        kind = f.type_text or "any JSON value (str, number, bool, list, dict, None)"
        desc = f" — {f.description}" if f.description else ""
        lines.append(f"{f.name}: {kind}{desc}")
    doc = "Finish the task with these values:\n" + "\n".join(lines)
    stub = signature.final_answer_stub()
    stub, _ = session_valid(stub, bound_names([stub]) if bound is None else bound)
    return f"{stub}:\n" + textwrap.indent(f'"""{doc}"""', "    ")


def system_message(
    tools: Sequence[ToolSchema], signature: Signature, *, timeout: float = 30.0
) -> str:
    parts = [INSTRUCTIONS.format(final_call=signature.final_answer_call(), timeout=timeout)]
    if signature.instructions:
        parts.append(signature.instructions)
    bound = bound_names(t.signature for t in tools)  # what the session's prelude binds
    stubs = [tool_stub(t, bound) for t in tools] + [final_answer_stub(signature, bound)]
    parts.append("Tools:\n```python\n" + "\n\n".join(stubs) + "\n```")
    return "\n\n".join(parts)


def task_message(task: str, inputs: dict[str, Any], signature: Signature) -> str:
    parts = [f"Task: {task}"]
    shown = {k: v for k, v in inputs.items() if not (k == "task" and v == task)}
    if shown:
        lines = []
        for f in signature.inputs:
            if f.name in shown:
                kind = f": {f.type_text}" if f.type_text else ""
                lines.append(f"{f.name}{kind} = {_cap(_literal(shown[f.name]), INPUT_CHARS)}")
        parts.append("Inputs (already defined as variables in the session):\n" + "\n".join(lines))
    outs = ", ".join(f.render() for f in signature.outputs)
    parts.append(f"Expected output: {outs} — finish with {signature.final_answer_call()}.")
    return "\n\n".join(parts)


def history_message(previous: Sequence[Trajectory]) -> str:
    """Earlier tasks of the same session (follow-ups): their state is still in the session."""
    parts = ["Earlier in this session (its variables still exist):"]
    for traj in previous:
        codes = [s.code for s in traj.steps if s.status == "ok" and s.code]
        outcome = f"answered {json.dumps(traj.outputs)}" if traj.outputs else f"ended {traj.status}"
        parts.append(f"- Task: {traj.task} ({outcome})")
        if codes:
            parts.append("```python\n" + _cap("\n\n".join(codes), 3000) + "\n```")
    return "\n".join(parts)


@functools.lru_cache(maxsize=2048)
def _skipped(reply: str) -> tuple[str, ...]:
    """What a reply held that was not run (each prompt shows every earlier step: parsed once)."""
    return tuple(sorted(set(parse_reply(reply).skipped)))


def observation(step: Step, reserved: Collection[str] = ()) -> str:
    """What the model sees after a step ran; `reserved`: the tool names and final_answer, which a
    step must not redefine."""
    skipped = list(_skipped(step.reply)) if step.reply else []
    if step.status == "no_code":
        hint = f"{NO_CODE_HINT} {SKIPPED_HINT}" if skipped else NO_CODE_HINT
        return f"{hint} {CUT_OFF_HINT}" if step.cut_off else hint
    if step.status == "rejected":
        why = step.feedback or "no reason given"
        return f"The user rejected this step before it ran. Their feedback: {why}\nRevise your approach."
    parts: list[str] = []
    if step.edited:
        parts.append("(The user edited your code before it ran; the code above is what ran.)")
    if step.stdout:
        parts.append("Output:\n" + _cap(step.stdout, OBSERVATION_CHARS))
    if step.stderr:
        parts.append("Stderr:\n" + _cap(step.stderr, OBSERVATION_CHARS // 2))
    if step.value is not None:
        parts.append("Value: " + _cap(step.value, OBSERVATION_CHARS // 2))
    if step.error is not None:
        where = f" (line {step.error.line})" if step.error.line else ""
        text = f"Error{where}: {step.error.type}: {step.error.message}"
        if step.error.traceback:
            text += "\n" + _cap(step.error.traceback, OBSERVATION_CHARS // 2)
        parts.append(text)
    if step.state_lost:
        parts.append(
            "The session had to be restarted: variables from earlier steps are gone; recompute"
            " what you need."
        )
    shadowed = redefined(step.code, reserved)
    if shadowed:
        parts.append(redefinition_warning(shadowed))
    if not parts:
        parts.append("(no output; print what you want to see)")
    if skipped:
        parts.append("Not run: " + "; ".join(skipped) + ".")
    if step.cut_off:
        parts.append(CUT_OFF_HINT)
    return f"Observation (step {step.index}):\n" + "\n".join(parts)


def assistant_turn(step: Step) -> str:
    thought = reply_thought(step.reply) if step.reply else ""
    code = f"```python\n{step.code}\n```" if step.code else ""
    return "\n\n".join(p for p in (thought, code) if p) or step.reply or "(empty reply)"


def build_messages(
    *,
    tools: Sequence[ToolSchema],
    signature: Signature,
    task: str,
    inputs: dict[str, Any],
    steps: Sequence[Step],
    previous: Sequence[Trajectory] = (),
    timeout: float = 30.0,
) -> list[Message]:
    messages: list[Message] = [
        {"role": "system", "content": system_message(tools, signature, timeout=timeout)}
    ]
    user = task_message(task, inputs, signature)
    if previous:
        user = history_message(previous) + "\n\n" + user
    messages.append({"role": "user", "content": user})
    reserved = {t.name for t in tools} | {"final_answer"}
    for step in steps:
        if step.status in ("proposed", "awaiting_approval", "running", "cancelled"):
            continue
        messages.append({"role": "assistant", "content": assistant_turn(step)})
        messages.append({"role": "user", "content": observation(step, reserved)})
    return messages


def _literal(value: Any) -> str:
    return repr(value)


def _cap(text: str, limit: int) -> str:
    """Head and tail of a long text, with how much was left out (errors usually sit at the end)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    skipped = len(text) - head - tail
    return f"{text[:head]}\n... [{skipped} characters omitted] ...\n{text[-tail:]}"
