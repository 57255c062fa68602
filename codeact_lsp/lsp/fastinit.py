"""Answer `initialize` before pygls is imported, from a cache of earlier answers.

Importing lsprotocol's types alone takes most of the ~300 ms an editor waits for `initialize`.
The answer (server capabilities) depends only on the client's capabilities and this server's code,
so it is cached per (client capabilities, code version) under `~/.cache/codeact-lsp/` (see `cache_dir`): a second
start with the same editor answers in tens of milliseconds, then imports pygls and lets it handle
the same `initialize` as usual (so its state is exactly as without the cache). If pygls computes a
different answer — the key missed a change — the cache entry is replaced and a warning is logged.

Stdlib only. Disable with `CODEACT_LSP_INIT_CACHE=0`; move with `CODEACT_LSP_CACHE_DIR`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)
_HERE = Path(__file__).resolve().parent


@dataclass
class FirstMessage:
    body: bytes
    id: Any = None
    method: str | None = None
    key: str | None = None
    answered: bool = False  # the client already got the cached answer
    cached: Any = None  # that answer
    computed: Any = None  # what pygls answered (filled in by the server)


def read_message(stream: BinaryIO) -> bytes | None:
    """One framed JSON-RPC message body (None at end of input or on a malformed header)."""
    length: int | None = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if not line.strip():
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    return stream.read(length) if length is not None else None


def enabled() -> bool:
    return os.environ.get("CODEACT_LSP_INIT_CACHE", "1") not in {"0", "false", "no"}


def cache_dir() -> Path:
    """Where answers are cached: never inside a project (HOME is sometimes pointed at one)."""
    configured = os.environ.get("CODEACT_LSP_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "codeact-lsp"
    home_cache = Path.home() / ".cache"
    if home_cache.is_absolute() and home_cache.is_dir():
        return home_cache / "codeact-lsp"
    return Path(tempfile.gettempdir()) / f"codeact-lsp-{os.getuid()}"


def _trusted(directory: Path) -> bool:
    """A cache someone else owns could feed us a forged answer: ignore it."""
    try:
        return directory.stat().st_uid == os.getuid()
    except OSError:
        return True  # not there yet: created by us


def _dist_info(package: str) -> str:
    """Name (with version) of an installed distribution, found without importing it."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(f"{package}-") and name.endswith(".dist-info"):
                return name
    return package


def code_id() -> str:
    """What the answer depends on besides the client: the modules that register features."""
    parts = [sys.version, _dist_info("pygls"), _dist_info("lsprotocol")]
    for name in ("main.py", "server.py", "fastinit.py", "commands/__init__.py"):
        try:
            st = (_HERE / name).stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(name)
    return "|".join(parts)


def read_first(stream: BinaryIO, out: BinaryIO) -> FirstMessage | None:
    """Read the client's first message; if it is `initialize` with a cached answer, send it."""
    body = read_message(stream)
    if body is None:
        return None
    first = FirstMessage(body=body)
    try:
        message = json.loads(body)
    except ValueError:
        return first
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return first
    first.id, first.method = message.get("id"), "initialize"
    params = message.get("params") if isinstance(message.get("params"), dict) else {}
    caps = json.dumps(params.get("capabilities"), sort_keys=True)  # type: ignore[union-attr]
    first.key = hashlib.sha256(f"{code_id()}\n{caps}".encode()).hexdigest()[:32]
    if not enabled() or not _trusted(cache_dir()):
        return first
    try:
        cached = json.loads((cache_dir() / f"init-{first.key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return first
    answer = json.dumps({"jsonrpc": "2.0", "id": first.id, "result": cached}).encode()
    out.write(b"Content-Length: %d\r\n\r\n" % len(answer) + answer)
    out.flush()
    first.answered = True
    first.cached = cached
    return first


def remember(first: FirstMessage) -> None:
    """Store pygls' answer for next time (and note when a cached answer was stale)."""
    if first.key is None or first.computed is None or not enabled():
        return
    if first.answered and first.computed == first.cached:
        return
    if first.answered:
        log.warning("the cached initialize answer was stale; replaced for the next start")
    directory = cache_dir()
    if not _trusted(directory):
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".init-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(first.computed, fh)
        os.replace(tmp, directory / f"init-{first.key}.json")
    except OSError as exc:
        log.info("cannot cache the initialize answer: %s", exc)
