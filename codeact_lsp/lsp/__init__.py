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

Client contract, beyond DESIGN.md §3:

- Trajectory documents are files, `<workspace>/.codeact/runs/<runId>.py` (see `document`); the
  server sends `window/showDocument` for each new run and rewrites the file as the run goes:
  atomically (temp file + `os.replace`), at most once per ~100 ms refresh and only when the text
  changes, the final state always last, and every rewrite with a size and a millisecond mtime
  different from the file it replaces (a file watcher never misses one; no polling needed).
  While the open document has unsaved edits (its text is none the file held lately) the file is
  not rewritten (no save conflict): lenses/diagnostics follow the run on the user's text and a
  top lens says "⏸ live view paused…"; saving, reverting or closing the document resumes it.
- Task-suite results persist in `<workspace>/.codeact/task_results.json` (lenses after restart).
- `--tcp HOST:PORT` (port 0: any free port, printed on stderr as "codeact-lsp: listening on
  HOST:PORT") serves one client; its disconnect ends every run and tool host, as on stdio.
- Accept (`lsp.accept`, placement in `engine.program`): `codeact.accept {runId, mode?, replace?,
  name?, form?, confirm?, newFileUri?}` sends one versioned `workspace/applyEdit` whose hunks (the
  import merge, the function; a new file) carry change annotations needing confirmation when the
  client supports them (VS Code shows its Refactor Preview); then `window/showDocument` selects
  the function, and it answers `{applied: true, uri, range, name, created, message}` (message: the
  one status line) and records `accepted` in the run file. A refusal answers `{applied: false,
  reason (in words), alternatives (modes), choices [{label, mode | action}]}`; a cancelled
  preview `{applied: false, cancelled: true, reason}`. `codeact.acceptPreview` (same arguments) →
  `{ok, reason, alternatives, choices, targetUri, range, version, createsFile, newText, edits,
  documentAfter, functionRange, name, message, selection, program}` (what a diff needs).
  `codeact.discard {runId}`; `codeact.listRuns {}`; `codeact.showStep {runId, step}` →
  `{step, markdown}`; `codeact.serverStats {reset?}` (benchmarks).
- `codeact.approve` / `codeact.rerun` without `code` use the step's text as edited in the open
  trajectory document, if the user changed it.
- Lens commands leave out what only the user can type (`task` of followUp, `feedback` of reject,
  `args` of tryTool); a client fills them in its executeCommand middleware.
- Progress tokens are `codeact-run-<runId>-<n>`; cancelling one cancels that run.
- Settings: section `codeact` (camelCase or snake_case keys) overrides the workspace file; the
  server re-reads them on `workspace/didChangeConfiguration`, and registers file watchers for
  the config, task-suite and tool files (changes made outside the editor count too).
- Diagnostics are pulled (`textDocument/diagnostic`) when the client can, published otherwise.
- Tool modules: lenses "▷ Try" + "used N× in last run · K errors"; diagnostics from discovery
  (unsaved buffers included), the tool host (import errors), the last run and the last failing
  Try (at the raising line). Task-suite file: "▷ Run task · last ✓ 1.2 s" per `[[task]]`.
- Environment: `CODEACT_LSP_INIT_CACHE=0` disables the initialize cache,
  `CODEACT_LSP_CACHE_DIR` moves it, `CODEACT_LSP_PROFILE=FILE` writes a cProfile of the server.
"""
