"""Fixtures shared by the test directories."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

HEAD = textwrap.dedent(
    """
    import sys, ray
    ray.init(num_cpus=2, resources={"codeact_slot": 4}, include_dashboard=False,
             log_to_driver=False)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.read()  # until the tests end
    ray.shutdown()
    """
)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A local Ray "cluster" for the whole session: started once, stopped at the end. It uses
    Ray's token authentication (its default), which a driver joining by address must be told
    about (RAY_AUTH_MODE=token; the token is ~/.ray/auth_token), as on a real cluster."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert head.stdout is not None and head.stdin is not None
    address = head.stdout.readline().strip()
    assert address, "the Ray head did not start"
    try:
        yield address
    finally:
        head.stdin.close()
        head.wait(timeout=120)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
