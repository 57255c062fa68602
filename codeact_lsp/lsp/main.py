"""`codeact-lsp`: the language server entry point (stdio by default, `--tcp HOST:PORT` to debug).

Kept free of pygls imports: on stdio it first answers `initialize` from the cache when it can
(`fastinit`), and only then imports the server itself (`server`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

__all__ = ["main"]


def _quiet_expected_errors(record: logging.LogRecord) -> bool:
    """pygls logs every error answer with a traceback; a user's bad argument is not a crash."""
    exc = record.exc_info[1] if record.exc_info else None
    if type(exc).__name__ in {"JsonRpcInvalidParams", "CommandError"}:
        return False
    # VS Code cancels requests it no longer needs, often after they were answered: routine.
    return not str(record.msg).startswith("Cancel notification for unknown message id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="codeact-lsp", description="CodeAct language server (stdio by default)"
    )
    parser.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen on TCP instead of stdio (port 0: any free port, printed on stderr); "
        "the server ends when its client disconnects",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_quiet_expected_errors)
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            parser.error("--tcp expects HOST:PORT, e.g. 127.0.0.1:2087")
        from codeact_lsp.lsp.server import build_server

        try:
            build_server().serve_tcp(host or "127.0.0.1", int(port))
        except SystemExit as exc:  # `exit`: 0 after `shutdown`, 1 without
            return exc.code if isinstance(exc.code, int) else 0
        except KeyboardInterrupt:
            return 1
        return 0

    from codeact_lsp.lsp import fastinit

    first = fastinit.read_first(sys.stdin.buffer, sys.stdout.buffer)
    if first is None:
        return 1  # the client went away before saying anything
    import asyncio  # after the answer: asyncio alone is a good part of the wait

    from codeact_lsp.lsp.server import build_server

    server = build_server()
    profile_to = os.environ.get("CODEACT_LSP_PROFILE")  # developers: where the loop's time goes

    async def serve() -> None:
        await server.serve_io(first)

    def run() -> None:
        asyncio.run(serve())

    try:
        if profile_to:
            import cProfile

            with cProfile.Profile() as prof:
                try:
                    run()
                finally:
                    prof.dump_stats(profile_to)
        else:
            run()
    except SystemExit as exc:  # `exit`: 0 after `shutdown`, 1 without
        return exc.code if isinstance(exc.code, int) else 0
    except (KeyboardInterrupt, BrokenPipeError):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
