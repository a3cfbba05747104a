"""Display filters: the language (parsing, errors, semantics) and ``nlshark -Y``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import dissect
from dissect.analysis.filter import FilterError, compile_filter
from dissect.api import default_registry
from dissect.capture import open_capture
from dissect.cli import main

QUICK = Path(__file__).resolve().parent.parent / "captures" / "quickstart.pcap"


@pytest.fixture(scope="module")
def frames() -> list[dissect.Frame]:
    return list(dissect.read_capture(QUICK))


def matching(frames: list[dissect.Frame], text: str) -> list[str]:
    """Frame.index labels of the matching messages ("2", "2.2")."""
    flt = compile_filter(text, default_registry())
    out = []
    for f in frames:
        for m in f.messages:
            if flt.match(m, f):
                out.append(f"{f.number}.{m.index}" if m.index > 1 else str(f.number))
    return out


def test_enum_names_and_numbers_agree(frames: list[dissect.Frame]) -> None:
    by_name = matching(frames, "netlink.type == RTM_NEWLINK")
    by_number = matching(frames, 'netlink.type == 16 && netlink.family == "rt-link"')
    assert by_name == by_number
    assert "2" in by_name and "2.2" in by_name
    assert matching(frames, "netlink.type == 0x12") == matching(
        frames, "netlink.type == RTM_GETLINK"
    )


def test_presence_prefix_and_strings(frames: list[dissect.Frame]) -> None:
    ifname = matching(frames, "rtnl.link.ifname")
    assert ifname and set(ifname) <= set(matching(frames, "rtnl.link"))
    assert matching(frames, 'rtnl.link.ifname == "d0"') == matching(
        frames, "rtnl.link.ifname == d0"
    )
    assert "2.2" in matching(frames, 'rtnl.link.ifname contains "mon"')
    assert "2.2" in matching(frames, 'rtnl.link.ifname matches "^nl.*0$"')
    assert "2" not in matching(frames, 'rtnl.link.ifname matches "^nl"')


def test_numbers_errors_and_sets(frames: list[dissect.Frame]) -> None:
    enodev = matching(frames, "netlink.error.code == ENODEV")
    assert enodev and enodev == matching(frames, "netlink.error.code == -19")
    assert set(enodev) < set(matching(frames, "netlink.error.code < 0"))
    both = matching(frames, "netlink.error.code in {ERANGE, ENETUNREACH}")
    assert len(both) == 2
    assert matching(frames, "frame.number in {1 5 23}") == ["1", "5", "23"]
    assert matching(frames, "frame.number >= 2 and frame.number <= 3") == ["2", "2.2", "3"]


def test_flags_and_logic(frames: list[dissect.Frame]) -> None:
    dumps = matching(frames, "netlink.flags contains DUMP")
    assert "1" in dumps
    reqs = matching(frames, 'netlink.direction == "user->kernel"')
    no_ack = matching(frames, 'netlink.direction == "user->kernel" && !netlink.flags contains ACK')
    assert set(no_ack) < set(reqs)
    assert set(matching(frames, 'not (netlink.direction == "user->kernel")')).isdisjoint(reqs)
    either = matching(frames, "frame.number == 1 || frame.number == 3")
    assert either == ["1", "3"]


def test_addresses(frames: list[dissect.Frame]) -> None:
    inside = matching(frames, 'netlink.family == "rt-route" and rtnl.route.dst == 192.0.2.0/24')
    assert "26" in inside
    assert "41.2" not in inside  # 198.51.100.0
    assert "37" in matching(frames, "rtnl.route.gateway == 192.0.2.254")
    assert matching(frames, "rtnl.route.gateway == 192.0.2.253") == []


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("netlink.type ==", 15, "expected a value"),
        ("rtml.link", 0, "unknown field"),
        ("(netlink.seq > 0", 16, "expected ')'"),
        ('rtnl.link.ifname == "d0', 20, "not closed"),
        ("netlink.seq == 1 netlink.pid", 17, "unexpected"),
        ("netlink.type in {1 2", 20, "expected '}'"),
        ('rtnl.link.ifname matches "("', 25, "regular expression"),
        ("", 0, "empty"),
        ("&& netlink.seq", 0, "expected a field"),
        ("netlink.seq # 3", 12, "unexpected character"),
    ],
)
def test_syntax_errors(text: str, column: int, words: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(text, default_registry())
    assert info.value.column == column
    assert words in info.value.message
    lines = info.value.render().splitlines()
    assert lines[2].index("^") - 4 == column


def test_cli_filter_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pcap"
    assert main(["-r", str(QUICK), "-Y", "rtnl.link.ifname == d0", "-w", str(out), "-q"]) == 0
    with open_capture(out) as reader:
        written = [r.number for r in reader]
    assert main(["-r", str(QUICK), "-Y", "rtnl.link.ifname == d0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(" d0 " in line or line.endswith(" d0") for line in lines)
    assert len(written) == len({line.split()[0].split(".")[0] for line in lines})
    # Relative times still count from the capture's first frame.
    assert not lines[0].split()[1].startswith("0.000000")


def test_cli_only_matching_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-r", str(QUICK), "-Y", 'rtnl.link.ifname == "nlmon0"']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[0] == "2.2" for line in lines)
    assert not any(line.split()[0] == "2" for line in lines)  # lo shares frame 2


def test_cli_syntax_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-r", str(QUICK), "-Y", "netlink.type == "]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nlshark: -Y: expected a value")
    assert "^" in err and "Traceback" not in err


def test_speed(frames: list[dissect.Frame]) -> None:
    """Compiled once, the filter costs little per message."""
    flt = compile_filter('netlink.type == RTM_NEWLINK && rtnl.link.ifname matches "^d"')
    msgs = [(m, f) for f in frames for m in f.messages] * 50
    t = time.perf_counter()
    hits = sum(flt.match(m, f) for m, f in msgs)
    per = (time.perf_counter() - t) / len(msgs)
    assert hits > 0
    limit = 2e-3 if os.environ.get("CI") else 5e-4
    assert per < limit, f"{per * 1e6:.1f} us per message"
