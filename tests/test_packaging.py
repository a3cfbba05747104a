"""Packaging: every subpackage is installed, and the specs go with it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(tomllib is None, reason="tomllib needs Python 3.11")
def test_every_subpackage_is_listed():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(conf["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dissect").rglob("__init__.py")
    }
    assert found | {"dissect.plugins"} == listed


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="not a source checkout")
def test_wheel_carries_the_family_specs(tmp_path):
    src = tmp_path / "src"  # build a copy: setuptools writes build/ into the tree it builds
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", "captures", "build", "*.egg-info", "__pycache__"),
    )
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip()[-200:]}")
    import zipfile

    (wheel,) = tmp_path.glob("nlshark-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "dissect/plugins/rt-link.yaml" in names and "dissect/plugins/nlctrl.yaml" in names
    assert "dissect/cli.py" in names
