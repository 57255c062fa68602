"""`codeact tools`: the workspace's tool schemas and diagnostics, as JSON or a readable table.

The same `ToolsReport` serves the editor's `codeact.listTools`, so the CLI and the editor agree on
what the model will see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, Field

from codeact_lsp.config import CodeActConfig, ConfigProblem, load_config
from codeact_lsp.tools.discovery import discover
from codeact_lsp.tools.host import ToolHost
from codeact_lsp.tools.models import DiscoveredTool, ToolDiagnostic, ToolSchema
from codeact_lsp.tools.runtime.quality import ECHOES


class ToolsReport(BaseModel):
    workspace: str
    config_file: str | None = None
    python: str | None = None
    tools: list[ToolSchema] = Field(default_factory=list)  # what the model sees (from the host)
    discovered: list[DiscoveredTool] = Field(default_factory=list)  # static view (no import)
    diagnostics: list[ToolDiagnostic] = Field(default_factory=list)
    problems: list[ConfigProblem] = Field(default_factory=list)
    host_problem: str | None = None

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


def merge_diagnostics(*groups: list[ToolDiagnostic]) -> list[ToolDiagnostic]:
    """Static and runtime diagnostics together, without reporting the same thing twice: an exact
    repeat, or a runtime echo of a static finding (`quality.ECHOES`: the static one stays)."""

    def key(d: ToolDiagnostic, code: str, fields: tuple[str, ...]) -> tuple[object, ...]:
        return (code, *(getattr(d, f) for f in fields))

    static = {
        key(d, d.code, fields)
        for g in groups
        for d in g
        if d.source != "runtime"
        for fields in {f for echo, f in ECHOES.values() if echo == d.code}
    }
    seen: set[tuple[str, int, str, str | None, str]] = set()
    out: list[ToolDiagnostic] = []
    for group in groups:
        for d in group:
            echo = ECHOES.get(d.code) if d.source == "runtime" else None
            if echo is not None and key(d, *echo) in static:
                continue
            exact = (d.file, d.line, d.code, d.tool, d.message)
            if exact in seen:
                continue
            seen.add(exact)
            out.append(d)
    return sorted(out, key=lambda d: (d.file, d.line, d.code))


def collect(
    workspace: str | os.PathLike[str],
    config: CodeActConfig | None = None,
    host: ToolHost | None = None,
    *,
    start_host: bool = True,
) -> ToolsReport:
    """Static discovery plus, when a host is given or may be started, the runtime schemas."""
    ws = Path(workspace).resolve()
    problems: list[ConfigProblem] = []
    source: str | None = None
    if config is None:
        loaded = load_config(ws)
        config, problems, source = loaded.config, loaded.problems, loaded.source
    found = discover(ws, config)
    report = ToolsReport(
        workspace=str(ws), config_file=source, discovered=found.tools, problems=problems
    )
    owned = False
    if host is None and start_host:
        host = ToolHost.start(ws, config)
        owned = True
    runtime_diags: list[ToolDiagnostic] = []
    if host is not None:
        report.python = host.python
        report.tools = host.schemas()
        report.host_problem = host.problem
        runtime_diags = host.diagnostics
        if owned:
            host.close_sync()
    report.diagnostics = merge_diagnostics(found.diagnostics, runtime_diags)
    return report


def tools_command(workspace: Path, as_json: bool, out: TextIO) -> int:
    """Print the report. Exit code: 0 fine, 1 a tool module has errors, 2 configuration problems."""
    return write_report(collect(workspace), as_json, out)


def write_report(report: ToolsReport, as_json: bool, out: TextIO) -> int:
    """Print an already collected report and give `codeact tools`' exit code, shared with the MCP
    variant so both commands format and judge a report the same way."""
    if as_json:
        out.write(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    else:
        out.write(render_table(report))
    if report.problems:
        return 2
    return 1 if report.has_errors or report.host_problem else 0


def _rel(path: str, root: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def render_table(report: ToolsReport) -> str:
    lines: list[str] = [f"workspace: {report.workspace}"]
    if report.config_file:
        lines.append(f"config:    {_rel(report.config_file, report.workspace)}")
    if report.python:
        lines.append(f"python:    {report.python}")
    for p in report.problems:
        lines.append(f"config problem: {p}")
    if report.host_problem:
        lines.append(f"tool host: {report.host_problem}")
    lines.append("")
    rows: list[tuple[str, str, str]] = []
    if report.tools:
        for s in report.tools:
            flags = " [confirm]" if s.confirm else ""
            if ":" in s.module:  # not a Python module: e.g. "mcp:<server>"
                flags += f" [{s.module}]"
            doc = (s.doc.strip().splitlines() or [""])[0]
            rows.append((s.name + flags, s.signature, doc))
        header = f"{len(report.tools)} tool(s):"
    else:
        for t in report.discovered:
            rows.append(
                (
                    t.name,
                    t.signature or f"def {t.name}(...)",
                    t.doc.splitlines()[0] if t.doc else "",
                )
            )
        header = (
            f"{len(report.discovered)} tool(s) found statically (the tool host did not load them):"
        )
    lines.append(header if rows else "no tools found (check the `tools` key of [tool.codeact])")
    width = max((len(r[0]) for r in rows), default=0)
    for name, sig, doc in rows:
        lines.append(f"  {name.ljust(width)}  {sig}")
        if doc:
            lines.append(f"  {''.ljust(width)}    {doc}")
    if report.diagnostics:
        lines.append("")
        lines.append(f"{len(report.diagnostics)} diagnostic(s):")
        for d in report.diagnostics:
            where = f"{_rel(d.file, report.workspace)}:{d.line}"
            lines.append(f"  {where}: {d.severity}: {d.message} [{d.code}]")
    return "\n".join(lines) + "\n"
