"""``Renderer.prefetch``: concurrent renders that give what sequential ones give, never seeing each other's files."""
from __future__ import annotations

from pathlib import Path

import pytest

from labkit.gitops import BuildError, Renderer
from labkit.gitops.render import _compatible, footprint


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fleet(root: Path) -> list[tuple[str, dict | None]]:
    """A base with overlays, a plain directory (generated kustomization) holding one, and a broken unit."""
    write(root / "base" / "cm.yaml", CM.format(name="settings", value="base"))
    write(root / "base" / "kustomization.yaml", "resources:\n- cm.yaml\n")
    for env in ("dev", "prod"):
        write(root / env / "kustomization.yaml", f"namespace: {env}\nresources:\n- ../base\n")
    write(root / "plain" / "one.yaml", CM.format(name="one", value="1"))
    write(root / "plain" / "nested" / "kustomization.yaml", "resources:\n- two.yaml\n")
    write(root / "plain" / "nested" / "two.yaml", CM.format(name="two", value="2"))
    write(root / "broken" / "kustomization.yaml", "resources:\n- missing.yaml\n")
    return [("./dev", {}), ("./prod", {"targetNamespace": "live", "namePrefix": "p-"}),
            ("./base", {"namePrefix": "b-"}), ("./plain", {}), ("./plain/nested", {"nameSuffix": "-x"}),
            ("./broken", {}), ("./dev", {})]


def outcome(renderer: Renderer, root: Path, directory: str, overrides: dict | None):
    try:
        return renderer.render(directory, root=root, key="rev", overrides=overrides)
    except BuildError as err:
        return ("error", str(err))


def test_prefetched_renders_equal_sequential_ones(tmp_path: Path):
    requests = fleet(tmp_path)
    alone = Renderer()
    expected = [outcome(alone, tmp_path, d, o) for d, o in requests]
    together = Renderer()
    runs = together.prefetch(requests, root=tmp_path, key="rev", workers=4)
    assert runs == 6  # every distinct request once, the failing one included (its error is cached)
    misses = together.misses
    assert [outcome(together, tmp_path, d, o) for d, o in requests] == expected
    assert together.misses == misses  # all answered from the cache
    assert not (tmp_path / "plain" / "kustomization.yaml").exists()  # the generated file is gone again
    assert (tmp_path / "plain" / "nested" / "kustomization.yaml").read_text() == "resources:\n- two.yaml\n"


def test_footprint_names_what_a_render_writes_and_reads(tmp_path: Path):
    fleet(tmp_path)
    root = str(tmp_path.resolve())
    writes, reads = footprint(tmp_path, "./prod", {})
    assert writes is None and reads == [f"{root}/prod", f"{root}/base"]
    writes, reads = footprint(tmp_path, "./prod", {"namePrefix": "p-"})
    assert writes == f"{root}/prod"
    writes, reads = footprint(tmp_path, "./plain", {})
    assert writes == f"{root}/plain" and reads == [f"{root}/plain"]


def test_renders_that_see_each_others_files_do_not_overlap(tmp_path: Path):
    fleet(tmp_path)
    plain = footprint(tmp_path, "./plain", {})  # writes plain/kustomization.yaml, walks plain/nested
    nested = footprint(tmp_path, "./plain/nested", {"nameSuffix": "-x"})  # rewrites plain/nested's file
    base = footprint(tmp_path, "./base", {"namePrefix": "b-"})
    dev = footprint(tmp_path, "./dev", {})
    assert not _compatible(*plain, *nested)
    assert not _compatible(*base, *dev)  # dev reads base, whose kustomization.yaml base's render rewrites
    assert _compatible(*plain, *dev) and _compatible(*dev, *footprint(tmp_path, "./prod", {}))


def test_a_refused_path_is_left_to_the_sequential_render(tmp_path: Path):
    fleet(tmp_path)
    r = Renderer()
    assert r.prefetch([("../outside", {}), ("./missing", {})], root=tmp_path, key="rev") == 0
    with pytest.raises(Exception, match="not in or below"):
        r.render("../outside", root=tmp_path, key="rev")
