"""`[tool.codeact.mcp.<name>]` and `.vscode/mcp.json`: validation, substitution, names, stubs and
argument binding (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codeact_lsp.config import load_config
from codeact_lsp.mcp.schema import annotation, assign_names, bind, build_stub, python_name
from codeact_lsp.mcp.servers import server_specs


def _load(tmp_path: Path, text: str) -> Any:
    (tmp_path / "pyproject.toml").write_text(text)
    return load_config(tmp_path)


def test_stdio_and_http_servers_from_pyproject(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CODEACT_TEST_TOKEN", "s3cret")
    loaded = _load(
        tmp_path,
        """
[tool.codeact.mcp.files]
command = "npx"
args = ["-y", "server", "${workspaceFolder}/data"]
env = { LEVEL = "debug", KEY = "${env:CODEACT_TEST_TOKEN}" }
tools = ["read_*"]
confirm = ["write_*"]
call_timeout = 7

[tool.codeact.mcp.remote]
url = "https://example.invalid/mcp"
headers = { Authorization = "Bearer ${env:CODEACT_TEST_TOKEN}" }
""",
    )
    assert loaded.problems == []
    specs = {s.name: s for s in server_specs(tmp_path, loaded.config, loaded.source)}
    files, remote = specs["files"], specs["remote"]
    assert files.transport == "stdio" and files.args[-1] == f"{tmp_path}/data"
    assert files.env == {"LEVEL": "debug", "KEY": "s3cret"} and files.cwd == str(tmp_path)
    assert files.tools == ["read_*"] and files.confirm == ["write_*"] and files.call_timeout == 7
    assert files.line == 2 and files.source.endswith("pyproject.toml")
    assert remote.transport == "http" and remote.headers == {"Authorization": "Bearer s3cret"}
    assert remote.problem is None


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        ('args = ["x"]', "mcp.bad", "either `command`"),
        ('command = "x"\nurl = "http://h"', "mcp.bad", "either `command`"),
        (
            'url = "http://h"\nheaders = { Authorization = "Bearer abc" }',
            "mcp.bad.headers",
            "from the environment",
        ),
        ('command = "x"\nargz = []', "mcp.bad.argz", "did you mean 'args'"),
        ('command = "x"\ncall_timeout = 0', "mcp.bad.call_timeout", "greater than 0"),
    ],
)
def test_bad_server_tables_are_reported_with_their_key(
    tmp_path: Path, table: str, key: str, fragment: str
) -> None:
    loaded = _load(tmp_path, f"[tool.codeact.mcp.bad]\n{table}\n\n[tool.codeact]\nmax_iters = 3\n")
    assert [p.key for p in loaded.problems] == [key]
    assert fragment in loaded.problems[0].message
    assert loaded.config.max_iters == 3  # the rest of the config is kept


def test_unresolvable_references_leave_the_server_unstartable(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        '[tool.codeact.mcp.x]\ncommand = "run"\nargs = ["${env:CODEACT_NOT_SET_ANYWHERE}"]\n',
    )
    (spec,) = server_specs(tmp_path, loaded.config)
    assert spec.problem == "environment variable CODEACT_NOT_SET_ANYWHERE is not set"


VSCODE = """{
  // servers the editor's agent uses
  "inputs": [{"id": "token", "type": "promptString"}],
  "servers": {
    "local": {"type": "stdio", "command": "node", "args": ["${workspaceFolder}/srv.js"],},
    "prompted": {"type": "http", "url": "https://h/mcp",
                 "headers": {"Authorization": "Bearer ${input:token}"}},
    "shadowed": {"command": "from-vscode"},
    "codeact": {"command": "/x/.venv/bin/codeact", "args": ["mcp", "--workspace", "."]},
  },
}"""


@pytest.mark.parametrize("enabled", [False, True])
def test_vscode_servers_are_reused_only_when_asked(tmp_path: Path, enabled: bool) -> None:
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "mcp.json").write_text(VSCODE)
    flag = "mcp_vscode = true\n" if enabled else ""
    loaded = _load(
        tmp_path, f'[tool.codeact]\n{flag}\n[tool.codeact.mcp.shadowed]\ncommand = "mine"\n'
    )
    specs = {s.name: s for s in server_specs(tmp_path, loaded.config, loaded.source)}
    assert specs["shadowed"].command == "mine"  # the project's own table wins
    if not enabled:
        assert set(specs) == {"shadowed"}
        return
    assert specs["local"].args == [f"{tmp_path}/srv.js"] and specs["local"].line == 5
    assert specs["local"].source.endswith("mcp.json")
    assert "codeact" not in specs  # codeact mcp itself is not one of its own tool servers
    assert "VS Code prompt" in (specs["prompted"].problem or "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("get-sum", "get_sum"), ("echo", "echo"), ("2fa", "_2fa"), ("class", "class_"),
     ("a.b/c", "a_b_c"), ("", "tool")],
)  # fmt: skip
def test_python_names(raw: str, expected: str) -> None:
    assert python_name(raw) == expected


def test_collisions_get_the_server_prefix_on_every_claimant() -> None:
    names = assign_names(
        [("one", ["search", "only-here"]), ("two", ["search"]), ("three", ["note"])],
        taken=["note", "final_answer"],
    )
    assert names == {
        ("one", "search"): "one_search",
        ("two", "search"): "two_search",
        ("one", "only-here"): "only_here",
        ("three", "note"): "three_note",
    }


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "str"),
        ({"type": "integer"}, "int"),
        ({"type": ["string", "null"]}, "str | None"),
        ({"enum": ["a", "b"]}, "Literal['a', 'b']"),
        ({"type": "array", "items": {"type": "number"}}, "list[float]"),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, "dict[str, int]"),
        ({"type": "object", "properties": {"x": {}}}, "dict[str, Any]"),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, "int | str"),
        ({"anyOf": [{"type": "integer"}, {}]}, "Any"),
        ({}, "Any"),
    ],
)
def test_annotations_from_json_schema(schema: dict[str, Any], expected: str) -> None:
    assert annotation(schema) == expected


def test_stub_orders_required_first_and_keeps_odd_names_reachable() -> None:
    stub = build_stub(
        "find",
        "Find things.",
        {
            "type": "object",
            "properties": {
                "limit": {"type": "integer", "default": 10},
                "query": {"type": "string", "description": "what to look for"},
                "from": {"type": "string"},
            },
            "required": ["query"],
        },
        server="s",
    )
    assert stub.signature == "def find(query: str, limit: int = 10, **arguments: Any) -> Any"
    assert "query: what to look for" in stub.doc and "'from' (pass as **" in stub.doc
    assert bind("find", stub.params, ["q"], {"from": "x"}) == {"query": "q", "from": "x"}


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (["q"], {}, {"query": "q"}),
        (["q", 5], {}, {"query": "q", "limit": 5}),
        ([], {"query": "q", "limit": None}, {"query": "q"}),  # None: not given
        (["q"], {"query": "again"}, TypeError),
        ([], {}, TypeError),
        (["q", 1, 2], {}, TypeError),
        (["q"], {"nope": 1}, TypeError),
    ],
)
def test_binding_checks_calls_like_python(
    args: list[Any], kwargs: dict[str, Any], expected: Any
) -> None:
    stub = build_stub(
        "find",
        None,
        {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["query"],
        },
    )
    if expected is TypeError:
        with pytest.raises(TypeError):
            bind("find", stub.params, args, kwargs)
    else:
        assert bind("find", stub.params, args, kwargs) == expected
