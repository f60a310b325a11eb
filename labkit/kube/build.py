"""Build a real Kubernetes control plane from Go module sources: ``labkit cluster build``.

The project's machines have no Docker engine, so kind cannot run there; the tests
run the real upstream components as plain processes instead.  Nothing on PyPI or
Debian ships kube-apiserver, and no prebuilt binary may be downloaded, so every
component is compiled here from the Go module proxy:

* **kube-apiserver, kube-controller-manager, kube-scheduler** (Kubernetes
  ``v1.34.2``) and **etcd** (``v3.6.4``) from one wrapper module,
  ``clusters/controlplane/``.  ``go install k8s.io/kubernetes/cmd/...@v1.34.2``
  cannot work: k8s.io/kubernetes's go.mod replaces every staging module
  (``k8s.io/api``, ``k8s.io/apimachinery``, …) with ``./staging/...``.  The
  wrapper requires ``k8s.io/kubernetes v1.34.2`` and replaces each staging module
  with its published ``v0.34.2`` (kubernetes/kubernetes#79384); its
  ``cmd/etcd`` is etcd's own one-line main (``etcdmain.Main``), built against the
  same dependency graph (Kubernetes 1.34 already depends on etcd 3.6.4).
  Version stamps go in with ``-ldflags -X k8s.io/component-base/version.gitVersion=…``
  (and gitMajor/gitMinor/gitTreeState/buildDate), so ``kube-apiserver --version``
  and the ``/version`` endpoint say ``v1.34.2``.
* **KWOK** ``v0.8.0`` (``kwok``, ``kwokctl``) with ``go install`` — its go.mod has
  no replace directives — stamped through ``sigs.k8s.io/kwok/pkg/consts.Version``.
* **metrics-server** ``v0.9.0`` with ``go install`` (no replace directives either; its
  go.mod asks for Go 1.26.4 and Kubernetes libraries v0.36).  It is the aggregated API
  server behind ``metrics.k8s.io``, which the HPA controller reads; without it the real
  HPA reports ``FailedGetResourceMetric``.  Stamped as its own Makefile does, through
  ``k8s.io/client-go/pkg/version.gitVersion`` / ``buildDate``.  It is *optional* for the
  control plane (``labkit.kube.controlplane.available()`` does not need it; a cluster
  created without it simply has no metrics API), but ``labkit cluster build`` builds
  it by default, so ``make test`` has it.  Measured cold build on the project's 2-core
  machine, shared with other jobs (its Kubernetes v0.36 libraries are not among the
  control plane's v0.34 ones, so little is cached): 238 s, peak RSS 1.2 GiB.

Everything lives under one cache folder (``$LABKIT_CACHE``, default
``~/.cache/labkit``): ``go/mod`` and ``go/build`` (GOMODCACHE and GOCACHE, so a
second build is incremental), ``controlplane/v1.34.2/bin/``,
``kwok/v0.8.0/bin/`` and ``metrics-server/v0.9.0/bin/``.  A binary whose stamp file matches its version and build
flags is not rebuilt.  ``build()`` returns wall time and peak memory (max RSS of
the go commands) per component, which ``labkit cluster build`` prints.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from labkit.errors import LabkitError

KUBERNETES_VERSION = "v1.34.2"
ETCD_VERSION = "v3.6.4"
KWOK_VERSION = "v0.8.0"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KWOK_COMMANDS = ("kwok", "kwokctl")
METRICS_SERVER_VERSION = "v0.9.0"
METRICS_COMMANDS = ("metrics-server",)
#: what ``labkit cluster build`` builds by default
ALL_COMPONENTS = CONTROL_PLANE + KWOK_COMMANDS + METRICS_COMMANDS
PACKAGES = {
    "etcd": "./cmd/etcd",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
}
BUILD_DATE = "2025-11-11T00:00:00Z"  # fixed: reproducible binaries


def cache_root() -> Path:
    return Path(os.environ.get("LABKIT_CACHE") or Path.home() / ".cache" / "labkit").expanduser()


def module_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "clusters" / "controlplane"


def control_plane_bin(version: str = KUBERNETES_VERSION) -> Path:
    return cache_root() / "controlplane" / version / "bin"


def kwok_bin(version: str = KWOK_VERSION) -> Path:
    return cache_root() / "kwok" / version / "bin"


def metrics_server_bin(version: str = METRICS_SERVER_VERSION) -> Path:
    return cache_root() / "metrics-server" / version / "bin"


def binary(name: str) -> Path:
    """Where a built component lives (it may not exist yet)."""
    if name in KWOK_COMMANDS:
        return kwok_bin() / name
    if name in METRICS_COMMANDS:
        return metrics_server_bin() / name
    return control_plane_bin() / name


def missing(components: tuple[str, ...] = ALL_COMPONENTS) -> list[str]:
    return [n for n in components if not binary(n).exists()]


def bin_dirs() -> list[Path]:
    """Every folder ``build()`` writes binaries into (for messages)."""
    return [control_plane_bin(), kwok_bin(), metrics_server_bin()]


def metrics_server_ldflags(version: str = METRICS_SERVER_VERSION) -> str:
    """The version stamp metrics-server's own Makefile sets (``PKG:=k8s.io/client-go/pkg``)."""
    pkg = "k8s.io/client-go/pkg/version"
    return f"-s -w -X {pkg}.gitVersion={version} -X {pkg}.gitTreeState=clean -X {pkg}.buildDate={BUILD_DATE}"


def go_env() -> dict[str, str]:
    root = cache_root()
    env = dict(os.environ)
    env.update({
        "GOMODCACHE": str(root / "go" / "mod"),
        "GOCACHE": str(root / "go" / "build"),
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
    })
    return env


def kube_ldflags(version: str = KUBERNETES_VERSION) -> str:
    m = re.match(r"v(\d+)\.(\d+)\.", version)
    if not m:
        raise LabkitError(f"not a Kubernetes version: {version!r}", field="version")
    major, minor = m.groups()
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}", f"-X {pkg}.gitMinor={minor}",
                  f"-X {pkg}.gitTreeState=clean", f"-X {pkg}.buildDate={BUILD_DATE}"]
    return " ".join(["-s", "-w"] + flags)


@dataclass
class Step:
    name: str
    seconds: float
    max_rss_mb: float
    skipped: bool = False


@dataclass
class BuildReport:
    steps: list[Step] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def max_rss_mb(self) -> float:
        return max((s.max_rss_mb for s in self.steps), default=0.0)


def _run(cmd: list[str], *, cwd: Path | None, env: dict[str, str], log: Callable[[str], None]) -> tuple[float, float]:
    """Run one go command (no shell); returns (wall seconds, peak RSS MiB of the process tree's largest child)."""
    timer = shutil.which("time") if Path("/usr/bin/time").exists() else None
    full = ["/usr/bin/time", "-f", "%M"] + cmd if timer else cmd
    log("$ " + " ".join(cmd))
    t0 = time.monotonic()
    proc = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True)  # noqa: S603 - fixed argv
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise LabkitError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")
    rss = 0.0
    if timer:
        last = proc.stderr.strip().splitlines()[-1:] or ["0"]
        try:
            rss = int(last[0]) / 1024.0
        except ValueError:
            rss = 0.0
    return wall, rss


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".stamp.json")


def _up_to_date(path: Path, stamp: dict) -> bool:
    s = _stamp(path)
    return path.exists() and s.exists() and json.loads(s.read_text()) == stamp


def build(components: tuple[str, ...] = ALL_COMPONENTS, *, force: bool = False,
          log: Callable[[str], None] = print) -> BuildReport:
    """Build the components (see module docstring); skips those already built with the same stamp."""
    go = shutil.which("go")
    if go is None:
        raise LabkitError("the Go toolchain (`go`, 1.24 or newer) is needed to build the control plane; "
                          "install it from your distribution or https://go.dev/dl and retry")
    unknown = [c for c in components if c not in ALL_COMPONENTS]
    if unknown:
        raise LabkitError(f"unknown component(s) {unknown}; choose from {list(ALL_COMPONENTS)}",
                          field="components")
    env = go_env()
    report = BuildReport()
    mod = module_dir()
    for name in components:
        out = binary(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        if name in KWOK_COMMANDS:
            ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION}"
            stamp = {"component": name, "version": KWOK_VERSION, "ldflags": ldflags}
            cmd = [go, "install", "-trimpath", "-ldflags", ldflags, f"sigs.k8s.io/kwok/cmd/{name}@{KWOK_VERSION}"]
            cwd, step_env = None, {**env, "GOBIN": str(out.parent), "GOFLAGS": ""}
        elif name in METRICS_COMMANDS:
            ldflags = metrics_server_ldflags()
            stamp = {"component": name, "version": METRICS_SERVER_VERSION, "ldflags": ldflags}
            cmd = [go, "install", "-trimpath", "-ldflags", ldflags,
                   f"sigs.k8s.io/metrics-server/cmd/metrics-server@{METRICS_SERVER_VERSION}"]
            cwd, step_env = None, {**env, "GOBIN": str(out.parent), "GOFLAGS": ""}
        else:
            ldflags = kube_ldflags() if name != "etcd" else "-s -w"
            version = ETCD_VERSION if name == "etcd" else KUBERNETES_VERSION
            stamp = {"component": name, "version": version, "ldflags": ldflags}
            cmd = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), PACKAGES[name]]
            cwd, step_env = mod, env
        if not force and _up_to_date(out, stamp):
            report.steps.append(Step(name, 0.0, 0.0, skipped=True))
            log(f"{name}: up to date ({out})")
            continue
        wall, rss = _run(cmd, cwd=cwd, env=step_env, log=log)
        _stamp(out).write_text(json.dumps(stamp))
        report.steps.append(Step(name, wall, rss))
        log(f"{name}: built in {wall:.0f} s, peak RSS {rss:.0f} MiB -> {out}")
    return report
