"""A tiny OpenAI-compatible HTTP server on 127.0.0.1, so tests drive the real litellm adapter
(real litellm, real openai client, real HTTP) without any LLM API.

Behaviour is chosen by the first path segment, so each test gets its own scenario and counters:
`http://127.0.0.1:PORT/<scenario>-<tag>/v1/chat/completions`

- `reply`: answers `replies[tag]` in order (the last one repeats), streamed when asked to;
- `ratelimit`: a 429 (with `retry-after: 0`) on the first call of the tag, then like `reply`;
- `flaky`: a 500 on the first call of the tag, then like `reply`;
- `filtered`: a completion without choices (what a content filter can return);
- `slow`: holds the request until the server closes (a model that never answers in time);
- `unauthorized`: a 401 whose message echoes the key it got (as some providers do).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_TOKENS, COMPLETION_TOKENS = 21, 9


class OpenAIStub:
    def __init__(self) -> None:
        self.replies: dict[str, list[str]] = {}
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.requests: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.headers: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
        self.closing = threading.Event()
        self.slow_arrived = threading.Event()  # set when a `slow` request is being held
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                scenario, _, rest = self.path.strip("/").partition("/")
                kind, _, tag = scenario.partition("-")
                with stub._lock:
                    stub.calls[scenario] += 1
                    n = stub.calls[scenario]
                    stub.requests[scenario].append(body)
                    stub.headers[scenario].append({k.lower(): v for k, v in self.headers.items()})
                if rest != "v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                elif kind == "ratelimit" and n == 1:
                    error = {"message": "Rate limit reached", "type": "rate_limit_error"}
                    self._json(429, {"error": error}, {"retry-after": "0"})
                elif kind == "flaky" and n == 1:
                    self._json(500, {"error": {"message": "upstream hiccup", "type": "server"}})
                elif kind == "filtered":  # a content filter: no choices at all
                    self._json(200, {**_completion(body["model"], ""), "choices": []})
                elif kind == "slow":
                    stub.slow_arrived.set()
                    stub.closing.wait(60)
                    self._json(503, {"error": {"message": "shutting down"}})
                elif kind == "unauthorized":
                    key = self.headers.get("authorization", "")
                    error = {"message": f"Incorrect API key provided: {key}", "type": "auth"}
                    self._json(401, {"error": error})
                else:
                    replies = stub.replies.get(tag) or ["no replies set"]
                    text = replies[min(n, len(replies)) - 1]
                    if body.get("stream"):
                        self._stream(body["model"], text)
                    else:
                        self._json(200, _completion(body["model"], text))

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, model: str, text: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
                for piece in pieces:
                    self._event(_chunk(model, {"content": piece}, None))
                self._event(_chunk(model, {}, "stop"))
                usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
                usage["total_tokens"] = PROMPT_TOKENS + COMPLETION_TOKENS
                self._event({**_chunk(model, {}, None), "choices": [], "usage": usage})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, data: Any) -> None:
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def base(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/v1"

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) closes its end: not a server problem


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
