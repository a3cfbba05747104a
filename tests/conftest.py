"""Shared pytest configuration for the nlshark tests."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Coverage of the differential test against tshark (tests/test_tshark_diff.py).

    That module leaves per-capture counts on ``config._nlshark_tshark_diff``;
    nothing is printed when it did not run.  "payload fields" counts tshark
    fields of a payload we keep as bytes (PAYLOAD_DISSECTIONS) found inside
    that payload node of ours.  With ``-v`` the compared tshark
    fields are listed too, with how many values of each were compared.
    """
    report = getattr(config, "_nlshark_tshark_diff", None)
    if not report:
        return
    tr = terminalreporter
    tr.section("nlshark vs tshark: what was compared")
    cols = (
        "frames",
        "messages",
        "header fields",
        "attribute extents",
        "attribute names",
        "malformed frames",
        "field values",
        "known differences",
        "payload fields",
    )
    width = max(len(c) for c in report)
    tr.write_line(f"{'capture':<{width}}  " + "  ".join(cols))
    totals = dict.fromkeys(cols, 0)
    per_field: dict[str, int] = {}
    for cid in sorted(report):
        r = report[cid]
        tr.write_line(f"{cid:<{width}}  " + "  ".join(f"{r.get(c, 0):>{len(c)}}" for c in cols))
        for c in cols:
            totals[c] += r.get(c, 0)
        for k, v in r["per field"].items():
            per_field[k] = per_field.get(k, 0) + v
    tr.write_line(f"{'total':<{width}}  " + "  ".join(f"{totals[c]:>{len(c)}}" for c in cols))
    versions = sorted({r["tshark"] for r in report.values()})
    tr.write_line(f"tshark {', '.join(versions)}; {len(per_field)} distinct tshark fields compared")
    if config.getoption("verbose") >= 0:  # the project's addopts has -q: this means -v
        line = ""
        for k in sorted(per_field):
            item = f"{k}={per_field[k]}"
            if line and len(line) + len(item) > 110:
                tr.write_line(line)
                line = ""
            line += "  " + item
        if line:
            tr.write_line(line)
