"""The tool host's main loop: the protocol on private descriptors, one call at a time."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import sys
import threading
import time
import typing
from typing import Any

from .direct import Control, Hub
from .errors import _CANCEL, _PKG_DIR, _on_cancel, result_too_big, to_json
from .loader import load_targets
from .registry import Registry

JSON = typing.Dict[str, Any]  # noqa: UP006


def _die_with_parent() -> None:
    """Exit when the server goes away, even while a tool runs (an idle host sees EOF instead).

    Not PR_SET_PDEATHSIG: that fires when the *thread* that spawned us ends, and hosts are
    (re)started from short-lived caller threads.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="codeact-parent-watch", daemon=True).start()


def serve(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    _die_with_parent()
    # Protocol on private descriptors; fd 0/1 become /dev/null and stderr, so a tool that prints
    # or writes to fd 1 directly cannot corrupt the channel.
    rfd = os.dup(0)
    wfd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    if spec.get("stack_file"):
        try:
            import faulthandler

            stack = open(spec["stack_file"], "w")  # noqa: SIM115
            faulthandler.register(signal.SIGUSR1, file=stack, all_threads=True)
        except Exception:
            pass
    writer = os.fdopen(wfd, "wb", buffering=0)

    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _PKG_DIR]
    for path in reversed(spec.get("paths", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    workspace = spec.get("workspace")
    if workspace:
        with contextlib.suppress(OSError):
            os.chdir(workspace)
    registry = Registry(spec.get("confirm", []), workspace, max_depth=spec.get("max_depth"))
    if hasattr(signal, "SIGUSR2"):
        signal.signal(signal.SIGUSR2, _on_cancel)  # ToolHost.cancel(): interrupt the running tool
    load_targets(registry, spec.get("targets", []))

    limit = int(spec.get("max_reply", 16 * 1024 * 1024))

    def send(msg: JSON) -> None:
        try:
            data = json.dumps(msg, default=repr).encode() + b"\n"
        except ValueError:
            data = json.dumps(to_json(msg)[0], default=repr).encode() + b"\n"
        if len(data) > limit and "id" in msg:
            size = len(data)
            msg.update(
                ok=False, result=None, result_is_repr=False, stdout=msg.get("stdout", "")[:4096]
            )
            msg["error"] = result_too_big(size, limit)
            data = json.dumps(msg, default=repr).encode() + b"\n"
        writer.write(data)

    send(
        {
            "op": "ready",
            "schemas": registry.schemas(),
            "diagnostics": registry.diagnostics,
            "pydantic": registry.has_pydantic,
            "exceptions": registry.exception_types(),
            "python": sys.executable,
            "version": sys.version.split()[0],
        }
    )

    def on_line(line: bytes) -> None:
        req = json.loads(line)
        _CANCEL.current = 0  # the server's own request (see Hub.cancel)
        try:
            reply = registry.call(
                req["name"], req.get("args", []), req.get("kwargs", {}), req.get("timeout")
            )
        finally:
            _CANCEL.current = None
        reply["id"] = req.get("id")
        send(reply)

    # The server's own calls (stdin) and the sandbox workers attached over the control socket
    # (the direct route) are served by one loop in this, the main, thread.
    hub = Hub(registry, limit)
    control_fd = spec.get("control_fd")
    if isinstance(control_fd, int):
        try:
            os.set_inheritable(control_fd, False)  # not for the tools' own subprocesses
            sock = socket.socket(fileno=control_fd)
        except OSError:
            sock = None
        if sock is not None and hasattr(socket, "recv_fds"):
            Control(sock, hub).start()
        elif sock is not None:  # Python < 3.9: no direct route; the server sees it closed
            sock.close()
    hub.run(rfd, on_line)
    return 0


def main() -> None:
    sys.exit(serve(sys.argv[1:]))


if __name__ == "__main__":
    main()
