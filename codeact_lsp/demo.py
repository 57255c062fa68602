"""The quickstart's main job: drive `codeact-lsp` over stdio exactly as an editor would.

`python -m codeact_lsp.demo WORKSPACE` copies the workspace to a temporary folder (so the demo never
writes into your checkout), starts the real server as a subprocess, speaks LSP to it with pygls'
client, runs the first task of the workspace's task suite, and prints what an editor would show:
the trajectory document with its code lenses and diagnostics, the tool-bench lenses on the tool
module, and the edit that Accept applies. Nothing is simulated here: every line printed comes from
the server's answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.client import LanguageClient

_F = TypeVar("_F", bound=Callable[..., Any])
TERMINAL = {"finished", "failed", "cancelled", "max_iters"}


class EditorDouble:
    """The editor's side of the conversation: open documents, diagnostics, edits it is asked to apply."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.client = LanguageClient("codeact-demo", "0.1")
        self.settings = settings
        self.docs: dict[str, tuple[int, str]] = {}
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        self.shown: list[str] = []
        self.progress: list[str] = []
        self.edits: list[types.WorkspaceEdit] = []
        self._register()

    def _register(self) -> None:
        on = self._on

        @on(types.WORKSPACE_CONFIGURATION)
        def configuration(params: types.ConfigurationParams) -> list[Any]:
            return [self.settings if item.section == "codeact" else None for item in params.items]

        @on(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def progress_create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @on(types.PROGRESS)
        def progress(params: types.ProgressParams) -> None:
            value = params.value
            message = getattr(value, "message", None) or getattr(value, "title", None)
            if message is None and isinstance(value, dict):
                message = value.get("message") or value.get("title")
            if message:
                self.progress.append(str(message))
                print(f"  [progress] {message}", flush=True)

        @on(types.WINDOW_SHOW_DOCUMENT)
        def show_document(params: types.ShowDocumentParams) -> types.ShowDocumentResult:
            self.shown.append(params.uri)
            return types.ShowDocumentResult(success=True)

        @on(types.WINDOW_SHOW_MESSAGE)
        def show_message(params: types.ShowMessageParams) -> None:
            print(f"  [message] {params.message}", flush=True)

        @on(types.WINDOW_LOG_MESSAGE)
        def log_message(params: types.LogMessageParams) -> None:
            return None

        @on(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def publish(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)

        @on(types.WORKSPACE_CODE_LENS_REFRESH)
        def lens_refresh(params: None) -> None:
            return None

        @on(types.WORKSPACE_DIAGNOSTIC_REFRESH)
        def diagnostic_refresh(params: None) -> None:
            return None

        @on(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.edits.append(params.edit)
            try:
                self._apply(params.edit)
            except ValueError as exc:
                return types.ApplyWorkspaceEditResult(applied=False, failure_reason=str(exc))
            return types.ApplyWorkspaceEditResult(applied=True)

    def _on(self, method: str) -> Callable[[_F], _F]:
        # pygls' client decorator is untyped; this keeps the handlers' own types visible to mypy.
        return cast("Callable[[_F], _F]", self.client.feature(method))

    def _apply(self, edit: types.WorkspaceEdit) -> None:
        for change in edit.document_changes or []:
            if isinstance(change, types.CreateFile):
                self.docs.setdefault(change.uri, (0, ""))
                continue
            if not isinstance(change, types.TextDocumentEdit):
                continue
            uri = change.text_document.uri
            version, text = self.docs.get(uri, (0, ""))
            want = change.text_document.version
            if want is not None and want != version:
                raise ValueError(f"{uri} is at version {version}, the edit expects {want}")
            for e in sorted(change.edits, key=_start_key, reverse=True):
                if isinstance(e, types.TextEdit):
                    text = _splice(text, e.range, e.new_text)
            self.docs[uri] = (version + 1, text)
        for uri, edits in (edit.changes or {}).items():
            version, text = self.docs.get(uri, (0, ""))
            for e in sorted(edits, key=_start_key, reverse=True):
                text = _splice(text, e.range, e.new_text)
            self.docs[uri] = (version + 1, text)

    def open(self, path: Path) -> str:
        uri = path.resolve().as_uri()
        text = path.read_text(encoding="utf-8")
        self.docs[uri] = (1, text)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )
        return uri

    async def command(self, name: str, arg: dict[str, Any]) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=[arg])
        )

    async def lenses(self, uri: str) -> list[types.CodeLens]:
        got = await self.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        lenses = list(got or [])
        resolved = []
        for lens in lenses:
            if lens.command is None:
                lens = await self.client.code_lens_resolve_async(lens)
            resolved.append(lens)
        return resolved

    async def diagnostics_for(self, uri: str, pull: bool) -> list[types.Diagnostic]:
        if pull:
            report = await self.client.text_document_diagnostic_async(
                types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
            )
            items = getattr(report, "items", None)
            if items is not None:
                return list(items)
        return self.diagnostics.get(uri, [])


def _start_key(edit: Any) -> tuple[int, int]:
    return (edit.range.start.line, edit.range.start.character)


def _offset(text: str, pos: types.Position) -> int:
    lines = text.splitlines(keepends=True)
    if pos.line >= len(lines):
        return len(text)
    return sum(len(x) for x in lines[: pos.line]) + min(pos.character, len(lines[pos.line]))


def _splice(text: str, rng: types.Range, new: str) -> str:
    return text[: _offset(text, rng.start)] + new + text[_offset(text, rng.end) :]


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


async def _show_mcp_tools(editor: EditorDouble) -> None:
    """The workspace's MCP server next to tools.py: its tools are listed and tried like any."""
    listed = _plain(await editor.command("codeact.listTools", {}))
    mcp_tools = [t for t in listed.get("tools", []) if str(t.get("module", "")).startswith("mcp:")]
    if not mcp_tools:
        return
    print("\n── MCP tools (codeact.listTools, next to the tools of tools.py)")
    for t in mcp_tools:
        print(f"  {t['module']}: {t['signature']}")
    name = mcp_tools[0]["name"]
    if name == "delivery_estimate":
        print(f'\n▶ codeact.tryTool {name}("DE")')
        tried = _plain(await editor.command("codeact.tryTool", {"name": name, "args": ["DE"]}))
        print(f"  → {json.dumps(tried.get('result', tried.get('error')))}")


def _print_lenses(lenses: list[types.CodeLens], lines: list[str]) -> None:
    for lens in sorted(lenses, key=lambda x: x.range.start.line):
        ln = lens.range.start.line
        title = lens.command.title if lens.command else "(unresolved)"
        cmd = f"  → {lens.command.command}" if lens.command and lens.command.command else ""
        context = lines[ln].strip() if ln < len(lines) else ""
        print(f"  line {ln + 1:>3}: [{title}]{cmd}   {context[:60]}")


def _print_diagnostics(diags: list[types.Diagnostic]) -> None:
    if not diags:
        print("  (none)")
    for d in diags:
        sev = {1: "error", 2: "warning", 3: "info", 4: "hint"}.get(int(d.severity or 1), "?")
        print(f"  line {d.range.start.line + 1:>3}: {sev}: {d.message.splitlines()[0]}")


def _first_task(ws: Path) -> dict[str, Any]:
    suite = ws / "tasks.toml"
    if suite.is_file():
        tasks = tomllib.loads(suite.read_text(encoding="utf-8")).get("task", [])
        if tasks:
            return dict(tasks[0])
    return {"task": "What does it cost in EUR to buy 3 units of SKU-42 and ship them to DE?"}


async def demo(source: Path, keep: bool) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="codeact-demo-"))
    ws = tmp / source.name
    shutil.copytree(source, ws, ignore=shutil.ignore_patterns(".codeact", "__pycache__", ".venv"))
    task = _first_task(ws)
    real_model = os.environ.get("CODEACT_MODEL")
    model = real_model or task.get("model")
    banner = "═" * 78
    print(banner)
    print(f"codeact-lsp demo · workspace: {ws}")
    if real_model:
        print(f"model: {real_model} (real model via litellm; CODEACT_MODEL is set)")
    else:
        print(
            f"model: {model}  ← the SCRIPTED STAND-IN: replays recorded replies, no LLM is called."
        )
        print("       Set CODEACT_MODEL (+ the provider's API key) to use a real model.")
    print(banner)

    editor = EditorDouble(settings={"model": model} if model else {})
    server_cmd = [sys.executable, "-m", "codeact_lsp"]
    await editor.client.start_io(*server_cmd, cwd=str(ws))
    code = 1
    try:
        init = await editor.client.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                root_uri=ws.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)],
                capabilities=types.ClientCapabilities(
                    workspace=types.WorkspaceClientCapabilities(
                        apply_edit=True,
                        configuration=True,
                        code_lens=types.CodeLensWorkspaceClientCapabilities(refresh_support=True),
                        workspace_edit=types.WorkspaceEditClientCapabilities(
                            document_changes=True,
                            resource_operations=[types.ResourceOperationKind.Create],
                        ),
                    ),
                    window=types.WindowClientCapabilities(
                        work_done_progress=True,
                        show_document=types.ShowDocumentClientCapabilities(support=True),
                    ),
                ),
            )
        )
        editor.client.initialized(types.InitializedParams())
        pull = init.capabilities.diagnostic_provider is not None
        print(f"server: {init.server_info.name if init.server_info else '?'} (initialized)")

        # The file Accept will insert into: a script the user has open in the editor.
        target = ws / "quote.py"
        target.write_text('"""Shipping quotes."""\n\n# The agent\'s program goes here.\n')
        target_uri = editor.open(target)
        tools_uri = editor.open(ws / "tools.py")
        end = types.Position(line=3, character=0)

        print(f"\n▶ codeact.run: {task['task']}")
        started = await editor.command(
            "codeact.run",
            {
                "task": task["task"],
                **({"signature": task["signature"]} if task.get("signature") else {}),
                **({"inputs": task["inputs"]} if task.get("inputs") else {}),
                **({"model": model} if model else {}),
                "uri": target_uri,
                "range": {
                    "start": {"line": end.line, "character": 0},
                    "end": {"line": end.line, "character": 0},
                },
            },
        )
        run_id = _get(started, "runId")
        traj_uri = _get(started, "trajectoryUri")
        print(f"  runId={run_id}\n  trajectoryUri={traj_uri}")

        run: dict[str, Any] = {}
        for _ in range(1200):  # an editor refreshes on change; the demo polls, up to ~2 minutes
            run = _plain(await editor.command("codeact.getRun", {"runId": run_id}))
            if run.get("status") in TERMINAL:
                break
            await asyncio.sleep(0.1)
        print(f"\n■ run {run.get('status')}: outputs={json.dumps(run.get('outputs'))}")
        if run.get("error"):
            print(f"  error: {run['error']}")
        for step in run.get("steps", []):
            calls = ", ".join(c["name"] for c in step.get("tool_calls", []))
            err = step.get("error")
            print(
                f"  step {step['index']}: {step.get('status', '')} · {step.get('duration_ms', 0):.0f} ms"
                f" · tools: {calls or '-'}" + (f" · {err['type']}: {err['message']}" if err else "")
            )
            for line in (step.get("stdout") or "").splitlines()[:5]:
                print(f"      | {line}")

        print("\n── trajectory document (as the editor shows it) " + "─" * 30)
        traj_path = _path(traj_uri) if traj_uri.startswith("file:") else None
        if traj_path and traj_path.exists():
            traj_text_uri = editor.open(traj_path)
            text_lines = traj_path.read_text(encoding="utf-8").splitlines()
            for i, line in enumerate(text_lines, 1):
                print(f"  {i:>3} │ {line}")
            print("── code lenses on the trajectory")
            _print_lenses(await editor.lenses(traj_text_uri), text_lines)
            print("── diagnostics on the trajectory")
            _print_diagnostics(await editor.diagnostics_for(traj_text_uri, pull))
        else:
            print(f"  (the trajectory is served at {traj_uri})")

        print("\n── tool bench: code lenses on tools.py")
        tools_lines = (ws / "tools.py").read_text(encoding="utf-8").splitlines()
        _print_lenses(await editor.lenses(tools_uri), tools_lines)
        print("── diagnostics on tools.py")
        _print_diagnostics(await editor.diagnostics_for(tools_uri, pull))

        await _show_mcp_tools(editor)

        print("\n▶ codeact.accept")
        accepted = _plain(await editor.command("codeact.accept", {"runId": run_id}))
        print(f"  → {json.dumps(accepted)}")
        if editor.edits:
            version, text = editor.docs.get(target_uri, (0, ""))
            print(f"── {target.name} after Accept (version {version}):")
            for i, line in enumerate(text.splitlines(), 1):
                print(f"  {i:>3} │ {line}")
        code = 0 if run.get("status") == "finished" and accepted.get("applied") else 1
    finally:
        try:
            await asyncio.wait_for(editor.client.shutdown_async(None), 10)
            editor.client.exit(None)
        except Exception as exc:  # the demo still reports what it saw
            print(f"(shutdown: {exc})")
        await editor.client.stop()  # type: ignore[no-untyped-call]
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"\nworkspace kept at {ws}")
    print("\ndemo " + ("succeeded" if code == 0 else "did NOT finish as expected"))
    return code


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        from pygls.protocol import default_converter

        out = default_converter().unstructure(value)  # type: ignore[no-untyped-call]
        return out if isinstance(out, dict) else {"value": out}
    except Exception:
        return {"value": value}


def _get(value: Any, key: str) -> Any:
    return _plain(value).get(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codeact-demo", description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path, nargs="?", default=Path("examples/quickstart"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace copy")
    args = parser.parse_args(argv)
    if (
        not (args.workspace / "tools.py").exists()
        and not (args.workspace / "pyproject.toml").exists()
    ):
        print(f"codeact-demo: {args.workspace} does not look like a workspace", file=sys.stderr)
        return 2
    return asyncio.run(demo(args.workspace.resolve(), args.keep))


if __name__ == "__main__":
    raise SystemExit(main())
