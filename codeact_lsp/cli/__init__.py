"""The `codeact` command line: one module per command (`run`, `runs`, `test`), the parser and
dispatch in `main`, what they share in `common`."""

from codeact_lsp.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
