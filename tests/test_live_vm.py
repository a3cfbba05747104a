"""Live capture on a real nlmon device: nlshark next to tcpdump in a VM.

tests/vm/nlmonvm.py boots a Debian kernel (which has nlmon.ko) under QEMU
with the host's root filesystem as its read-only root, and runs
tests/vm/live_capture.sh there: ``nlshark -i nlmon0 -w`` and ``tcpdump -i
nlmon0 -w`` capture the same ``ip link/addr/route`` commands and are stopped
with SIGINT; then ``nlshark --create-nlmon -i nlmon1 -a duration:6`` makes,
uses and removes its own device.  One VM run serves every test here.

Skipped, with the reason, when QEMU, such a kernel, a static busybox,
tcpdump or ip is missing (Debian packages: nlmonvm.DEBIAN_PACKAGES).  The VM
is killed after 110 s; a run takes 60-80 s under TCG on a 2-core machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dissect.api import read_capture
from dissect.capture import open_capture
from dissect.cli import main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "vm"))
import nlmonvm  # noqa: E402

VM_TIMEOUT = 110.0


def _setup() -> nlmonvm.VmSetup | str:
    try:
        return nlmonvm.check()
    except nlmonvm.VmUnavailable as exc:
        return str(exc)


SETUP = _setup()
pytestmark = pytest.mark.skipif(isinstance(SETUP, str), reason=f"nlmon VM unavailable: {SETUP}")


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    assert isinstance(SETUP, nlmonvm.VmSetup)
    share = tmp_path_factory.mktemp("nlmonvm")
    result = nlmonvm.run(
        SETUP,
        share,
        HERE / "vm" / "live_capture.sh",
        timeout=VM_TIMEOUT,
        # The interpreter running the tests: in the guest it finds the same
        # site-packages (PyYAML) at the same paths on the shared root.
        env={"PROJECT": str(ROOT), "PYTHON": sys.executable},
    )
    guest_log = (
        (share / "guest.log").read_text(errors="replace") if (share / "guest.log").exists() else ""
    )
    context = f"console:\n{result.console[-2000:]}\nguest.log:\n{guest_log[-3000:]}"
    assert not result.timed_out, f"the VM ran over {VM_TIMEOUT} s\n{context}"
    assert result.status == 0, f"guest script exit status {result.status}\n{context}"
    print(f"nlmon VM run: {result.seconds:.1f} s ({SETUP.accel})")
    return SimpleNamespace(dir=share, seconds=result.seconds, context=context)


def frames(path: Path) -> list[tuple[bytes, int]]:
    with open_capture(path) as reader:
        return [(f.data, f.ts_ns) for f in reader]


def test_both_tools_exit_cleanly_on_sigint(vm: SimpleNamespace) -> None:
    assert (vm.dir / "nlshark.rc").read_text().strip() == "0", vm.context
    assert (vm.dir / "tcpdump.rc").read_text().strip() == "0", vm.context


def test_same_frames_as_tcpdump(vm: SimpleNamespace) -> None:
    ours = frames(vm.dir / "nlshark.pcap")
    theirs = frames(vm.dir / "tcpdump.pcap")
    assert len(theirs) >= 20
    # nlshark ran before and after tcpdump: tcpdump's frames must be one
    # contiguous run of ours, byte for byte and in the same order.
    starts = [i for i, f in enumerate(ours) if f[0] == theirs[0][0]]
    assert starts, "tcpdump's first frame is not in nlshark's capture"
    start = starts[0]
    run = ours[start : start + len(theirs)]
    assert len(run) == len(theirs)
    for n, ((a, a_ts), (b, b_ts)) in enumerate(zip(run, theirs), 1):
        assert a[:16] == b[:16], (
            f"pseudo-header of tcpdump frame {n}: {a[:16].hex()} != {b[:16].hex()}"
        )
        assert a[16:] == b[16:], f"netlink bytes of tcpdump frame {n} differ"
        # Both sockets get the one clone dev_queue_xmit_nit() timestamps.
        assert a_ts == b_ts, f"timestamp of tcpdump frame {n}"


def test_our_file_reads_with_tshark(vm: SimpleNamespace) -> None:
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    r = subprocess.run(
        ["tshark", "-r", str(vm.dir / "nlshark.pcap")], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(frames(vm.dir / "nlshark.pcap"))
    assert "Netlink route" in r.stdout


def test_decoded_messages(vm: SimpleNamespace) -> None:
    names = [
        (m.type_name, m.info) for f in read_capture(vm.dir / "nlshark.pcap") for m in f.messages
    ]
    types = {t for t, _ in names}
    assert {"RTM_NEWLINK", "RTM_NEWADDR", "RTM_NEWROUTE", "RTM_DELLINK"} <= types
    assert any(t == "RTM_NEWLINK" and "d0" in info for t, info in names)


def test_live_output_equals_reading_the_file(vm: SimpleNamespace, capsys) -> None:
    """What nlshark printed while capturing is what it prints reading its file."""
    assert main(["-r", str(vm.dir / "nlshark.pcap")]) == 0
    from_file = capsys.readouterr().out.splitlines()
    # A live capture may name the process of a port: " [comm pid]".
    live = [
        re.sub(r" \[\S+ \d+\]$", "", line)
        for line in (vm.dir / "nlshark.out").read_text().splitlines()
    ]
    assert live == from_file
    assert any("RTM_NEWROUTE" in line and "198.51.100.0/24" in line for line in live)


def test_statistics_line(vm: SimpleNamespace) -> None:
    n = len(frames(vm.dir / "nlshark.pcap"))
    err = (vm.dir / "nlshark.err").read_text().splitlines()
    assert err[0] == "Capturing on 'nlmon0'"
    m = re.fullmatch(
        r"(\d+) packets captured, (\d+) received by filter, (\d+) dropped by kernel", err[-1]
    )
    assert m, err
    assert int(m.group(1)) == n and int(m.group(2)) >= n and m.group(3) == "0"
    assert (
        f"{len(frames(vm.dir / 'tcpdump.pcap'))} packets captured"
        in (vm.dir / "tcpdump.err").read_text()
    )


def test_create_nlmon_makes_uses_and_removes_the_device(vm: SimpleNamespace) -> None:
    assert (vm.dir / "create.rc").read_text().strip() == "0", (vm.dir / "create.err").read_text()
    during = (vm.dir / "create.during").read_text()
    assert "nlmon1:" in during and "UP" in during
    after = (vm.dir / "create.after").read_text()
    assert "rc=1" in after and "does not exist" in after  # removed at exit
    path = vm.dir / "create.pcapng"
    assert path.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")
    with open_capture(path) as reader:
        list(reader)
        assert [i.name for i in reader.interfaces] == ["nlmon1"]
    decoded = [(m.type_name, m.info) for f in read_capture(path) for m in f.messages]
    assert any(t == "RTM_NEWADDR" and "192.0.2.77" in info for t, info in decoded)
    err = (vm.dir / "create.err").read_text().splitlines()
    assert re.fullmatch(
        r"\d+ packets captured, \d+ received by filter, 0 dropped by kernel", err[-1]
    )
