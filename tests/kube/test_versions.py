"""The pinned versions of the built components live in one place, ``labkit/kube/versions.py``.

docs/VERSIONS.md is generated from it, the wrapper modules under ``clusters/`` require
exactly those versions, nothing else under ``labkit/`` spells one out, and a version is
part of its binary's cache key (a change rebuilds).  When the components are built, the
binaries themselves report the pinned versions.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from labkit.core.errors import LabkitError
from labkit.kube import build as kbuild
from labkit.kube import versions as v
from tests.kube.conftest import needs_real

ROOT = Path(__file__).resolve().parents[2]


def test_docs_versions_md_is_generated_from_the_module():
    doc = ROOT / "docs" / "VERSIONS.md"
    assert doc.read_text() == v.render(), "docs/VERSIONS.md is stale: run `python -m labkit.kube.build --write`"
    for pin in v.PINS:
        assert f"| {pin.key} | `{pin.module}` | `{pin.version}` | {pin.rule} |" in doc.read_text()


def test_the_readme_names_the_pinned_versions():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (f"Kubernetes {v.KUBERNETES_VERSION}, etcd {v.ETCD_VERSION}, KWOK {v.KWOK_VERSION}, "
            f"metrics-server {v.METRICS_SERVER_VERSION} (Go {'.'.join(v.GO_MIN.split('.')[:2])} or newer)") in readme
    assert "docs/VERSIONS.md" in readme


def _literal(version: str) -> re.Pattern[str]:
    bare = re.escape(version.lstrip("v"))
    return re.compile(rf"(?<![\w.])v?{bare}(?![\w.]*\d)")


def test_no_other_file_under_labkit_hard_codes_a_pinned_version():
    pinned = {p.version for p in v.PINS} | {v.STAGING_VERSION}
    offenders = []
    for path in sorted((ROOT / "labkit").rglob("*")):
        if not path.is_file() or path.suffix in (".pyc",) or path.name == "versions.py":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for version in pinned:
            for m in _literal(version).finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {m.group(0)}")
    assert not offenders, "pinned versions belong in labkit/kube/versions.py only:\n" + "\n".join(offenders)


def test_the_build_reads_every_version_from_the_versions_module():
    assert kbuild.KUBERNETES_VERSION is v.KUBERNETES.version and kbuild.ETCD_VERSION is v.ETCD.version
    assert kbuild.KWOK_VERSION is v.KWOK.version and kbuild.METRICS_SERVER_VERSION is v.METRICS_SERVER.version
    assert set(kbuild.ALL_COMPONENTS) == {name for p in v.PINS for name in p.builds}
    for name in kbuild.ALL_COMPONENTS:
        pin = kbuild.PIN_OF[name]
        assert kbuild.binary(name).parts[-4:] == (pin.key, pin.version, "bin", name)


def test_the_rules_hold_for_every_pin():
    for pin in v.PINS:
        assert pin.rule in (v.APPROVED, v.NEWEST_PATCH), pin
        assert pin.version in pin.served, f"{pin.key}: {pin.version} was not served when checked"
        assert pin.why and pin.recipe and pin.builds
        if pin.rule == v.NEWEST_PATCH:
            line = [s for s in pin.served if s.rsplit(".", 1)[0] == pin.line]
            assert pin.version == max(line, key=v.version_tuple), f"{pin.key}: not the newest patch of {pin.line}"
    # issue 15 item 6: v0.9.0 is served by the proxy but is not an approved release
    assert v.METRICS_SERVER.rule == v.APPROVED and v.METRICS_SERVER.version != "v0.9.0"
    assert v.staging_version("v1.34.4") == "v0.34.4" and v.STAGING_VERSION == v.staging_version(v.KUBERNETES_VERSION)
    assert v.GO_MIN == max((p.go for p in v.PINS), key=v.version_tuple)


def test_the_wrapper_modules_require_exactly_the_pinned_versions():
    assert kbuild.check_wrappers() == []
    requires, replaces = kbuild.parse_gomod((ROOT / "clusters" / "controlplane" / "go.mod").read_text())
    assert requires[v.KUBERNETES.module] == v.KUBERNETES_VERSION
    staging = {m for m in replaces if m.startswith("k8s.io/")}
    assert len(staging) == 31 and all(replaces[m] == (m, v.STAGING_VERSION) for m in staging)
    requires, _ = kbuild.parse_gomod((ROOT / "clusters" / "etcd" / "go.mod").read_text())
    assert requires[v.ETCD.module] == v.ETCD_VERSION


def test_check_wrappers_names_a_wrapper_that_disagrees(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "clusters" / "controlplane", tmp_path / "controlplane")
    shutil.copytree(ROOT / "clusters" / "etcd", tmp_path / "etcd")
    gomod = tmp_path / "controlplane" / "go.mod"
    gomod.write_text(gomod.read_text().replace(f"k8s.io/api => k8s.io/api {v.STAGING_VERSION}",
                                               "k8s.io/api => k8s.io/api v0.34.0"))
    etcd_mod = tmp_path / "etcd" / "go.mod"
    etcd_mod.write_text(etcd_mod.read_text().replace(f"{v.ETCD.module} {v.ETCD_VERSION}", f"{v.ETCD.module} v3.6.0"))
    monkeypatch.setattr(kbuild, "clusters_dir", lambda: tmp_path)
    problems = kbuild.check_wrappers()
    assert len(problems) == 2, problems
    assert "k8s.io/api" in problems[0] and v.STAGING_VERSION in problems[0]
    assert f"requires {v.ETCD.module} v3.6.0, pinned {v.ETCD_VERSION}" in problems[1]


# ------------------------------------------------------------------ the cache key (with a stand-in `go`)

FAKE_GO = """#!/bin/sh
# a stand-in for the go command: `env GOVERSION`, `build -o OUT`, `install PKG@V` (into $GOBIN)
case "$1" in
  env) echo "${FAKE_GOVERSION:-go1.26.8}"; exit 0 ;;
  build) while [ $# -gt 0 ]; do [ "$1" = "-o" ] && { echo built > "$2"; }; shift; done; exit 0 ;;
  install) for a in "$@"; do last="$a"; done; name=$(basename "${last%@*}"); echo built > "$GOBIN/$name"; exit 0 ;;
esac
exit 3
"""


@pytest.fixture
def fake_go(tmp_path, monkeypatch):
    bindir = tmp_path / "gobin"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_version_change_rebuilds_and_the_same_version_does_not(fake_go, monkeypatch):
    quiet = lambda _m: None  # noqa: E731
    first = kbuild.build(("kwok", "etcd"), log=quiet)
    assert [s.skipped for s in first.steps] == [False, False]
    assert (fake_go / "kwok" / v.KWOK_VERSION / "bin" / "kwok").exists()
    stamp = kbuild._stamp(kbuild.binary("etcd"))
    assert {"version": v.ETCD_VERSION, "module": v.ETCD.module, "go": "go1.26.8"}.items() <= \
        __import__("json").loads(stamp.read_text()).items()
    assert [s.skipped for s in kbuild.build(("kwok", "etcd"), log=quiet).steps] == [True, True]
    # a new KWOK version: a new cache folder, built again
    monkeypatch.setitem(kbuild.PIN_OF, "kwok", dataclasses.replace(v.KWOK, version="v0.8.9"))
    again = kbuild.build(("kwok", "etcd"), log=quiet)
    assert [s.skipped for s in again.steps] == [False, True]
    assert (fake_go / "kwok" / "v0.8.9" / "bin" / "kwok").exists()
    # another Go toolchain is part of the key too
    monkeypatch.setenv("FAKE_GOVERSION", "go1.26.9")
    assert [s.skipped for s in kbuild.build(("etcd",), log=quiet).steps] == [False]


def test_a_go_older_than_the_pinned_modules_need_is_refused_up_front(fake_go, monkeypatch):
    monkeypatch.setenv("FAKE_GOVERSION", "go1.24.0")
    with pytest.raises(LabkitError) as e:
        kbuild.build(("kwok",), log=lambda _m: None)
    assert f"need Go {v.GO_MIN} or newer" in str(e.value) and "go1.24.0" in str(e.value)
    assert not (fake_go / "kwok").exists()


# ------------------------------------------------------------------ the built binaries (when built)

def _version_output(name: str, *args: str) -> str:
    path = kbuild.binary(name)
    if not path.exists():
        pytest.skip(f"{name} not built: run `labkit cluster build`")
    proc = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=60)  # noqa: S603
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(("name", "args", "expected"), [
    ("kube-apiserver", ("--version",), f"Kubernetes {v.KUBERNETES_VERSION}"),
    ("kube-controller-manager", ("--version",), f"Kubernetes {v.KUBERNETES_VERSION}"),
    ("kube-scheduler", ("--version",), f"Kubernetes {v.KUBERNETES_VERSION}"),
    ("etcd", ("--version",), f"etcd Version: {v.ETCD_VERSION.lstrip('v')}"),
    ("kwok", ("--version",), v.KWOK_VERSION),
    ("metrics-server", ("--version",), v.METRICS_SERVER_VERSION),
])
def test_built_binaries_report_the_pinned_versions(name, args, expected):
    assert expected in _version_output(name, *args)


@needs_real
def test_the_running_api_server_is_the_pinned_release(kube):
    assert kube.server_version() == v.KUBERNETES_VERSION
