"""The server's end of the direct route: the control socket of one tool-host process.

Sandbox workers' calls of host tools go straight to the host (see `tools/runtime/direct.py`); the
server only attaches workers (their pipe ends travel with `socket.send_fds`), opens and closes
their steps, and learns of the calls from the records `close` returns. A reader thread answers
requests by id and acts on the host's own `broken` reports (the worker gets killed). When the host
process ends, the link and every connection on it are dead: sandboxes fall back to serving calls
through the server (`ToolHost.call_sync`), which restarts the host.

Requests never block for long: sends time out (a host that stops reading its control socket makes
the link dead), and replies are futures the caller waits on with a timeout.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import json
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from codeact_lsp.sandbox.models import DirectConn

_HEADER = 4
SEND_TIMEOUT = 2.0  # seconds a control message may take to be written
FLUSH_TIMEOUT = 5.0  # seconds a flush may wait for the host (a busy host answers at once)


class HostLink:
    """The control socket of one host process (a new host gets a new link)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(SEND_TIMEOUT)
        self.alive = True
        self._ids = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._pending: dict[int, cf.Future[dict[str, Any]]] = {}
        self._conns: dict[int, HostConn] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="codeact-hostlink", daemon=True)
        self._reader.start()

    def send(self, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> bool:
        data = json.dumps(msg).encode()
        frame = len(data).to_bytes(_HEADER, "little") + data
        with self._send_lock:
            if not self.alive:
                return False
            try:
                if fds:
                    n = socket.send_fds(self.sock, [frame], list(fds))
                    if n < len(frame):
                        self.sock.sendall(frame[n:])
                else:
                    self.sock.sendall(frame)
            except OSError:  # a timeout too: a host that does not read its socket is useless
                self._dead()
                return False
        return True

    def request(self, msg: dict[str, Any]) -> cf.Future[dict[str, Any]]:
        fut: cf.Future[dict[str, Any]] = cf.Future()
        rid = next(self._ids)
        with self._lock:
            self._pending[rid] = fut
        if not self.send({**msg, "id": rid}):
            with self._lock:
                self._pending.pop(rid, None)
            if not fut.done():
                fut.set_exception(ConnectionError("the tool host is gone"))
        return fut

    def attach(
        self,
        fds: tuple[int, int],
        names: list[str],
        confirm: list[str],
        limits: dict[str, int],
        on_broken: Callable[[str], None],
    ) -> HostConn | None:
        cid = next(self._conn_ids)
        conn = HostConn(self, cid, on_broken)
        with self._lock:
            self._conns[cid] = conn
        msg = {"op": "attach", "conn": cid, "names": names, "confirm": confirm, **limits}
        ok = self.send(msg, fds)
        for fd in fds:  # the host holds them now: when it dies, the worker sees EOF
            with contextlib.suppress(OSError):
                os.close(fd)
        if not ok:
            with self._lock:
                self._conns.pop(cid, None)
            return None
        return conn

    def forget(self, cid: int) -> None:
        with self._lock:
            self._conns.pop(cid, None)

    def _read(self) -> None:
        buf = bytearray()
        sock = self.sock
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                continue  # the socket's timeout is for sends; a quiet host is fine
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while len(buf) >= _HEADER:
                n = int.from_bytes(buf[:_HEADER], "little")
                if len(buf) < _HEADER + n:
                    break
                try:
                    msg = json.loads(bytes(buf[_HEADER : _HEADER + n]))
                except ValueError:
                    msg = {}
                del buf[: _HEADER + n]
                if isinstance(msg, dict):
                    self._dispatch(msg)
        self._dead()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        if rid is not None:
            with self._lock:
                fut = self._pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif msg.get("op") == "broken":
            with self._lock:
                conn = self._conns.get(msg.get("conn", -1))
            if conn is not None:
                conn.broken = str(msg.get("why", "the worker broke its tool channel"))[:500]
                conn.on_broken(conn.broken)

    def _dead(self) -> None:
        with self._lock:
            self.alive = False
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the tool host is gone"))

    def close(self) -> None:
        self._dead()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class HostConn(DirectConn):
    """One worker attached to a host (`DirectConn`)."""

    def __init__(self, link: HostLink, cid: int, on_broken: Callable[[str], None]) -> None:
        self.link = link
        self.id = cid
        self.on_broken = on_broken
        self.broken: str | None = None

    @property
    def alive(self) -> bool:
        return self.link.alive and self.broken is None

    def open(self, nonce: str, confirmed: bool, caps: dict[str, Any]) -> cf.Future[bool]:
        out: cf.Future[bool] = cf.Future()
        fut = self.link.request(
            {"op": "open", "conn": self.id, "nonce": nonce, "confirmed": confirmed, **caps}
        )

        def done(f: cf.Future[dict[str, Any]]) -> None:
            ok = f.exception() is None and bool(f.result().get("ok"))
            out.set_result(ok)

        fut.add_done_callback(done)
        return out

    def flush(self, nonce: str) -> tuple[list[dict[str, Any]], int]:
        try:
            reply = self.link.request({"op": "flush", "conn": self.id, "nonce": nonce}).result(
                FLUSH_TIMEOUT
            )
        except (cf.TimeoutError, ConnectionError):
            return [], 0
        calls = reply.get("calls")
        return (calls if isinstance(calls, list) else []), 0

    def close(self, nonce: str, wait: float = 0.0) -> cf.Future[dict[str, Any]]:
        return self.link.request({"op": "close", "conn": self.id, "nonce": nonce, "wait": wait})

    def cancel(self, nonce: str) -> None:
        self.link.send({"op": "cancel", "conn": self.id, "nonce": nonce})

    def halt(self, nonce: str) -> None:
        self.link.send({"op": "halt", "conn": self.id, "nonce": nonce})

    def detach(self) -> None:
        self.link.forget(self.id)
        self.link.send({"op": "detach", "conn": self.id})
