"""The real model path: real litellm and the openai client over real HTTP, against a local
OpenAI-compatible server (no LLM API is reachable here). litellm takes seconds to import, so it is
imported once for the module and these tests are few."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import EXAMPLE, code
from openai_stub import COMPLETION_TOKENS, PROMPT_TOKENS, OpenAIStub

from codeact_lsp.cli import main
from codeact_lsp.config import CodeActConfig
from codeact_lsp.engine import (
    Engine,
    ModelError,
    RetryPolicy,
    RunEvent,
    RunRequest,
    check_model,
    make_model,
)
from codeact_lsp.engine.model import LiteLLMModel, _import_litellm, complete_with_retries
from codeact_lsp.tools import ToolHost
from codeact_lsp.trajectory import Trajectory

KEY = "sk-test-9f8e7d6c5b4a39281706"  # a made-up key that must never be written anywhere
ENV_KEY = "sk-env-0123456789abcdef0123"
QUOTE_TASK = "What does it cost in EUR to buy 3 units of SKU-42 and ship them to Germany (DE)?"
FAST = RetryPolicy(timeout=20, retries=2, base_delay=0.001, max_delay=0.01)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    _import_litellm()  # once per module: it takes seconds
    server = OpenAIStub()
    yield server
    server.close()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider key in this process's environment, as a user would have it."""
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)


@pytest.fixture
async def make_engine(
    workspace: Path, config: CodeActConfig, host: ToolHost, tmp_path: Path
) -> AsyncIterator[Any]:
    engines: list[Engine] = []

    def make(**kwargs: Any) -> Engine:
        kwargs.setdefault("retry", FAST)
        eng = Engine(config, host, workspace=workspace, runs_dir=tmp_path / "runs", **kwargs)
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        await eng.close()


async def _run(eng: Engine, task: str, model: str) -> tuple[Trajectory, list[RunEvent]]:
    handle = await eng.start(RunRequest(task=task, model=model))
    events = [e async for e in handle.subscribe()]
    traj = await asyncio.wait_for(handle.wait(), timeout=60)
    await eng.flushed()
    return traj, events


async def test_reply_usage_and_cost_known_and_unknown(stub: OpenAIStub) -> None:
    stub.replies["cost"] = ["the reply"]
    known = make_model("openai/gpt-4o-mini", api_base=stub.base("reply-cost"), api_key=KEY)
    assert isinstance(known, LiteLLMModel) and not known.scripted and KEY not in repr(known)
    reply = await complete_with_retries(known, MESSAGES, FAST)
    assert reply.text == "the reply" and reply.attempts == 1
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 9)
    assert reply.usage.cost_usd is not None and reply.usage.cost_usd > 0  # priced by name
    # the key and base went through to the server
    assert stub.headers["reply-cost"][-1]["authorization"] == f"Bearer {KEY}"
    assert stub.requests["reply-cost"][-1]["model"] == "gpt-4o-mini"

    unknown = make_model("openai/house-model-7", api_base=stub.base("reply-cost"), api_key=KEY)
    reply = await complete_with_retries(unknown, MESSAGES, FAST)
    assert reply.usage.prompt_tokens == PROMPT_TOKENS
    assert reply.usage.cost_usd is None  # unknown price: null, not free


async def test_429_is_retried_by_our_policy_honouring_retry_after(stub: OpenAIStub) -> None:
    stub.replies["429"] = ["after the wait"]
    model = make_model("openai/gpt-4o-mini", api_base=stub.base("ratelimit-429"), api_key=KEY)
    retries: list[tuple[int, float, str]] = []
    reply = await complete_with_retries(
        model,
        MESSAGES,
        RetryPolicy(timeout=20, retries=2, base_delay=5, max_delay=10),
        on_retry=lambda attempt, delay, err: retries.append((attempt, delay, err.kind)),
    )
    assert reply.text == "after the wait" and reply.attempts == 2
    # one visible retry (the SDK's own silent retries are off), waiting what the server said (0 s
    # here, where the backoff alone would have waited seconds)
    assert retries == [(1, 0.0, "rate_limit")]
    assert stub.calls["ratelimit-429"] == 2

    stub.replies["500"] = ["after the hiccup"]
    model = make_model("openai/gpt-4o-mini", api_base=stub.base("flaky-500"), api_key=KEY)
    kinds: list[str] = []
    reply = await complete_with_retries(
        model, MESSAGES, FAST, on_retry=lambda attempt, delay, err: kinds.append(err.kind)
    )
    assert reply.text == "after the hiccup" and kinds == ["transient"]

    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = make_model("openai/gpt-4o-mini", api_base=f"http://127.0.0.1:{port}/v1", api_key=KEY)
    with pytest.raises(ModelError, match="gave up after 3 attempts") as info:
        await complete_with_retries(down, MESSAGES, FAST)
    assert info.value.kind == "transient" and KEY not in str(info.value)


async def test_model_timeout_fails_the_run_with_a_clear_error(
    stub: OpenAIStub, make_engine: Any
) -> None:
    eng = make_engine(
        retry=RetryPolicy(timeout=0.5, retries=1, base_delay=0.001),
        model_params={"api_base": stub.base("slow-t"), "api_key": KEY},
    )
    traj, events = await _run(eng, "t", "openai/gpt-4o-mini")
    assert traj.status == "failed" and traj.error is not None
    assert traj.error.startswith("model error (timeout): the model did not answer within 0.5s")
    assert "gave up after 2 attempts" in traj.error
    retry = [e for e in events if e.kind == "model_retry"]
    assert len(retry) == 1 and retry[0].data["error_kind"] == "timeout"
    assert events[-1].kind == "failed" and events[-1].data["error"] == traj.error

    # cancelling while the HTTP request is in flight ends the run at once
    eng.retry = RetryPolicy(timeout=60, retries=0)
    stub.slow_arrived.clear()
    handle = await eng.start(RunRequest(task="t", model="openai/gpt-4o-mini"))
    assert await asyncio.to_thread(stub.slow_arrived.wait, 30)  # the request is at the server
    assert handle.cancel()
    traj = await asyncio.wait_for(handle.wait(), timeout=10)
    assert traj.status == "cancelled"


async def test_streamed_reply_arrives_as_model_delta_events(
    stub: OpenAIStub, make_engine: Any
) -> None:
    reply = "Doubling it.\n" + code("final_answer(2 * 21)")
    stub.replies["stream"] = [reply]
    # the first attempt is refused (429): deltas say which attempt they belong to
    eng = make_engine(stream=True, model_params={"api_base": stub.base("ratelimit-stream")})
    eng.model_params["api_key"] = KEY
    traj, events = await _run(eng, "double 21", "openai/gpt-4o-mini")
    assert traj.status == "finished" and traj.outputs == {"answer": 42}, traj.error
    deltas = [e.data["text"] for e in events if e.kind == "model_delta"]
    assert len(deltas) > 3 and "".join(deltas) == reply
    assert {e.data["attempt"] for e in events if e.kind == "model_delta"} == {2}
    assert stub.requests["ratelimit-stream"][-1]["stream"] is True
    assert traj.steps[0].usage.prompt_tokens == PROMPT_TOKENS
    assert traj.steps[0].usage.cost_usd is not None


async def test_quickstart_run_through_litellm_keeps_the_key_out(
    stub: OpenAIStub, make_engine: Any, keys: None, tmp_path: Path
) -> None:
    quote = json.loads((EXAMPLE / "replies" / "quote.json").read_text())
    peek = code("import os\nprint(sorted(os.environ.items()))")
    stub.replies["quote"] = [peek, *quote]
    eng = make_engine(model_params={"api_base": stub.base("reply-quote"), "api_key": KEY})
    traj, _ = await _run(eng, QUOTE_TASK, "openai/gpt-4o-mini")
    assert traj.status == "finished", traj.error
    assert traj.outputs == {"answer": 76.9}
    assert traj.scripted is False and traj.model == "openai/gpt-4o-mini"
    assert [s.status for s in traj.steps] == ["ok", "ok", "ok"]
    assert traj.usage.prompt_tokens == 3 * PROMPT_TOKENS
    assert traj.usage.completion_tokens == 3 * COMPLETION_TOKENS
    assert traj.usage.cost_usd is not None and traj.usage.cost_usd > 0
    # the model saw the workspace's tools and, by step 3, the earlier steps
    first = stub.requests["reply-quote"][0]["messages"]
    assert "def price_of(" in json.dumps(first)
    assert "convert_currency" in json.dumps(stub.requests["reply-quote"][2]["messages"])
    # the generated code ran with an environment that holds neither key
    env_dump = traj.steps[0].stdout
    assert "PATH" in env_dump and "OPENAI_API_KEY" not in env_dump
    run_file = (tmp_path / "runs" / f"{traj.id}.json").read_text()
    for text in (run_file, traj.model_dump_json(), env_dump):
        assert KEY not in text and ENV_KEY not in text


async def test_refused_key_is_redacted_and_says_what_to_do(
    stub: OpenAIStub, make_engine: Any, keys: None, tmp_path: Path
) -> None:
    # this server echoes the key it refused, as some providers do
    eng = make_engine(model_params={"api_base": stub.base("unauthorized-k"), "api_key": KEY})
    traj, _ = await _run(eng, "t", "openai/gpt-4o-mini")
    assert traj.status == "failed" and traj.error is not None
    assert traj.error.startswith("model error (config)")
    assert "api_key passed in model_params was refused" in traj.error
    assert KEY not in traj.error and "***" in traj.error
    assert stub.calls["unauthorized-k"] == 1  # a refused key is not retried
    assert KEY not in (tmp_path / "runs" / f"{traj.id}.json").read_text()

    eng.model_params.pop("api_key")  # now the key from the environment is refused
    traj, _ = await _run(eng, "t", "openai/gpt-4o-mini")
    assert traj.error is not None and ENV_KEY not in traj.error and "***" in traj.error


async def test_a_file_name_without_the_prefix_is_never_replayed(make_engine: Any) -> None:
    """An existing replies file named as a model goes to litellm (and fails there), never to the
    scripted stand-in."""
    replies = EXAMPLE / "replies" / "quote.json"
    assert replies.is_file()
    eng = make_engine()
    traj, _ = await _run(eng, QUOTE_TASK, str(replies))
    assert traj.scripted is False and traj.status == "failed"
    assert traj.error is not None and traj.error.startswith("model error (fatal)")
    assert traj.steps == []
    with pytest.raises(ModelError):
        make_model("scripted:", base=EXAMPLE)


async def test_check_model_names_the_missing_key_or_provider(
    stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    problem = await check_model("openai/gpt-4o-mini")
    assert problem is not None and "needs OPENAI_API_KEY" in problem
    assert await check_model("openai/gpt-4o-mini", api_key=KEY) is None
    assert await check_model("scripted:anything.json") is None
    problem = await check_model("replies/quote.json")
    assert problem is not None and "provider/model" in problem
    assert await check_model("ollama/llama3") is None  # no key, and a default address
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    assert await check_model("openai/gpt-4o-mini") is None


async def test_no_key_at_all_fails_at_once_with_the_variable_to_set(
    stub: OpenAIStub,
    make_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The engine path (editor, Python API) has no CLI pre-check: the first call says it. And
    litellm prints nothing on stdout, which is the language server's JSON-RPC channel."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # a remote server (never reached: the client refuses before connecting); a loopback one
    # needs no key, see test_a_local_server_needs_no_key
    eng = make_engine(model_params={"api_base": "http://models.example.invalid/v1"})
    traj, events = await _run(eng, "t", "openai/gpt-4o-mini")
    assert traj.status == "failed" and traj.error is not None
    assert traj.error.startswith("model error (config)") and "set OPENAI_API_KEY" in traj.error
    assert not [e for e in events if e.kind == "model_retry"]  # retrying cannot help
    traj, _ = await _run(eng, "t", "made-up-model")  # unknown provider: litellm's error path
    assert traj.error is not None and traj.error.startswith("model error (fatal)")
    assert capfd.readouterr().out == ""


def test_cli_run_through_litellm_and_without_a_key(
    stub: OpenAIStub,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`codeact run` on the real model path, configured as a user would: the key in the
    environment, the server by --api-base. Without a key it is a configuration error (exit 2),
    before anything starts."""
    stub.replies["cli"] = json.loads((EXAMPLE / "replies" / "quote.json").read_text())
    monkeypatch.delenv("CODEACT_MODEL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    base = ["--api-base", stub.base("reply-cli")]
    assert main(["run", QUOTE_TASK, "-w", str(workspace), "-m", "openai/gpt-4o-mini", *base]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "76.9"
    assert "model openai/gpt-4o-mini" in out.err and "scripted" not in out.err
    assert out.err.rstrip().splitlines()[-1].startswith("finished · 2 steps · 60 tokens · $0.0000")

    monkeypatch.delenv("OPENAI_API_KEY")
    assert main(["run", QUOTE_TASK, "-w", str(workspace), "-m", "openai/gpt-4o-mini"]) == 2
    assert "needs OPENAI_API_KEY" in capsys.readouterr().err
    remote = ["--api-base", "http://models.example.invalid/v1"]
    assert main(["run", QUOTE_TASK, "-w", str(workspace), "-m", "openai/gpt-4o-mini", *remote]) == 2
    err = capsys.readouterr().err
    assert "needs OPENAI_API_KEY" in err and "Traceback" not in err
    assert main(["run", QUOTE_TASK, "-w", str(workspace), "-m", "gpt-made-up"]) == 2
    assert "provider" in capsys.readouterr().err
    # a suite whose tasks fall back to --model is checked the same way
    suite = workspace / "real-model-tasks.toml"
    suite.write_text('[[task]]\nname = "q"\ntask = "x"\nexpect = 1\n')
    assert main(["test", str(suite), "-w", str(workspace), "-m", "openai/gpt-4o-mini"]) == 2
    assert "needs OPENAI_API_KEY" in capsys.readouterr().err


async def test_reply_without_choices_is_a_step_without_code(
    stub: OpenAIStub, make_engine: Any
) -> None:
    """A content filter's empty completion: the model is told how to act, the run goes on."""
    eng = make_engine(model_params={"api_base": stub.base("filtered-f"), "api_key": KEY})
    handle = await eng.start(RunRequest(task="t", model="openai/gpt-4o-mini", max_iters=2))
    traj = await asyncio.wait_for(handle.wait(), timeout=60)
    assert traj.status == "max_iters"
    assert [s.status for s in traj.steps] == ["no_code", "no_code"]


def test_a_local_server_needs_no_key(
    stub: OpenAIStub,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A loopback api_base (Ollama, LM Studio, llama.cpp, vLLM on this machine): no key is
    demanded, the model_params reach the server, and replies are capped by default."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CODEACT_MODEL", raising=False)
    replies = json.loads((EXAMPLE / "replies" / "quote.json").read_text())
    stub.replies["local"] = list(replies)
    flags = ["--api-base", stub.base("reply-local"), "--model-param", "temperature=0.2"]
    args = ["run", QUOTE_TASK, "-w", str(workspace), "-m", "openai/local-model", *flags]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == "76.9"
    sent = stub.requests["reply-local"][0]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 4096  # the default reply cap
    assert stub.headers["reply-local"][0]["authorization"] == "Bearer no-key-needed"


async def test_keyless_and_named_key_variables(
    stub: OpenAIStub, make_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keyless = true` for a self-hosted server elsewhere; `api_key_env` names the variable."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    replies = json.loads((EXAMPLE / "replies" / "quote.json").read_text())
    assert await check_model("openai/x", api_base="http://gpu-box.lan:8000/v1") is not None
    assert (
        await check_model("openai/x", api_base="http://gpu-box.lan:8000/v1", keyless=True) is None
    )
    stub.replies["keyless"] = list(replies)
    eng = make_engine(
        model_params={"api_base": stub.base("reply-keyless"), "keyless": True, "max_tokens": 64}
    )
    traj, _ = await _run(eng, QUOTE_TASK, "openai/local-model")
    assert traj.status == "finished" and traj.outputs == {"answer": 76.9}
    assert stub.requests["reply-keyless"][0]["max_tokens"] == 64
    assert "keyless" not in stub.requests["reply-keyless"][0]
    # a key from a named variable, never from the file
    monkeypatch.setenv("MY_LOCAL_KEY", KEY)
    model = make_model("openai/x", api_base="http://h/v1", api_key_env="MY_LOCAL_KEY")
    assert isinstance(model, LiteLLMModel) and model.params["api_key"] == KEY
    with pytest.raises(ModelError, match="MY_MISSING_KEY, which is not set"):
        make_model("openai/x", api_key_env="MY_MISSING_KEY")
    problem = await check_model("openai/x", api_key_env="MY_MISSING_KEY")
    assert problem is not None and "MY_MISSING_KEY" in problem


@pytest.mark.parametrize(
    ("env", "params", "want"),
    [
        ({}, {"api_base": "http://127.0.0.1:8080/v1"}, True),
        ({}, {"api_base": "http://[::1]:8000/v1"}, True),
        ({}, {"api_base": "http://127.example.com/v1"}, False),
        ({}, {"api_base": "https://api.openai.com/v1"}, False),
        ({}, {"api_base": "http://gpu-box:8000/v1", "keyless": True}, True),
        ({"OPENAI_BASE_URL": "http://localhost:8089/v1"}, {}, True),  # litellm reads it too
        ({"OPENAI_API_BASE": "http://10.0.0.5:8000/v1"}, {}, False),
        ({"OPENAI_BASE_URL": "http://localhost:8089/v1"}, {"api_base": "https://x.ai/v1"}, False),
    ],
)
def test_which_bases_need_no_key(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], params: dict[str, Any], want: bool
) -> None:
    from codeact_lsp.engine.model import keyless

    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert keyless(params) is want
