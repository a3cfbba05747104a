"""Named network namespaces for tests that change things in the kernel.

`named_netns` creates a namespace with ``ip netns add`` under a name unique
to this test run and deletes it afterwards, so every link, address and route
a test makes lives and dies there, never in the host's namespace.  Tests
skip (with the reason) where namespaces cannot be made: no iproute2, not
root, or a sandbox that forbids it.  `ns_run` runs a command inside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _skip_reason() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    return None


@contextmanager
def named_netns(prefix: str = "nlshark-t") -> Iterator[str]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def ns_run(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command inside namespace `ns`."""
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=check
    )
