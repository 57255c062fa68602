"""Degrading loudly: on a kernel without Landlock/seccomp (or without bubblewrap) the sandbox says
what is not enforced, and `require_isolation` refuses to run. The workers here are real; only the
kernel description handed to the planner is that of an older machine."""

from __future__ import annotations

import sys

import pytest
from sandbox_helpers import TOOLS, Recorder

from codeact_lsp.config import SandboxSettings
from codeact_lsp.sandbox import IsolationUnavailable, Sandbox, SandboxPool
from codeact_lsp.sandbox.backends import Kernel, describe, make_plan, refuse_if_required

OLD_KERNEL = Kernel(landlock_abi=0, seccomp=False, bwrap=None)


def test_plan_on_an_old_kernel_lists_the_missing_layers() -> None:
    plan = make_plan(SandboxSettings(backend="bwrap"), sys.executable, [], OLD_KERNEL)
    assert plan.spec.backend == "landlock"
    assert not plan.landlock and not plan.seccomp
    info = describe(plan, applied=["memory", "file-size", "disk"], problems=[])
    missing = " | ".join(info.not_enforced)
    for layer in ("bwrap:", "filesystem:", "seccomp:", "network:", "processes:", "signals:"):
        assert layer in missing, layer
    assert "memory:rlimit" in info.isolation
    with pytest.raises(IsolationUnavailable) as exc:
        refuse_if_required(SandboxSettings(require_isolation=True), info)
    assert "filesystem" in str(exc.value)


async def _start_on(kernel: Kernel, settings: SandboxSettings, pool: SandboxPool) -> Sandbox:
    sb = Sandbox(settings, TOOLS, Recorder(), python=sys.executable, extra_paths=[], pool=pool)
    sb.plan = make_plan(settings, sys.executable, [], kernel)
    await sb._boot()
    return sb


async def test_real_worker_without_confinement_reports_it(pool: SandboxPool) -> None:
    sb = await _start_on(OLD_KERNEL, SandboxSettings(), pool)
    try:
        assert any(m.startswith("filesystem") for m in sb.info.not_enforced)
        r = await sb.execute("open('/etc/hostname').read() is not None")
        assert r.value == "True"  # really unconfined: which is exactly what the info says
        assert r.sandbox is not None and r.sandbox.not_enforced == sb.info.not_enforced
    finally:
        await sb.close()


async def test_require_isolation_refuses_a_real_unconfined_worker(pool: SandboxPool) -> None:
    with pytest.raises(IsolationUnavailable):
        await _start_on(OLD_KERNEL, SandboxSettings(require_isolation=True), pool)


async def test_require_isolation_accepts_this_machine(pool: SandboxPool) -> None:
    sb = await Sandbox.start(SandboxSettings(require_isolation=True), TOOLS, Recorder(), pool=pool)
    try:
        assert sb.info.not_enforced == []
    finally:
        await sb.close()


async def test_bwrap_that_fails_to_start_falls_back_loudly(pool: SandboxPool) -> None:
    broken = Kernel(landlock_abi=7, seccomp=True, bwrap="/bin/false")  # installed, cannot run
    sb = await _start_on(broken, SandboxSettings(backend="bwrap"), pool)
    try:
        assert sb.info.backend == "landlock"
        assert any(m.startswith("bwrap: bubblewrap failed to start") for m in sb.info.not_enforced)
        assert (await sb.execute("1 + 1")).value == "2"
    finally:
        await sb.close()
    with pytest.raises(Exception, match="did not start"):
        await _start_on(broken, SandboxSettings(backend="bwrap", require_isolation=True), pool)
