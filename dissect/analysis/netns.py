"""Throwaway network namespaces for replay and fuzzing.

`ScratchNetns` creates a named namespace (``ip netns add nlshark-<what>-<pid>-<rand>``,
so `RawNetlinkSocket(netns=NAME)` can open sockets inside it), brings its
loopback up over rtnetlink and deletes it on `close` -- which `with` blocks,
`atexit` and SIGTERM/SIGHUP (turned into SystemExit while the namespace is
open) all reach, so an interrupted run does not leave namespaces behind.
Everything a replayed or fuzzed request changes lives in that namespace and
dies with it; the host's namespace is never entered.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import struct
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..capture.nlsocket import NLM_F_ACK, NetlinkSocketError, RawNetlinkSocket, error_of

NETLINK_ROUTE = 0
RTM_NEWLINK = 16
IFF_UP = 0x1


class NetnsError(Exception):
    """A namespace could not be made or used; the text says why."""


def _ip(*argv: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("ip") is None:
        raise NetnsError("iproute2's 'ip' is needed to create network namespaces")
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)


def link_up(netns: str, ifindex: int = 1) -> None:
    """Set a link up (RTM_NEWLINK with IFF_UP in ifi_flags and ifi_change;
    linux/rtnetlink.h, struct ifinfomsg)."""
    body = struct.pack("=BxHiII", 0, 0, ifindex, IFF_UP, IFF_UP)
    try:
        with RawNetlinkSocket(NETLINK_ROUTE, netns=netns) as sock:
            sock.settimeout(2.0)
            for data in sock.transact(RTM_NEWLINK, NLM_F_ACK, body):
                err = error_of(data)
                if err:
                    raise NetnsError(f"cannot bring link {ifindex} up: {os.strerror(err)}")
    except (NetlinkSocketError, OSError) as exc:
        raise NetnsError(f"cannot bring link {ifindex} up in {netns}: {exc}") from None


class ScratchNetns:
    """A fresh named network namespace with `lo` up, deleted by `close`."""

    def __init__(self, what: str = "scratch") -> None:
        self.name = f"nlshark-{what}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        made = _ip("netns", "add", self.name)
        if made.returncode != 0:
            raise NetnsError(
                f"cannot create network namespace {self.name}: "
                f"{made.stderr.strip() or 'ip netns add failed'}"
            )
        self._open = True
        self._previous: dict[int, Any] = {}
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            # Not in the main thread, signal() refuses: atexit still cleans up.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        try:
            link_up(self.name)
        except NetnsError:
            self.close()
            raise

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        _ip("netns", "del", self.name)
        for sig, old in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, old)
        atexit.unregister(self.close)

    def __enter__(self) -> ScratchNetns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CLONE_NEWPID = 0x20000000


def run_isolated(fn: Callable[[], int]) -> int:
    """Run `fn` in a process alone in a new PID namespace and return its exit
    status.  Requests that name processes (IFLA_NET_NS_PID moves a link to
    the network namespace of a pid) then only ever find that process, which
    lives in the scratch network namespaces: a replayed or mutated request
    cannot move anything into the host's namespace through a pid.  (File
    descriptors are safe as long as no namespace fd is held open, which
    `RawNetlinkSocket` does not do after opening its socket.)"""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 2
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grandchild decides
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWPID) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"cannot create a PID namespace: {os.strerror(err)}")
            inner = os.fork()
            if inner == 0:
                status = 70
                try:
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    # As PID 1 of its namespace, the process only gets the
                    # signals it handles: make SIGTERM/SIGHUP end it cleanly.
                    for sig in (signal.SIGTERM, signal.SIGHUP):
                        signal.signal(sig, _exit_on_signal)
                    status = fn()
                except KeyboardInterrupt:
                    status = 130
                except SystemExit as exc:
                    status = exc.code if isinstance(exc.code, int) else 1
                except BaseException:
                    traceback.print_exc()
                    status = 70
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(status)
            _forward_signals(inner)
            code = _wait(inner)
        except OSError as exc:
            print(f"nlshark: {exc.strerror or exc}", file=sys.stderr)
            code = 2
        finally:
            sys.stderr.flush()
            os._exit(code)
    forwarded = _forward_signals(pid)
    try:
        return _wait(pid)
    finally:
        for signum, old in forwarded.items():
            signal.signal(signum, old)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _forward_signals(pid: int) -> dict[int, Any]:
    """Pass SIGTERM and SIGHUP on to `pid` (which cleans up and exits)
    instead of dying and leaving it running."""

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, forward)
    return previous


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except KeyboardInterrupt:
            continue  # the child got the signal too and is cleaning up
        except InterruptedError:
            continue
        except ChildProcessError:
            return 1
        code = os.waitstatus_to_exitcode(status)
        return code if code >= 0 else 128 - code


def netns_exists(name: str) -> bool:
    from ..capture.nlsocket import netns_path

    return os.path.exists(netns_path(name))


__all__ = ["NetnsError", "ScratchNetns", "link_up", "netns_exists", "run_isolated"]
