"""Model adapters: one async interface over litellm and the scripted stand-in.

litellm takes seconds to import, so it is imported on the first real call, never at module load
(the language server must answer `initialize` quickly). The scripted stand-in is reachable only
through the explicit `scripted:` prefix, so a typo in a model name can never silently replay a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from codeact_lsp.trajectory import Usage

SCRIPTED_PREFIX = "scripted:"
Message = dict[str, Any]
ErrorKind = Literal["timeout", "rate_limit", "transient", "fatal", "exhausted", "config"]


class ModelError(Exception):
    """A model call that failed; `kind` says whether trying again can help."""

    def __init__(self, kind: ErrorKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in ("timeout", "rate_limit", "transient")


class ModelReply(BaseModel):
    text: str
    usage: Usage = Usage()
    duration_ms: float = 0.0
    attempts: int = 1
    cut_off: bool = False  # the reply stopped at the reply cap (finish_reason "length")


class ModelClient(Protocol):
    name: str
    scripted: bool

    async def complete(
        self, messages: list[Message], *, on_delta: Callable[[str], None] | None = None
    ) -> ModelReply: ...


class RetryPolicy(BaseModel):
    """How hard to try: per-call timeout, and exponential backoff with jitter between attempts."""

    timeout: float = 120.0
    retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int, error: ModelError) -> float:
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_delay)
        backoff = self.base_delay * (2 ** (attempt - 1))
        return float(min(self.max_delay, backoff * (0.5 + random.random() / 2)))


async def complete_with_retries(
    model: ModelClient,
    messages: list[Message],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, float, ModelError], None] | None = None,
    on_delta: Callable[[str], None] | None = None,
) -> ModelReply:
    """One logical model call: timeout per attempt, retries for what can recover."""
    started = time.perf_counter()
    attempt = 0
    while True:
        attempt += 1
        try:
            reply = await asyncio.wait_for(
                model.complete(messages, on_delta=on_delta), timeout=policy.timeout
            )
        except TimeoutError:
            error = ModelError("timeout", f"the model did not answer within {policy.timeout:g}s")
        except ModelError as exc:
            error = exc
        else:
            reply.attempts = attempt
            reply.duration_ms = (time.perf_counter() - started) * 1000
            return reply
        if not error.retryable or attempt > policy.retries:
            if error.retryable:
                raise ModelError(
                    error.kind, f"{error} (gave up after {attempt} attempts)", error.retry_after
                ) from error
            raise error
        delay = policy.delay(attempt, error)
        if on_retry is not None:
            on_retry(attempt, delay, error)
        await asyncio.sleep(delay)


class ScriptedModel:
    """Replays a JSON list of replies, in order: the stand-in for tests and the demo.

    An entry is a reply string, or an object that simulates a model misbehaving:
    `{"error": "rate_limit"|"timeout"|"transient"|"fatal", "message": ..., "retry_after": s}` raises,
    `{"reply": "...", "delay": s}` answers after a pause (to exercise timeouts and cancellation).
    """

    scripted = True

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or f"{SCRIPTED_PREFIX}{path}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError("config", f"scripted replies file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelError("config", f"cannot read scripted replies {path}: {exc}") from None
        if not isinstance(data, list):
            raise ModelError("config", f"{path}: expected a JSON list of reply strings")
        self.replies: list[Any] = data
        self.cursor = 0

    def skip(self, n: int) -> None:
        """Start later in the script (a re-run resumes where the original run was)."""
        self.cursor = min(len(self.replies), self.cursor + max(0, n))

    async def complete(
        self, messages: list[Message], *, on_delta: Callable[[str], None] | None = None
    ) -> ModelReply:
        if self.cursor >= len(self.replies):
            raise ModelError(
                "exhausted",
                f"the scripted model ran out of replies ({len(self.replies)} in {self.path})",
            )
        entry = self.replies[self.cursor]
        self.cursor += 1
        if isinstance(entry, dict):
            if "error" in entry:
                kind: ErrorKind = _SCRIPT_ERRORS.get(str(entry["error"]), "fatal")
                raise ModelError(
                    kind,
                    str(entry.get("message", f"scripted {kind} error")),
                    entry.get("retry_after"),
                )
            if entry.get("delay"):
                await asyncio.sleep(float(entry["delay"]))
            text = str(entry.get("reply", ""))
        else:
            text = str(entry)
        if on_delta is not None:
            on_delta(text)
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        # Rough token counts (4 chars/token) so the views have something proportional to show;
        # no price: a stand-in costs nothing, but it is not a free real model either.
        usage = Usage(prompt_tokens=prompt_chars // 4, completion_tokens=len(text) // 4)
        cut = isinstance(entry, dict) and entry.get("finish_reason") == "length"
        return ModelReply(text=text, usage=usage, cut_off=cut)


_SCRIPT_ERRORS: dict[str, ErrorKind] = {
    "timeout": "timeout",
    "rate_limit": "rate_limit",
    "transient": "transient",
    "fatal": "fatal",
}


# A reply cap unless model_params sets one: a model that loops (small local ones do) would
# otherwise talk until the per-call timeout, and then be retried from scratch.
DEFAULT_MAX_TOKENS = 4096
# What the OpenAI client sends to a server that wants no key (it refuses to send nothing).
NO_KEY = "no-key-needed"


def is_local_base(api_base: Any) -> bool:
    """A model server on this machine: it does not need (and should not get) a provider key."""
    if not isinstance(api_base, str) or not api_base:
        return False
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(api_base if "//" in api_base else f"//{api_base}").hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def keyless(params: dict[str, Any]) -> bool:
    """No key is demanded: a loopback `api_base` (or, without one, a loopback OPENAI_BASE_URL /
    OPENAI_API_BASE, which litellm reads too), or `keyless = true` for a self-hosted server."""
    if params.get("keyless"):
        return True
    base = params.get("api_base") or os.environ.get("OPENAI_BASE_URL")
    return is_local_base(base or os.environ.get("OPENAI_API_BASE"))


class LiteLLMModel:
    """Any model litellm knows ("openai/gpt-4o-mini", "anthropic/...", "ollama/...").

    `params` go to litellm as they are, except our own: `keyless` (the server needs no key) and
    `api_key_env` (the environment variable that holds the key)."""

    scripted = False

    def __init__(self, name: str, *, stream: bool = False, **params: Any) -> None:
        self.name = name
        self.stream = stream
        # One retry layer: ours (RetryPolicy), so every retry is a `model_retry` event and the
        # per-call timeout covers one attempt. The provider SDKs would otherwise retry 429s
        # silently inside a call. An explicit `max_retries` in the params still wins.
        params.setdefault("max_retries", 0)
        if "max_tokens" not in params and "max_completion_tokens" not in params:
            params["max_tokens"] = DEFAULT_MAX_TOKENS
        self._keyless = keyless(params)
        params.pop("keyless", None)
        env_name = params.pop("api_key_env", None)
        if env_name:
            value = os.environ.get(str(env_name))
            if not value:
                raise ModelError(
                    "config", f"model_params.api_key_env names {env_name}, which is not set"
                )
            params["api_key"] = value
        self.params = params
        self._secrets = _secrets(params)
        self._key_checked = False

    def __repr__(self) -> str:  # never the key: params may hold `api_key`
        return f"LiteLLMModel({self.name!r})"

    async def complete(
        self, messages: list[Message], *, on_delta: Callable[[str], None] | None = None
    ) -> ModelReply:
        # the first import takes seconds: never on the event loop (the editor must stay live)
        litellm = _LITELLM or await asyncio.to_thread(_import_litellm)
        if not self._key_checked:
            self._key_checked = True
            if (
                self._keyless
                and not self.params.get("api_key")
                and _missing_keys(litellm, self.name, self.params)
            ):
                self.params["api_key"] = NO_KEY  # the client insists on sending something
        stream = self.stream or on_delta is not None
        try:
            if stream:
                response = await self._streamed(litellm, messages, on_delta)
            else:
                response = await litellm.acompletion(
                    model=self.name, messages=messages, **self.params
                )
        except Exception as exc:
            error = _classify(self.name, litellm, exc, self.params)
            error.args = (_redact(str(error), self._secrets),)
            raise error from None  # the chained exception's text may hold the key
        # no choices (a provider's content filter) or no content: an empty reply, which the
        # loop turns into a step telling the model how to act
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        text = str(getattr(message, "content", None) or "")
        cut = bool(choices) and getattr(choices[0], "finish_reason", None) == "length"
        return ModelReply(text=text, usage=_usage(litellm, response), cut_off=cut)

    async def _streamed(
        self, litellm: Any, messages: list[Message], on_delta: Callable[[str], None] | None
    ) -> Any:
        chunks = []
        stream = await litellm.acompletion(
            model=self.name,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **self.params,
        )
        async for chunk in stream:
            chunks.append(chunk)
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta and on_delta is not None:
                on_delta(delta)
        return litellm.stream_chunk_builder(chunks, messages=messages)


_LITELLM: Any = None


def _import_litellm() -> Any:
    global _LITELLM
    # The cost map would otherwise be fetched from the network at import (seconds, and no network
    # here); the copy bundled with litellm is what cost lookups use.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    # The openai client imports its resource modules at its first request (over a second
    # here), which would block the event loop the first call runs on; do it on this thread.
    with contextlib.suppress(ImportError):
        import openai.resources  # noqa: F401
    _LITELLM = litellm
    return litellm


async def preload_litellm() -> None:
    """Import litellm on a worker thread ahead of the first real call (it takes seconds); a
    server can start this in the background once it has answered `initialize`."""
    if _LITELLM is None:
        await asyncio.to_thread(_import_litellm)


def _usage(litellm: Any, response: Any) -> Usage:
    raw = getattr(response, "usage", None)
    prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
    completion = int(getattr(raw, "completion_tokens", 0) or 0)
    cost: float | None
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:
        cost = None  # unknown price: say so rather than report a free call
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)


# What the openai client says when it has no key at all; litellm reports it as a server error.
_NO_KEY_MESSAGES = ("Missing credentials", "api_key client option must be set")
_SECRET_ENV = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def _secrets(params: dict[str, Any]) -> list[str]:
    """Values that must never reach a message (and so a run file): keys passed as parameters and
    the credentials in this process's environment (providers echo a rejected key back)."""
    found = [str(v) for k, v in params.items() if "key" in k.lower() or "token" in k.lower()]
    found += [v for k, v in os.environ.items() if any(m in k.upper() for m in _SECRET_ENV)]
    return sorted({s for s in found if len(s) >= 8}, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _classify(model: str, litellm: Any, exc: Exception, params: dict[str, Any]) -> ModelError:
    name = type(exc).__name__
    message = f"{name}: {exc}"
    if name == "AuthenticationError" or any(m in str(exc) for m in _NO_KEY_MESSAGES):
        # no key, or a refused one: retrying cannot help, and the fix is in the configuration
        return ModelError("config", f"{message} ({_key_hint(model, litellm, params)})")
    if name == "RateLimitError":
        # litellm keeps the provider's headers here; its `response` is a stand-in without them
        headers = getattr(exc, "litellm_response_headers", None) or getattr(
            getattr(exc, "response", None), "headers", None
        )
        return ModelError("rate_limit", message, _retry_after(headers))
    if name in ("Timeout", "APITimeoutError") or isinstance(exc, TimeoutError):
        return ModelError("timeout", message)
    if name in (
        "APIConnectionError",
        "ServiceUnavailableError",
        "InternalServerError",
        "APIError",
    ):
        return ModelError("transient", message)
    return ModelError("fatal", message)


def _retry_after(headers: Any) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms` (OpenAI), else `retry-after` in
    seconds (an HTTP date is left to the backoff)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / scale)
        except (TypeError, ValueError):
            continue
    return None


def _key_hint(model: str, litellm: Any, params: dict[str, Any]) -> str:
    if params.get("api_key"):
        return "the api_key passed in model_params was refused"
    try:
        missing = litellm.validate_environment(model=model).get("missing_keys") or []
    except Exception:
        missing = []
    missing = [str(k) for k in missing if not _is_address(str(k))]
    if missing:
        return f"set {' and '.join(missing)} in the environment, or pass api_key in model_params"
    return "check the API key for this model"


async def check_model(name: str, **params: Any) -> str | None:
    """What stops `name` from working before any call is made (unknown provider, missing key),
    as a sentence a person can act on; None when nothing is known to be wrong. Imports litellm
    (seconds, on a thread), so callers that must answer quickly run it in the background."""
    if name.startswith(SCRIPTED_PREFIX):
        return None
    litellm = _LITELLM or await asyncio.to_thread(_import_litellm)
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=name, api_base=params.get("api_base"))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"model {name!r}: litellm does not know which provider serves it ({first[:160]});"
            " use provider/model, e.g. openai/gpt-4o-mini, or scripted:PATH for the stand-in"
        )
    env_name = params.get("api_key_env")
    if env_name and not os.environ.get(str(env_name)):
        return f"model_params.api_key_env names {env_name}, which is not set in the environment"
    if params.get("api_key") or env_name or keyless(params):
        return None
    try:
        env = litellm.validate_environment(model=name, api_base=params.get("api_base"))
    except Exception:
        return None
    # only credentials block a run: a missing *_API_BASE has a default (ollama: localhost)
    missing = [str(k) for k in env.get("missing_keys") or [] if not _is_address(str(k))]
    if missing and not env.get("keys_in_environment"):
        return (
            f"model {name!r} ({provider}) needs {' and '.join(missing)} in the environment"
            " (or api_key in model_params)"
        )
    return None


def _missing_keys(litellm: Any, model: str, params: dict[str, Any]) -> list[str]:
    try:
        env = litellm.validate_environment(model=model, api_base=params.get("api_base"))
    except Exception:
        return []
    if env.get("keys_in_environment"):
        return []
    return [str(k) for k in env.get("missing_keys") or [] if not _is_address(str(k))]


def _is_address(variable: str) -> bool:
    return variable.upper().endswith(("_API_BASE", "_BASE_URL", "_API_VERSION", "_ENDPOINT"))


def resolve_model_name(request_model: str | None, config_model: str | None) -> str:
    """request → config → $CODEACT_MODEL; with none, an error that says how to set one."""
    name = request_model or config_model or os.environ.get("CODEACT_MODEL")
    if not name:
        raise ModelError(
            "config",
            "no model configured: set `model` in [tool.codeact] (pyproject.toml) or codeact.toml,"
            " pass --model, or set CODEACT_MODEL (e.g. openai/gpt-4o-mini)",
        )
    return name


def make_model(name: str, *, base: Path | None = None, **params: Any) -> ModelClient:
    """`scripted:PATH` (PATH relative to `base`, the workspace) → ScriptedModel; else litellm."""
    if name.startswith(SCRIPTED_PREFIX):
        raw = name[len(SCRIPTED_PREFIX) :].strip()
        if not raw:
            raise ModelError("config", "scripted: needs a path to a JSON list of replies")
        path = Path(os.path.expanduser(raw))
        if not path.is_absolute() and base is not None:
            path = base / path
        return ScriptedModel(path, name=name)
    return LiteLLMModel(name, **params)
