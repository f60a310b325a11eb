"""Every version the real control plane is built at, and why: the one place they are pinned.

``labkit.kube.build`` (``labkit cluster build``) reads the versions from here and nowhere
else; ``docs/VERSIONS.md`` is generated from this module (``python -m labkit.kube.build
--write``) and ``tests/kube/test_versions.py`` checks that the two agree, that the wrapper
modules under ``clusters/`` require exactly these versions, and that no other file under
``labkit/`` spells one of them out.  Every version is part of its binary's cache key (the
folder ``<component>/<version>/bin/`` and the stamp next to the binary), so changing a
version here rebuilds that component on the next ``labkit cluster build``.

The rules (issue 15, item 6; ``/work/shared/reference/real-control-plane.md``):

* **approved release** — a component pinned to a release the project has approved.  The Go
  module proxy serves versions that are not approved (it serves whatever was tagged);
  being served is not enough.
* **newest patch of the pinned minor line** — Kubernetes and etcd (and KWOK, by the same
  rule) move to the newest patch release of their minor line *as the Go module proxy serves
  it* (``go list -m -versions MODULE``); a minor-version move is a separate decision.  For
  Kubernetes the 31 staging modules (``k8s.io/api``, ``k8s.io/apimachinery``, …) must be
  served at the matching ``v0.N.P`` too, since the wrapper module replaces each with it.

Bumping a version: edit the ``Pin`` below (``served`` records what the proxy listed when it
was checked), run ``python -m labkit.kube.build --sync`` (rewrites the wrapper modules'
``go.mod``/``go.sum`` through ``go mod edit`` + ``go mod tidy``) and ``--write``
(regenerates ``docs/VERSIONS.md``), then ``labkit cluster build`` and ``pytest tests/kube``.
``--check-proxy`` lists newer patches of each pinned line that the proxy now serves.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: when the versions below were last checked against the Go module proxy
CHECKED = "December 2026, https://proxy.golang.org"


@dataclass(frozen=True)
class Pin:
    """One built component's pinned version and the reason for it."""

    key: str          # short name: the cache folder and the doc's row
    module: str       # the Go module the binaries come from
    version: str
    rule: str         # "approved release" | "newest patch of the minor line"
    why: str          # what needs it
    builds: tuple[str, ...]  # the commands built from it
    recipe: str       # how it is built
    go: str           # the `go` directive of the module's go.mod at this version
    served: tuple[str, ...] = ()  # the proxy's versions of the pinned line (or the candidates) when checked
    note: str = ""

    @property
    def line(self) -> str:
        """The minor line, ``v1.34`` for ``v1.34.4``."""
        return self.version.rsplit(".", 1)[0]


APPROVED = "approved release"
NEWEST_PATCH = "newest patch of the minor line"

KUBERNETES = Pin(
    key="kubernetes",
    module="k8s.io/kubernetes",
    version="v1.34.4",
    rule=NEWEST_PATCH,
    why="kube-apiserver, kube-controller-manager (real Deployment, ReplicaSet, HPA, Job, StatefulSet and "
        "garbage-collector controllers) and kube-scheduler: the control plane of `labkit cluster create` and "
        "of the real-cluster tests",
    builds=("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
    recipe="wrapper module `clusters/controlplane/` (`go build`): k8s.io/kubernetes's go.mod replaces its 31 "
           "staging modules with `./staging/...`, so `go install` cannot work; the wrapper requires it and "
           "replaces each staging module with its published `v0.N.P` (kubernetes/kubernetes#79384); version "
           "stamped with `-ldflags -X k8s.io/component-base/version.gitVersion=...`",
    go="1.24.0",
    served=("v1.34.0", "v1.34.2", "v1.34.3", "v1.34.4"),
    note="was v1.34.2; every staging module is served at v0.34.4",
)

ETCD = Pin(
    key="etcd",
    module="go.etcd.io/etcd/server/v3",
    version="v3.6.17",
    rule=NEWEST_PATCH,
    why="the API server's storage; Kubernetes 1.34 is released against etcd 3.6",
    builds=("etcd",),
    recipe="wrapper module `clusters/etcd/` (`go build`; its main is etcd's own `etcdmain.Main`): "
           "server/v3's go.mod replaces api, client and pkg with `../` paths, so `go install` cannot work. "
           "Its own module, not the Kubernetes wrapper: etcd 3.6.17 requires Go 1.26 and newer "
           "OpenTelemetry, gRPC and x/net than Kubernetes 1.34 was released with, and one module would "
           "have lifted kube-apiserver's dependencies to them",
    go="1.26.0",
    served=("v3.6.0", "v3.6.4", "v3.6.5", "v3.6.8", "v3.6.12", "v3.6.13", "v3.6.14", "v3.6.15",
            "v3.6.16", "v3.6.17"),
    note="was v3.6.4; the 3.7 line is served too but is a minor move, not a patch",
)

KWOK = Pin(
    key="kwok",
    module="sigs.k8s.io/kwok",
    version="v0.8.0",
    rule=NEWEST_PATCH,
    why="fake nodes and kubelets (pod stages with delays, image-pull failures) and per-pod CPU usage "
        "emulation, which metrics-server scrapes",
    builds=("kwok", "kwokctl"),
    recipe="`go install sigs.k8s.io/kwok/cmd/{kwok,kwokctl}@VERSION` (no replace directives), stamped "
           "through `sigs.k8s.io/kwok/pkg/consts.Version`",
    go="1.26.0",
    served=("v0.8.0",),
    note="unchanged: v0.8.0 is the only release of the 0.8 line",
)

METRICS_SERVER = Pin(
    key="metrics-server",
    module="sigs.k8s.io/metrics-server",
    version="v0.8.0",
    rule=APPROVED,
    why="the aggregated API server behind `metrics.k8s.io`, which the HPA controller reads (without it "
        "the real HPA reports FailedGetResourceMetric)",
    builds=("metrics-server",),
    recipe="`go install sigs.k8s.io/metrics-server/cmd/metrics-server@VERSION` (no replace directives), "
           "stamped as its Makefile does, through `k8s.io/client-go/pkg/version.gitVersion`",
    go="1.24.4",
    served=("v0.8.0", "v0.8.1", "v0.9.0", "v0.9.1"),
    note="was v0.9.0, which the proxy serves but which is not an approved release; v0.8.0 is the approved "
         "one (the project's table of components checked against the proxy). Being served makes no other "
         "version approved. v0.8.0 takes the same flags as v0.9.0 and ships the same RBAC manifest "
         "(manifests/base/rbac.yaml); its go.mod has no replace directives (Kubernetes libraries v0.33)",
)

#: every pinned component, in build order
PINS: tuple[Pin, ...] = (ETCD, KUBERNETES, KWOK, METRICS_SERVER)

KUBERNETES_VERSION = KUBERNETES.version
ETCD_VERSION = ETCD.version
KWOK_VERSION = KWOK.version
METRICS_SERVER_VERSION = METRICS_SERVER.version

#: the Go toolchain: the highest `go` directive among the pinned modules (etcd v3.6.17 and KWOK v0.8.0
#: ask for 1.26.0).  Builds run with GOTOOLCHAIN=local: no toolchain is downloaded; an older `go` is
#: refused up front with this version in the message.
GO_MIN = max((p.go for p in PINS), key=lambda v: tuple(int(x) for x in v.split(".")))
GO_WHY = (f"the highest `go` directive among the pinned modules ({', '.join(p.module + ' ' + p.version for p in PINS if p.go == GO_MIN)}); "
          "builds run with GOTOOLCHAIN=local (no toolchain download)")


#: the cold build at these pins, measured (``/usr/bin/time -v labkit cluster build``, empty cache)
MEASURED_COLD_BUILD = (
    "2 cores, empty `~/.cache/labkit`, go1.26.8, module downloads included: 17 min 0 s wall "
    "(user 776 s, sys 112 s), peak RSS 1.8 GiB (1861 MiB, the kube-controller-manager build). Per "
    "component: etcd 103 s / 402 MiB, kube-apiserver 243 s / 1710 MiB, kube-controller-manager 81 s / "
    "1861 MiB, kube-scheduler 13 s / 1246 MiB, kwok 278 s / 935 MiB, kwokctl 21 s / 799 MiB, "
    "metrics-server 280 s / 1202 MiB. The cache then holds 1.5 GB of modules and 4.9 GB of build cache; "
    "a second `labkit cluster build` finds every binary up to date"
)


def staging_version(kubernetes: str = KUBERNETES_VERSION) -> str:
    """The published version of the staging modules that matches a Kubernetes release: v1.N.P -> v0.N.P."""
    m = re.fullmatch(r"v1\.(\d+)\.(\d+)", kubernetes)
    if not m:
        raise ValueError(f"not a Kubernetes release version: {kubernetes!r}")
    return f"v0.{m.group(1)}.{m.group(2)}"


STAGING_VERSION = staging_version()


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("-")[0]))


# ------------------------------------------------------------------ docs/VERSIONS.md

def render() -> str:
    """docs/VERSIONS.md, exactly (a test compares the committed file with this)."""
    out = [
        "# Pinned versions of the built components",
        "",
        "<!-- generated by `python -m labkit.kube.build --write` from labkit/kube/versions.py; do not edit -->",
        "",
        "The real control plane (`labkit cluster build`) compiles every component from the Go module",
        "proxy; nothing prebuilt is downloaded. These are the versions it builds, and why. They are",
        "pinned in one place, `labkit/kube/versions.py`; the build reads them from there, and each",
        "version is part of its binaries' cache key (`~/.cache/labkit/<component>/<version>/bin/` and",
        "the stamp file beside each binary), so a version change rebuilds that component.",
        "",
        f"Checked against the module proxy: {CHECKED}.",
        "",
        "| component | Go module | version | rule | builds | go.mod `go` |",
        "|---|---|---|---|---|---|",
    ]
    for p in PINS:
        out.append(f"| {p.key} | `{p.module}` | `{p.version}` | {p.rule} | "
                   f"{', '.join(p.builds)} | {p.go} |")
    out += [
        f"| Kubernetes staging modules | `k8s.io/api`, `k8s.io/apimachinery`, … (31) | `{STAGING_VERSION}` | "
        f"matches Kubernetes `{KUBERNETES_VERSION}` | (libraries of the above) | |",
        f"| Go toolchain | | `go{GO_MIN}` or newer | {GO_WHY} | | |",
        "",
        "## Cost",
        "",
        f"Cold build, measured: {MEASURED_COLD_BUILD}.",
        "",
        "## Rules",
        "",
        f"* **{APPROVED}**: a release the project has approved. The proxy serves whatever was",
        "  tagged, including versions that are not approved; being served is not enough.",
        f"* **{NEWEST_PATCH}**: the newest patch release of the pinned minor line, as the Go module",
        "  proxy serves it (`go list -m -versions MODULE`). A minor-version move is a separate",
        "  decision. For Kubernetes every staging module must be served at the matching `v0.N.P`.",
        "",
        "## Why each",
        "",
    ]
    for p in PINS:
        out += [f"### {p.key} `{p.version}`", "",
                f"* Module: `{p.module}`; rule: {p.rule}.",
                f"* Needed by: {p.why}.",
                f"* Built: {p.recipe}.",
                f"* Served on the line when checked: {', '.join('`' + v + '`' for v in p.served)}."]
        if p.note:
            out.append(f"* Note: {p.note}.")
        out.append("")
    out += [
        "## Bumping a version",
        "",
        "1. Edit the `Pin` in `labkit/kube/versions.py` (`served`: what `go list -m -versions` listed).",
        "2. `python -m labkit.kube.build --sync` rewrites the wrapper modules' `go.mod`/`go.sum`",
        "   (`clusters/controlplane/`, `clusters/etcd/`) with `go mod edit` and `go mod tidy`.",
        "3. `python -m labkit.kube.build --write` regenerates this file.",
        "4. `labkit cluster build` (only the changed components rebuild), then `pytest tests/kube`.",
        "",
        "`python -m labkit.kube.build --check-proxy` lists newer patch releases of each pinned",
        "line that the proxy serves (for the approved-release pins it only reports them).",
        "",
    ]
    return "\n".join(out)


def doc_path() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "docs" / "VERSIONS.md"


def newer_patches(pin: Pin, *, go: str = "go") -> list[str]:
    """Patch releases of ``pin``'s minor line newer than it that the module proxy lists (network)."""
    proc = subprocess.run([go, "list", "-m", "-versions", pin.module], capture_output=True, text=True,
                          timeout=120, check=True)  # noqa: S603 - fixed argv
    versions = proc.stdout.split()[1:]
    same_line = [v for v in versions if v.rsplit(".", 1)[0] == pin.line and "-" not in v]
    return [v for v in same_line if version_tuple(v) > version_tuple(pin.version)]
