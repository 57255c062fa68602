"""codeact-lsp: run CodeAct agents from the editor, on your workspace's own tools, in a sandbox."""

__version__ = "0.1.0"
