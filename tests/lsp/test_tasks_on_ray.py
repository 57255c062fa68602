"""The editor's "Run Task Suite" on the configured Ray cluster (`suite.executor = "ray"`): the
runs happen in Ray tasks (each result names its node), the run files arrive in the workspace,
and the lenses remember the results like a local suite's."""

from __future__ import annotations

from pathlib import Path

from .conftest import start_client, stop_client


async def test_run_tasks_targets_the_configured_cluster(workspace: Path, ray_address: str) -> None:
    with (workspace / "pyproject.toml").open("a") as f:
        f.write(f'\n[tool.codeact.suite]\nexecutor = "ray"\nrepeat = 2\n\n'
                f'[tool.codeact.suite.ray]\naddress = "{ray_address}"\n')  # fmt: skip
    client = await start_client(workspace, env={"RAY_AUTH_MODE": "token"})
    try:
        reply = await client.command("codeact.runTasks", {})
        await client.shutdown_session()
    finally:
        await stop_client(client)
    assert (reply["passed"], reply["total"]) == (2, 2), reply
    for result in reply["results"]:
        assert result["node"] and result["repeat"] in (1, 2) and result["attempts"] == 1
        saved = Path(result["trajectory"])
        assert saved.parent == workspace / ".codeact" / "runs" and saved.is_file()
    assert (workspace / ".codeact" / "task_results.json").is_file()
