"""`python -m codeact_lsp` starts the language server (how the VS Code client launches it)."""

from codeact_lsp.lsp.main import main

raise SystemExit(main())
