"""Model adapter: scripted stand-in, retries with backoff, timeouts, name resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeact_lsp.engine.model import (
    LiteLLMModel,
    ModelError,
    RetryPolicy,
    ScriptedModel,
    complete_with_retries,
    make_model,
    resolve_model_name,
)

FAST = RetryPolicy(timeout=5, retries=3, base_delay=0.001, max_delay=0.01)


def _script(tmp_path: Path, replies: list[object]) -> Path:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(replies))
    return path


async def test_scripted_replays_in_order_then_says_exhausted(tmp_path: Path) -> None:
    model = make_model("scripted:replies.json", base=_script(tmp_path, ["one", "two"]).parent)
    assert model.scripted and isinstance(model, ScriptedModel)
    msgs = [{"role": "user", "content": "hi"}]
    assert (await model.complete(msgs)).text == "one"
    assert (await model.complete(msgs)).text == "two"
    with pytest.raises(ModelError, match="ran out of replies") as info:
        await model.complete(msgs)
    assert info.value.kind == "exhausted" and not info.value.retryable


async def test_rate_limit_then_success_is_retried(tmp_path: Path) -> None:
    path = _script(tmp_path, [{"error": "rate_limit", "retry_after": 0.001}, "ok"])
    retries: list[int] = []
    reply = await complete_with_retries(
        ScriptedModel(path), [], FAST, on_retry=lambda a, d, e: retries.append(a)
    )
    assert reply.text == "ok" and reply.attempts == 2 and retries == [1]


async def test_timeout_is_retried_then_gives_up(tmp_path: Path) -> None:
    slow = {"reply": "late", "delay": 5}
    path = _script(tmp_path, [slow, slow])
    policy = RetryPolicy(timeout=0.05, retries=1, base_delay=0.001)
    with pytest.raises(ModelError, match="gave up after 2 attempts") as info:
        await complete_with_retries(ScriptedModel(path), [], policy)
    assert info.value.kind == "timeout"


async def test_fatal_error_is_not_retried(tmp_path: Path) -> None:
    path = _script(tmp_path, [{"error": "fatal", "message": "bad key"}, "never"])
    model = ScriptedModel(path)
    with pytest.raises(ModelError, match="bad key"):
        await complete_with_retries(model, [], FAST)
    assert model.cursor == 1


def test_scripted_needs_explicit_prefix_and_a_real_file(tmp_path: Path) -> None:
    assert isinstance(make_model("openai/gpt-4o-mini"), LiteLLMModel)
    assert isinstance(make_model("replies.json"), LiteLLMModel)  # no prefix: never scripted
    with pytest.raises(ModelError, match="not found"):
        make_model("scripted:missing.json", base=tmp_path)
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(ModelError, match="JSON list"):
        make_model("scripted:bad.json", base=tmp_path)


def test_model_name_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEACT_MODEL", raising=False)
    assert resolve_model_name("a", "b") == "a"
    assert resolve_model_name(None, "b") == "b"
    with pytest.raises(ModelError, match="no model configured"):
        resolve_model_name(None, None)
    monkeypatch.setenv("CODEACT_MODEL", "c")
    assert resolve_model_name(None, None) == "c"


def test_backoff_grows_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=10)
    err = ModelError("transient", "x")
    assert 0.5 <= policy.delay(1, err) <= 1
    assert 2 <= policy.delay(3, err) <= 4
    assert policy.delay(9, err) <= 10
    assert policy.delay(1, ModelError("rate_limit", "x", retry_after=3)) == 3


def test_retry_after_headers() -> None:
    from codeact_lsp.engine.model import _retry_after

    assert _retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert _retry_after(None) is None
