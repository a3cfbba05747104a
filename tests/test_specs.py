"""Spec loading: our own family specs and every kernel YNL spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from dissect.schema import Compiler, Registry, builtin_plugin_dir, load_spec
from dissect.schema.spec import SpecError, spec_from_dict

KERNEL_SPECS = Path(__file__).resolve().parents[2] / "shared" / "ynl-specs" / "specs"


def _compile_everything(spec):
    comp = Compiler(spec, "<")
    for name in spec.attr_sets:
        cset = comp.attr_set(name)
        assert cset is not None
        for dec in cset.by_type.values():
            target = getattr(dec, "target", None)  # nested sets compile lazily
            del target
    for name in spec.structs:
        assert comp.struct_layout(name) is not None


def test_builtin_specs_load_and_compile():
    reg = Registry.default()
    assert not reg.errors
    names = {s.name for s in reg.specs}
    assert {"nlctrl", "rt-link", "rt-addr", "rt-route", "rt-neigh", "rt-rule"} <= names
    for spec in reg.specs:
        _compile_everything(spec)


@pytest.mark.parametrize("path", sorted(builtin_plugin_dir().glob("*.yaml")), ids=lambda p: p.name)
def test_builtin_spec_has_no_kernel_licence_text(path):
    assert "Linux-syscall-note" not in path.read_text()


kernel_specs = sorted(KERNEL_SPECS.glob("*.yaml")) if KERNEL_SPECS.is_dir() else []


@pytest.mark.skipif(not kernel_specs, reason="shared/ynl-specs not present")
@pytest.mark.parametrize("path", kernel_specs, ids=lambda p: p.name)
def test_kernel_spec_loads_and_compiles(path):
    spec = load_spec(path, origin="test")
    assert spec.operations or spec.attr_sets
    _compile_everything(spec)


@pytest.mark.parametrize(
    ("doc", "expect"),
    [
        ({"protocol": "genetlink"}, "missing 'name'"),
        ({"name": "x", "protocol": "netlink-raw"}, "without 'protonum'"),
        (
            {
                "name": "x",
                "definitions": [
                    {"name": "f", "type": "flags", "entries": [{"name": "a", "value": 99}]}
                ],
            },
            "bit number 99",
        ),
        (
            {
                "name": "x",
                "attribute-sets": [{"name": "s", "attributes": [{"name": "a", "value": "zz"}]}],
            },
            "expected a number",
        ),
        (
            {"name": "x", "attribute-sets": [{"name": "s", "subset-of": "nope", "attributes": []}]},
            "subset-of unknown set",
        ),
    ],
)
def test_bad_specs_give_one_line_errors(doc, expect):
    with pytest.raises(SpecError, match=expect):
        spec_from_dict(doc, "bad.yaml")


def test_bad_spec_file_is_reported_not_fatal(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    reg = Registry.default([tmp_path])
    assert any("broken.yaml" in e and "not valid YAML" in e for e in reg.errors)
    assert reg.genl_spec("nlctrl") is not None


def test_numbering_follows_ynl():
    spec = spec_from_dict(
        {
            "name": "t",
            "definitions": [
                {"name": "e", "type": "enum", "value-start": 2, "entries": ["a", "b"]},
                {"name": "f", "type": "flags", "entries": ["x", {"name": "y", "value": 4}, "z"]},
            ],
            "attribute-sets": [
                {
                    "name": "s",
                    "attributes": [{"name": "a"}, {"name": "b", "value": 7}, {"name": "c"}],
                }
            ],
            "operations": {
                "list": [
                    {"name": "get", "do": {"request": {}}},
                    {"name": "set", "value": 9, "do": {"request": {}}},
                    {"name": "next", "do": {"request": {}}},
                ]
            },
        }
    )
    assert spec.enums["e"].entries == {2: "a", 3: "b"}
    assert spec.enums["f"].entries == {1: "x", 16: "y", 32: "z"}
    assert sorted(spec.attr_sets["s"].attrs) == [1, 7, 8]
    assert [sorted(o.requests) for o in spec.operations] == [[1], [9], [10]]


def test_coverage_doc_is_generated_and_current():
    from dissect.schema.coverage import coverage

    doc = Path(__file__).resolve().parents[1] / "docs" / "coverage.md"
    expected = "\n".join(coverage(Registry.default())) + "\n"
    assert doc.read_text() == expected, (
        "docs/coverage.md is stale: python -m dissect.schema.coverage > docs/coverage.md"
    )


def test_spec_cache_round_trip_and_bad_cache_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = builtin_plugin_dir() / "rt-addr.yaml"
    first = load_spec(src, origin="a")
    cached = list((tmp_path / "cache" / "nlshark" / "specs").glob("*.pickle"))
    assert len(cached) == 1
    again = load_spec(src, origin="b")
    assert again.origin == "b" and again.attr_sets.keys() == first.attr_sets.keys()
    cached[0].write_bytes(b"not a pickle")
    assert load_spec(src).name == "rt-addr"  # a broken cache file is parsed over
    monkeypatch.setenv("NLSHARK_NO_CACHE", "1")
    assert load_spec(src).name == "rt-addr"
