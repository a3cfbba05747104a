"""Spec sources: plugin directories, their precedence, kernel specs as plugins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import dissect
from dissect.capture.host import host_genl_families
from dissect.cli import main
from dissect.schema import Registry
from dissect.schema.registry import spec_sources

ROOT = Path(__file__).resolve().parents[1]
KERNEL_SPECS = ROOT.parent / "shared" / "ynl-specs" / "specs"
SHARED = ROOT.parent / "shared" / "captures"
needs_kernel_specs = pytest.mark.skipif(
    not KERNEL_SPECS.is_dir(), reason="shared/ynl-specs not present"
)

MINI = """
name: {name}
protocol: genetlink
doc: test family {tag}
attribute-sets:
  - name: main
    attributes:
      - {{name: value, type: u32, value: 1}}
operations:
  list:
    - {{name: get, value: 1, attribute-set: main, do: {{request: {{attributes: [value]}}}}}}
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("NLSHARK_SPEC_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def _spec(folder: Path, name: str, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.yaml"
    p.write_text(MINI.format(name=name, tag=tag))
    return p


def test_precedence_plugin_dir_env_user_builtin(tmp_path, monkeypatch):
    _spec(tmp_path / "cli", "fam", "from --plugin-dir")
    _spec(tmp_path / "env", "fam", "from env")
    _spec(tmp_path / "env", "envonly", "from env")
    _spec(tmp_path / "xdg" / "nlshark" / "plugins", "userfam", "from user dir")
    monkeypatch.setenv("NLSHARK_SPEC_PATH", str(tmp_path / "env"))
    reg = Registry.default([tmp_path / "cli"])
    assert reg.genl_spec("fam").doc == "test family from --plugin-dir"
    assert reg.genl_spec("envonly") is not None and reg.genl_spec("userfam") is not None
    assert [s.origin for s, _ in reg.shadowed] == [f"NLSHARK_SPEC_PATH {tmp_path / 'env'}"]
    origins = [o for _, o in spec_sources([tmp_path / "cli"])]
    assert origins[0].startswith("--plugin-dir") and origins[1].startswith("NLSHARK_SPEC_PATH")
    assert origins.index("builtin") < origins.index("system /usr/share/ynl/specs")


def test_families_listing_says_where_and_what_is_shadowed(tmp_path, capsys, monkeypatch):
    plug = tmp_path / "plug"
    _spec(plug, "nlctrl", "replacement")
    (plug / "broken.yaml").write_text("name: [")
    code = main(["-G", "families", "--plugin-dir", str(plug)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"nlctrl\tgenetlink\tdynamic\t1\t1\t--plugin-dir {plug}" in out
    assert "# shadowed: nlctrl from builtin" in out
    assert "# not loaded:" in out and "broken.yaml" in out


def test_kernel_tree_layout_and_single_file(tmp_path):
    tree = tmp_path / "linux"
    _spec(tree / "Documentation" / "netlink" / "specs", "treefam", "tree")
    single = _spec(tmp_path / "one", "filefam", "file")
    reg = Registry.default([tree, single])
    assert reg.genl_spec("treefam") is not None and reg.genl_spec("filefam") is not None


@needs_kernel_specs
@pytest.mark.skipif(not SHARED.is_dir(), reason="shared captures not present")
def test_kernel_spec_as_plugin_decodes_its_family(tmp_path):
    plug = tmp_path / "plug"
    plug.mkdir()
    shutil.copy(KERNEL_SPECS / "ethtool.yaml", plug)
    reg = Registry.default([plug])
    assert reg.genl_spec("ethtool").origin == f"--plugin-dir {plug}"
    named = [
        m
        for f in dissect.read_capture(SHARED / "genl_ethtool.pcap", registry=reg)
        for m in f.messages
        if m.family == "ethtool" and m.type >= 16
    ]
    assert named and all(m.layout is not None for m in named)
    assert all(m.type_name.startswith("ETHTOOL_MSG_") for m in named)
    devs = {n.value for m in named for n in m.node.walk() if n.abbrev.endswith(".header.dev_name")}
    assert devs and all(isinstance(d, str) for d in devs)


@needs_kernel_specs
@pytest.mark.skipif(not SHARED.is_dir(), reason="shared captures not present")
def test_kernel_spec_mistake_is_noted_not_silently_wrong(tmp_path):
    """The kernel's rt-link spec declares some bridge-port attributes `flag`,
    but the kernel sends them as u8 0/1: the tree says so."""
    plug = tmp_path / "plug"
    plug.mkdir()
    shutil.copy(KERNEL_SPECS / "rt-link.yaml", plug)
    reg = Registry.default([plug])
    texts = [
        n.text
        for f in dissect.read_capture(SHARED / "link_kinds.pcap", registry=reg)
        for _, n in f.root.all_notes()
        if "declared a flag" in n.text
    ]
    assert texts and "spec is probably wrong" in texts[0]


def test_host_genl_families_names_ids():
    try:
        table = host_genl_families()
    except Exception as exc:  # no AF_NETLINK here
        pytest.skip(f"no generic netlink on this machine: {exc}")
    assert table and all(
        isinstance(k, int) and k > 16 and isinstance(v, str) for k, v in table.items()
    )


def test_lookup_after_first_use_still_names_every_message(tmp_path):
    """Move the controller lookups of quickstart.pcap after the ethtool
    messages: the first pass learns the id, so every message is named."""
    from dissect.capture import PcapWriter, open_capture

    raws = list(open_capture(ROOT / "captures" / "quickstart.pcap"))
    ctrl = [r for r in raws if r.data[14:16] == b"\x00\x10" and r.data[20:22] == b"\x10\x00"]
    rest = [r for r in raws if r not in ctrl]
    moved = tmp_path / "late_lookup.pcap"
    with PcapWriter(moved) as w:
        for r in rest + ctrl:
            w.write(r.data, r.ts_ns)
    first_ethtool = next(i for i, r in enumerate(rest) if r.data[14:16] == b"\x00\x10")
    assert first_ethtool < len(rest) < len(rest) + len(ctrl)

    def genl_msgs(**kw):
        return [
            m
            for f in dissect.read_capture(moved, **kw)
            for m in f.messages
            if m.protocol == 16 and m.type == 20
        ]

    named = genl_msgs()
    assert named and all(m.family == "ethtool" for m in named)
    unnamed = genl_msgs(prescan=False)
    assert all(m.family == "genl id 20" for m in unnamed)
    assert any("--genl NAME=20" in n.text for m in unnamed for _, n in m.node.all_notes())


def test_unreadable_user_plugin_dir_is_a_warning_not_a_crash(tmp_path, monkeypatch):
    """Listing ~/.config/nlshark/plugins fails (EACCES under another user's
    HOME): the failure is a registry error, the shipped specs still load."""
    import os
    from pathlib import Path

    from dissect.schema import Registry

    locked = tmp_path / "cfg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(locked))

    def is_dir(self: Path) -> bool:
        if str(self).startswith(str(locked)):
            raise PermissionError(13, "Permission denied")
        return os.path.isdir(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    reg = Registry.default()
    assert any("Permission denied" in e for e in reg.errors), reg.errors
    assert any(s.name == "rt-link" for s in reg.specs)
