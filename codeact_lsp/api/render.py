"""Plain-text rendering of a trajectory, for `inspect_history()` in a terminal or notebook."""

from __future__ import annotations

from codeact_lsp.trajectory import Step, Trajectory


def render_trajectory(traj: Trajectory) -> str:
    head = f"run {traj.id or '(not started)'} · {traj.status} · model {traj.model}"
    if traj.scripted:
        head += " (scripted replies, not a model)"
    lines = [head, f"task: {traj.task}"]
    if traj.inputs:
        lines.append("inputs: " + ", ".join(f"{k}={v!r}" for k, v in traj.inputs.items()))
    for step in traj.steps:
        lines.extend(_step(step))
    if traj.outputs is not None:
        lines.append("outputs: " + ", ".join(f"{k}={v!r}" for k, v in traj.outputs.items()))
    if traj.error:
        lines.append(f"error: {traj.error}")
    u = traj.usage
    cost = "unknown cost" if u.cost_usd is None else f"${u.cost_usd:.4f}"
    lines.append(
        f"usage: {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, {cost}"
    )
    return "\n".join(lines)


def _step(step: Step) -> list[str]:
    out = [f"--- step {step.index} [{step.status}] {step.duration_ms:.1f} ms"]
    out.extend("  > " + line for line in step.code.splitlines())
    if step.feedback:
        out.append(f"  rejected: {step.feedback}")
    for call in step.tool_calls:
        res = f"error {call.error}" if call.error else repr(call.result)
        out.append(f"  tool {call.name}({call.args}) -> {res}")
    if step.stdout:
        out.extend("  | " + line for line in step.stdout.rstrip("\n").splitlines())
    if step.error is not None:
        where = f" (line {step.error.line})" if step.error.line else ""
        out.append(f"  ! {step.error.type}: {step.error.message}{where}")
    return out
