"""Workspace configuration: where it is read from, what wins, and how bad values are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeact_lsp.config import DEFAULT_TOOL_GLOBS, load_config, resolve_python


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    loaded = load_config(tmp_path)
    assert loaded.source is None
    assert loaded.problems == []
    assert loaded.config.tools == DEFAULT_TOOL_GLOBS
    assert loaded.config.approval == "auto"
    assert loaded.config.sandbox.backend == "auto"


def test_pyproject_table_is_read(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.codeact]\ntools = ["shop/*.py", "mypkg.tools"]\nmax_iters = 3\n'
        'approval = "review"\n[tool.codeact.sandbox]\ntimeout = 5\nread_paths = ["data"]\n',
    )
    loaded = load_config(tmp_path)
    assert loaded.problems == []
    assert loaded.config.tools == ["shop/*.py", "mypkg.tools"]
    assert loaded.config.max_iters == 3
    assert loaded.config.approval == "review"
    assert loaded.config.sandbox.timeout == 5
    assert loaded.config.sandbox.read_paths == ["data"]


def test_codeact_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.codeact]\nmax_iters = 3\n")
    write(tmp_path / "codeact.toml", "max_iters = 7\n")
    loaded = load_config(tmp_path)
    assert loaded.config.max_iters == 7
    assert loaded.source and loaded.source.endswith("codeact.toml")


def test_bad_values_are_reported_with_file_and_key_and_the_rest_kept(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[tool.codeact]\nmax_iters = "many"\napproval = "sometimes"\nmodel = "openai/gpt-4o"\n'
        "[tool.codeact.sandbox]\ntimeout = -1\nmemory_mb = 256\nbogus = 1\n",
    )
    loaded = load_config(tmp_path)
    keys = {p.key for p in loaded.problems}
    assert {"max_iters", "approval", "sandbox.timeout", "sandbox.bogus"} <= keys
    assert all(p.file.endswith("pyproject.toml") for p in loaded.problems)
    # the good keys survive the bad ones
    assert loaded.config.model == "openai/gpt-4o"
    assert loaded.config.sandbox.memory_mb == 256
    assert loaded.config.max_iters == 10


def test_unparseable_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path / "codeact.toml", "max_iters = [\n")
    loaded = load_config(tmp_path)
    assert loaded.problems and "unreadable" in loaded.problems[0].message
    assert loaded.config.max_iters == 10


def test_overrides_win_key_by_key(tmp_path: Path) -> None:
    write(tmp_path / "codeact.toml", 'model = "a"\n[sandbox]\ntimeout = 5\nmemory_mb = 300\n')
    loaded = load_config(tmp_path, {"model": "b", "sandbox": {"timeout": 9}, "tasks": None})
    assert loaded.config.model == "b"
    assert loaded.config.sandbox.timeout == 9
    assert loaded.config.sandbox.memory_mb == 300


def test_python_resolution_order(tmp_path: Path) -> None:
    loaded = load_config(tmp_path)
    assert resolve_python(tmp_path, loaded.config, "/client/python") == "/client/python"
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("")
    assert resolve_python(tmp_path, loaded.config, "/client/python") == str(venv_python)
    configured = load_config(tmp_path, {"python": "envs/tools/bin/python"}).config
    assert resolve_python(tmp_path, configured) == str(tmp_path / "envs/tools/bin/python")


def test_model_params_take_litellm_options_but_never_a_key(tmp_path: Path) -> None:
    (tmp_path / "codeact.toml").write_text(
        "[model_params]\napi_base = 'http://127.0.0.1:8080/v1'\ntemperature = 0\n"
        "max_tokens = 256\ntimeout = 30\napi_key_env = 'MY_KEY'\nextra_body = {top_k = 5}\n"
    )
    loaded = load_config(tmp_path)
    assert loaded.problems == []
    assert loaded.config.model_params == {
        "api_base": "http://127.0.0.1:8080/v1",
        "temperature": 0,
        "max_tokens": 256,
        "timeout": 30,
        "api_key_env": "MY_KEY",
        "extra_body": {"top_k": 5},
    }
    # overrides (editor settings, CLI flags) merge key by key
    over = load_config(tmp_path, {"model_params": {"temperature": 0.7}}).config.model_params
    assert over["temperature"] == 0.7 and over["max_tokens"] == 256


@pytest.mark.parametrize(
    "table",
    [
        "api_key = 'sk-secret-value-123'",
        "extra_headers = {Authorization = 'Bearer sk-secret-value-123'}",
        "aws_secret_access_key = 'sk-secret-value-123'",
    ],
)
def test_a_key_in_model_params_is_refused_without_being_echoed(tmp_path: Path, table: str) -> None:
    (tmp_path / "codeact.toml").write_text(f"max_iters = 3\n[model_params]\n{table}\n")
    loaded = load_config(tmp_path)
    assert loaded.config.max_iters == 3  # the rest of the file still counts
    assert loaded.config.model_params == {}
    (problem,) = loaded.problems
    assert problem.key == "model_params" and "environment" in problem.message
    assert "sk-secret-value-123" not in str(problem)


def test_editor_model_params_keep_litellm_spelling() -> None:
    from codeact_lsp.lsp.settings import settings_to_overrides

    got = settings_to_overrides({"modelParams": {"api_base": "u", "extraHeaders": {"X-Tag": "1"}}})
    assert got == {"model_params": {"api_base": "u", "extraHeaders": {"X-Tag": "1"}}}


@pytest.mark.parametrize(
    ("globs", "name", "flagged", "expected"),
    [
        (["delete_*"], "delete_all", False, True),
        (["delete_*"], "Delete_all", False, False),  # case-sensitive everywhere
        (["delete_*"], "read", False, False),
        ([], "read", True, True),  # the tool layer flagged it
        (["send_?ail", "pay"], "send_mail", False, True),
    ],
)
def test_config_answers_whether_a_tool_needs_confirmation(
    globs: list[str], name: str, flagged: bool, expected: bool
) -> None:
    from codeact_lsp.config import CodeActConfig

    assert CodeActConfig(confirm=globs).needs_confirmation(name, flagged) is expected
