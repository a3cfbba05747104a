#!/usr/bin/env python3
"""Decode speed and memory of nlshark next to tshark, on the same file.

Builds a large capture by repeating the frames of a real capture until it
holds at least N netlink messages (default 100,000), then measures, in one
run:

* nlshark summary lines (``nlshark -r F``), full tree (``-V``) and JSON
  export (``-T json``), each end to end through the command line, output to
  /dev/null;
* nlshark's in-process decode rate: frames into trees (large arrays and wide
  structs create their element nodes on first access; display strings are
  lazy), the same with every node visited (so every node exists), and with
  every display string built too;
* tshark default, ``-V`` and ``-T json`` on the same file;
* peak memory (max RSS) of ``nlshark -T json`` on the capture and on one
  twice as large, to show memory does not grow with the capture.

Prints messages/s and the ratios nlshark/tshark.  Usage:

    python bench/bench_decode.py [--capture FILE] [--messages N] [--no-tshark]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dissect.capture import PcapWriter, open_capture  # noqa: E402
from dissect.core.netlink import Session  # noqa: E402
from dissect.schema import Registry  # noqa: E402

DEFAULT_CAPTURE = ROOT.parent / "shared" / "captures" / "addr_route_neigh.pcap"


def count_messages(path: Path) -> tuple[int, int]:
    s = Session(Registry.default())
    frames = msgs = 0
    for raw in open_capture(path):
        frames += 1
        msgs += len(s.decode(raw.data, raw.linktype).messages)
    return frames, msgs


def build(src: Path, dst: Path, want: int) -> tuple[int, int]:
    frames, msgs = count_messages(src)
    reps = -(-want // max(msgs, 1))
    raws = [(r.data, r.ts_ns) for r in open_capture(src)]
    span = (raws[-1][1] - raws[0][1]) + 1_000_000 if raws else 0
    with PcapWriter(dst, 253, nanosecond=True) as w:
        for i in range(reps):
            for data, ts in raws:
                w.write(data, ts + i * span)
    return frames * reps, msgs * reps


def run_measured(cmd: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one child process."""
    t = time.perf_counter()
    with open(os.devnull, "wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        err = p.stderr.read() if p.stderr else b""
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')[:300]}")
    return dt, usage.ru_maxrss


def in_process(path: Path) -> dict[str, float]:
    """Messages/s of three in-process passes over the same frames."""
    raws = [(r.data, r.linktype) for r in open_capture(path)]
    reg = Registry.default()
    rates = {}
    for label in ("decode", "decode + walk", "decode + walk + display"):
        s = Session(reg)
        n = 0
        t = time.perf_counter()
        for data, lt in raws:
            frame = s.decode(data, lt)
            n += len(frame.messages)
            if label != "decode":
                for node in frame.root.walk():
                    if label.endswith("display"):
                        node.display  # noqa: B018 - force every display string
        rates[label] = n / (time.perf_counter() - t)
    return rates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--no-tshark", action="store_true")
    args = ap.parse_args()
    if not args.capture.exists():
        raise SystemExit(f"no capture {args.capture}; give one with --capture")
    nlshark = [sys.executable, "-m", "dissect.cli"]
    env_path = str(ROOT)
    os.environ["PYTHONPATH"] = env_path + (
        os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""
    )
    tshark = shutil.which("tshark") if not args.no_tshark else None
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.pcap"
        double = Path(tmp) / "double.pcap"
        frames, msgs = build(args.capture, big, args.messages)
        build(args.capture, double, 2 * args.messages)
        print(
            f"capture: {args.capture.name} repeated: {frames} frames, {msgs} netlink messages, {big.stat().st_size / 1e6:.1f} MB"
        )
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        rows: list[tuple[str, float, float | None]] = []
        for label, rate in in_process(big).items():
            print(f"in-process {label:<24} {rate:10,.0f} msg/s")
        print("  (decode: the full tree; arrays and wide structs create their element nodes on first access;")
        print("   walk: every node visited, so every node created; display: every display string built)")
        for label, extra, targs in (
            ("summary", [], []),
            ("full tree (-V)", ["-V"], ["-V"]),
            ("JSON (-T json)", ["-T", "json"], ["-T", "json"]),
        ):
            ours, _ = run_measured([*nlshark, "-r", str(big), *extra])
            theirs = run_measured([tshark, "-r", str(big), *targs])[0] if tshark else None
            rows.append((label, ours, theirs))
        print()
        print(f"{'output':<16} {'nlshark msg/s':>14} {'tshark msg/s':>13} {'nlshark/tshark':>15}")
        for label, ours, theirs in rows:
            t_rate = f"{msgs / theirs:13,.0f}" if theirs else f"{'-':>13}"
            ratio = f"{theirs / ours:15.2f}" if theirs else f"{'-':>15}"
            print(f"{label:<16} {msgs / ours:14,.0f} {t_rate} {ratio}")
        _, rss1 = run_measured([*nlshark, "-r", str(big), "-T", "json"])
        _, rss2 = run_measured([*nlshark, "-r", str(double), "-T", "json"])
        print()
        print(
            f"peak RSS of nlshark -T json: {rss1 / 1024:.1f} MiB at {msgs} messages, {rss2 / 1024:.1f} MiB at {2 * msgs} (x{rss2 / rss1:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
