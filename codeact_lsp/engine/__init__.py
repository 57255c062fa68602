"""The CodeAct loop: signature, prompt, model adapter, parsing, events, runs (docs/architecture.md)."""

from codeact_lsp.engine.approval import Decision
from codeact_lsp.engine.engine import Engine, EngineError
from codeact_lsp.engine.events import RunEvent
from codeact_lsp.engine.model import (
    LiteLLMModel,
    ModelClient,
    ModelError,
    ModelReply,
    RetryPolicy,
    ScriptedModel,
    check_model,
    make_model,
    resolve_model_name,
)
from codeact_lsp.engine.replay import ReplayMode
from codeact_lsp.engine.run import RunHandle, RunRequest
from codeact_lsp.engine.runstate import RunSummary, acceptance_state
from codeact_lsp.engine.signature import Signature, SignatureError
from codeact_lsp.engine.store import runs_dir as default_runs_dir

__all__ = [
    "Decision",
    "Engine",
    "EngineError",
    "LiteLLMModel",
    "ModelClient",
    "ModelError",
    "ModelReply",
    "ReplayMode",
    "RetryPolicy",
    "RunEvent",
    "RunHandle",
    "RunRequest",
    "RunSummary",
    "ScriptedModel",
    "Signature",
    "SignatureError",
    "acceptance_state",
    "check_model",
    "default_runs_dir",  # kept for callers of the first API: the run store's rule
    "make_model",
    "resolve_model_name",
]
