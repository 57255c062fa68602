"""The language server (`codeact-lsp`, `python -m codeact_lsp`): what an editor client relies on.

Modules: `main` (entry point `main`, no pygls import), `fastinit` (answers `initialize` from a
cache before pygls loads), `server` (the pygls server and its features), `client` (the client's
capabilities, resolved once), `state` (the parts below, editor events), `workspace` (settings,
config, backend, tool discovery), `run_docs` (run documents: rewrite, pause, the user's edits),
`views` (lenses/diagnostics/hovers routed by document kind), `refresh` (batched refresh,
work-done progress), `commands/` (`registry` and the groups `runs`, `review`, `tools`, `tasks`),
`args` (command arguments), `errors`, `document` (the trajectory file), `trajectory_view`
(trajectory → lenses/diagnostics/hovers), `tool_view` (tool-module lenses/diagnostics),
`tasks_view` (task-suite lenses), `accept` (the Accept edit), `settings`, `backend` (engine +
tool host).

The client contract (commands, replies, documents, lenses, settings) is docs/protocol.md.
"""
