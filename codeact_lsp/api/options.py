"""`CodeAct(...)`'s keyword arguments turned into what the engine takes: an approval mode and a
reviewer, and one `CodeActConfig` (the workspace's, then the keywords over it)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from codeact_lsp.api.approval import Reviewer
from codeact_lsp.config import Approval, CodeActConfig, SandboxSettings, load_config

_MODES: tuple[str, ...] = get_args(Approval)


def split_approval(approval: Approval | Reviewer | None) -> tuple[Approval | None, Reviewer | None]:
    if approval is None:
        return None, None
    if isinstance(approval, str):
        if approval not in _MODES:
            raise ValueError(f"approval must be one of {', '.join(_MODES)} or a callable")
        return approval, None
    if callable(approval):
        return "review", approval
    raise TypeError(f"approval must be a mode string or a callable, got {approval!r}")


def build_config(
    config: CodeActConfig | None,
    workspace: str | os.PathLike[str] | None,
    model: str | None,
    max_iters: int | None,
    approval: Approval | None,
    confirm: Sequence[str],
    sandbox: SandboxSettings | Mapping[str, Any] | None,
    timeout: float | None,
) -> CodeActConfig:
    if config is None:
        if workspace is not None:
            loaded = load_config(workspace)
            if loaded.problems:
                raise ValueError("; ".join(str(p) for p in loaded.problems))
            config = loaded.config
        else:
            config = CodeActConfig()
    data = config.model_dump()
    if model is not None:
        data["model"] = model
    if max_iters is not None:
        data["max_iters"] = max_iters
    if approval is not None:
        data["approval"] = approval
    if confirm:
        data["confirm"] = list(confirm)
    if sandbox is not None:
        extra = sandbox.model_dump() if isinstance(sandbox, SandboxSettings) else dict(sandbox)
        data["sandbox"] = {**data["sandbox"], **extra}
    if timeout is not None:
        data["sandbox"]["timeout"] = timeout
    return CodeActConfig.model_validate(data)
