"""Run state that sticks, end to end through the real server: accept records where and what it
applied and survives a restart; an undo of the accepted text offers Accept again; discard clears
the run's diagnostics and document, stays discarded across a restart, and restore undoes it. The
tool logs its real calls to a file: none of this may call it again."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import (
    code_reply,
    copy_quickstart,
    lsp_path,
    start_client,
    stop_client,
    write_replies,
)

COUNTED = '''\
"""A tool that counts its real calls in calls.log (the test's oracle)."""

from pathlib import Path

LOG = Path(__file__).with_name("calls.log")


def bump(tag: str) -> int:
    """Log one real call; returns how many calls were made so far."""
    with LOG.open("a", encoding="utf-8") as f:
        f.write(tag + "\\n")
    return len(LOG.read_text(encoding="utf-8").splitlines())


def refuse(tag: str) -> int:
    """Log one real call, then fail."""
    with LOG.open("a", encoding="utf-8") as f:
        f.write(tag + "\\n")
    raise ValueError(f"refused {tag}")
'''


def _ws(tmp_path: Path) -> Path:
    ws = copy_quickstart(tmp_path)
    (ws / "counted.py").write_text(COUNTED)
    (ws / "codeact.toml").write_text('tools = ["counted.py"]\nmax_iters = 4\n')
    return ws


def _calls(ws: Path) -> list[str]:
    log = ws / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _def_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("def "))


def _titles(lenses: list) -> list[str]:  # type: ignore[type-arg]
    return [lens.command.title for lens in lenses if lens.command]


async def test_accept_undo_discard_restart_restore(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    target = ws / "later.py"
    target.write_text("# results\n")
    model = write_replies(ws, "bump", [code_reply("n = bump('a')"), code_reply("final_answer(n)")])
    pos = {"line": 1, "character": 0}
    first = await start_client(ws)
    try:
        uri = first.open(target)
        started = await first.command(
            "codeact.run",
            {"task": "t", "model": model, "uri": uri, "range": {"start": pos, "end": pos}},
        )
        await first.run_until(started["runId"], {"finished"})
        doc = first.open(Path(lsp_path(started["trajectoryUri"])))
        assert "✔ Accept" in _titles(await first.lenses(doc))

        applied = await first.command("codeact.accept", {"runId": started["runId"]})
        assert applied["applied"] is True
        inserted = first.docs[uri][1]
        assert "bump(" in inserted
        # the lens names the line the accepted function starts at
        at = f"accepted into later.py:{_def_line(inserted)}"
        titles = _titles(await first.lenses(doc))
        assert at in titles
        assert not any(t.startswith("✔ Accept") for t in titles)
        run = await first.command("codeact.getRun", {"runId": started["runId"]})
        assert run["accepted"]["uri"] == uri and run["accepted"]["text"].strip() in inserted

        # undo in the editor: the text is gone, the view says so and offers Accept again
        first.edit(uri, "# results\n")
        titles = _titles(await first.lenses(doc))
        assert "✔ Accept again" in titles
        assert any("no longer there" in t for t in titles)
        again = await first.command("codeact.accept", {"runId": started["runId"]})
        assert again["applied"] is True
        first.save(uri)  # on disk, so a new server finds it there
        assert f"accepted into later.py:{_def_line(first.docs[uri][1])}" in _titles(
            await first.lenses(doc)
        )

        # a second run, discarded: no diagnostics, no document, not listed
        other_model = write_replies(ws, "fail", [code_reply("bump('b')\n1 / 0")])
        other = await first.command("codeact.run", {"task": "x", "model": other_model})
        await first.run_until(other["runId"], {"max_iters", "failed"})
        other_doc = first.open(Path(lsp_path(other["trajectoryUri"])))
        assert await first.diagnostics_for(other_doc)  # the ZeroDivisionError is shown
        gone = await first.command("codeact.discard", {"runId": other["runId"]})
        assert gone["discarded"] is True and gone["closeDocument"] == other["trajectoryUri"]
        assert gone["undo"]["command"] == "codeact.restore"
        assert await first.diagnostics_for(other_doc) == []
        assert await first.lenses(other_doc) == []
        assert not Path(lsp_path(other["trajectoryUri"])).exists()
        listed = await first.command("codeact.listRuns", {})
        assert [r["runId"] for r in listed["runs"]] == [started["runId"]]
        listed = await first.command("codeact.listRuns", {"includeDiscarded": True})
        marks = [(r["runId"], r["discarded"]) for r in listed["runs"]]
        assert marks == [(started["runId"], False), (other["runId"], True)]
        await first.shutdown_session()
    finally:
        await stop_client(first)
    stored = json.loads((ws / ".codeact" / "runs" / f"{other['runId']}.json").read_text())
    assert stored["discarded_at"] is not None  # the engine's last write kept the mark

    second = await start_client(ws)  # a restart: the server knows the runs from their files
    try:
        listed = await second.command("codeact.listRuns", {})
        assert [(r["runId"], r["accepted"]) for r in listed["runs"]] == [(started["runId"], True)]
        doc = second.open(Path(lsp_path(started["trajectoryUri"])))
        titles = _titles(await second.lenses(doc))
        assert at in titles and "✔ Accept" not in titles
        refused = await second.command("codeact.accept", {"runId": started["runId"]})
        assert refused["applied"] is False and "already in later.py" in refused["reason"]
        back = await second.command("codeact.restore", {"runId": other["runId"]})
        assert back["restored"] is True
        assert Path(lsp_path(other["trajectoryUri"])).exists()
        listed = await second.command("codeact.listRuns", {})
        assert {r["runId"] for r in listed["runs"]} == {started["runId"], other["runId"]}
        await second.shutdown_session()
    finally:
        await stop_client(second)
    assert _calls(ws) == ["a", "b"]  # accept, undo, discard, restart, restore: no real call


async def test_rerun_and_follow_up_views_say_how_the_state_was_rebuilt(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    model = write_replies(
        ws,
        "three",
        [
            code_reply("n = bump('a')"),
            code_reply("m = n + bump('b')"),
            code_reply("final_answer(m)"),
        ],
    )
    first = await start_client(ws)
    try:
        started = await first.command("codeact.run", {"task": "t", "model": model})
        await first.run_until(started["runId"], {"finished"})
        assert _calls(ws) == ["a", "b"]
        rerun = await first.command(
            "codeact.rerun", {"runId": started["runId"], "step": 3, "code": "final_answer(m * 10)"}
        )
        run = await first.run_until(rerun["runId"], {"finished"})
        assert run["outputs"] == {"answer": 30} and _calls(ws) == ["a", "b"]
        assert [s["replayed"] for s in run["steps"]] == [True, True, False]
        doc = first.open(Path(lsp_path(rerun["trajectoryUri"])))
        titles = _titles(await first.lenses(doc))
        assert any(
            t.startswith("state rebuilt (tool calls answered from the record)") for t in titles
        )
        assert sum("replayed: tool calls answered from the record" in t for t in titles) == 2
        # re-executing for real is an explicit choice: the tool runs again
        real = await first.command(
            "codeact.rerun",
            {"runId": started["runId"], "step": 3, "code": "final_answer(m)", "replay": "real"},
        )
        run = await first.run_until(real["runId"], {"finished"})
        assert run["rebuild"]["mode"] == "real" and _calls(ws) == ["a", "b", "a", "b"]
        assert run["outputs"] == {"answer": 3 + 4}  # the counter went on: 3, then 3 + 4
        await first.shutdown_session()
    finally:
        await stop_client(first)

    second = await start_client(ws)  # the sandbox is gone with the old server
    try:
        follow = await second.command(
            "codeact.followUp", {"runId": started["runId"], "task": "again"}
        )
        run = await second.run_until(follow["runId"], {"finished", "failed"})
        assert run["rebuild"]["session"] == "rebuilt"
        assert "only on disk" in run["rebuild"]["reason"]
        assert [(e["index"], e["calls"]) for e in run["rebuild"]["steps"]] == [
            (1, 1),
            (2, 1),
            (3, 1),
        ]
        doc = second.open(Path(lsp_path(follow["trajectoryUri"])))
        assert any(t.startswith("state rebuilt") for t in _titles(await second.lenses(doc)))
        await second.shutdown_session()
    finally:
        await stop_client(second)
    assert _calls(ws) == ["a", "b", "a", "b"]


async def test_task_lens_and_diagnostic_lead_with_the_root_error(tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    model = write_replies(ws, "refuse", [code_reply("x = refuse('c')")])
    (ws / "tasks.toml").write_text(
        f'[[task]]\nname = "refused"\ntask = "t"\nmodel = "{model}"\nexpect = 1\n'
    )
    client = await start_client(ws)
    try:
        out = await client.command("codeact.runTasks", {"names": ["refused"]})
        assert out["passed"] == 0
        message = out["results"][0]["message"]
        assert message.startswith("tool refuse raised ValueError: refused c at ")
        assert message.index("refused c") < message.index("then: ")
        uri = client.open(ws / "tasks.toml")
        titles = _titles(await client.lenses(uri))
        assert len(titles) == 1 and "· tool refuse raised ValueError: refused c" in titles[0]
        diags = await client.diagnostics_for(uri)
        assert len(diags) == 1 and diags[0].message.startswith(
            "task `refused` failed: tool refuse raised ValueError"
        )
        related = diags[0].related_information or []
        assert len(related) == 1 and related[0].location.uri.endswith("/counted.py")
        raising = next(i for i, t in enumerate(COUNTED.splitlines()) if "raise ValueError" in t)
        assert related[0].location.range.start.line == raising  # the `raise` line, 0-based
        await client.shutdown_session()
    finally:
        await stop_client(client)
    assert _calls(ws) == ["c"]


def test_divergence_is_shown_with_its_choice() -> None:
    from codeact_lsp.lsp.trajectory_view import build_view
    from codeact_lsp.trajectory import Rebuild, ReplayDivergence, Step, Trajectory

    divergence = ReplayDivergence(
        run_id="r0", step=1, call=1, message="replaying step 1 of run r0: call 1 asked for x()"
    )
    kept = Step(index=1, code="a = x()", status="awaiting_approval", replayed=True)
    traj = Trajectory(
        id="r1",
        task="t",
        status="awaiting_approval",
        steps=[kept],
        relation="rerun",
        rebuild=Rebuild(
            session="rebuilt", reason="re-run", divergence=divergence, choice="pending"
        ),
    )
    view = build_view(traj)
    titles = _titles(view.lenses)
    assert "▶ Run the rest for real" in titles and "■ Stop" in titles
    assert "▶ Run step" not in titles
    assert [d.code for d in view.diagnostics] == ["replay-diverged"]
    assert "choose: run the rest for real, or stop" in view.diagnostics[0].message
    # a follow-up's divergence waits on a step of an earlier run: the choice sits at the top
    traj.steps = []
    titles = _titles(build_view(traj).lenses)
    assert titles.count("▶ Run the rest for real") == 1 and titles.count("■ Stop") == 1
