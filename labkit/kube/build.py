"""Build a real Kubernetes control plane from Go module sources: ``labkit cluster build``.

The project's machines have no Docker engine, so kind cannot run there; the tests
run the real upstream components as plain processes instead.  Nothing on PyPI or
Debian ships kube-apiserver, and no prebuilt binary may be downloaded, so every
component is compiled here from the Go module proxy.  **The versions, and why each is
pinned, live in** ``labkit.kube.versions`` (and ``docs/VERSIONS.md``, generated from it);
this module reads them from there and spells none out.

* **kube-apiserver, kube-controller-manager, kube-scheduler** from the wrapper module
  ``clusters/controlplane/``.  ``go install k8s.io/kubernetes/cmd/...@VERSION`` cannot
  work: k8s.io/kubernetes's go.mod replaces every staging module (``k8s.io/api``,
  ``k8s.io/apimachinery``, …) with ``./staging/...``.  The wrapper requires
  ``k8s.io/kubernetes`` at ``KUBERNETES_VERSION`` and replaces each staging module with
  its published ``v0.N.P`` (kubernetes/kubernetes#79384).  Version stamps go in with
  ``-ldflags -X k8s.io/component-base/version.gitVersion=…`` (and
  gitMajor/gitMinor/gitTreeState/buildDate), so ``kube-apiserver --version`` and the
  ``/version`` endpoint report the pinned release.
* **etcd** from its own wrapper module, ``clusters/etcd/`` (etcd's one-line main,
  ``etcdmain.Main``; server/v3's go.mod has ``../`` replace directives, so ``go install``
  fails).  Not the Kubernetes wrapper: the pinned etcd asks for newer OpenTelemetry, gRPC
  and x/net than the pinned Kubernetes was released with, and one module graph would
  lift kube-apiserver's dependencies too.
* **KWOK** (``kwok``, ``kwokctl``) with ``go install`` — its go.mod has no replace
  directives — stamped through ``sigs.k8s.io/kwok/pkg/consts.Version``.
* **metrics-server** with ``go install`` (no replace directives either).  It is the
  aggregated API server behind ``metrics.k8s.io``, which the HPA controller reads; without
  it the real HPA reports ``FailedGetResourceMetric``.  Stamped as its own Makefile does,
  through ``k8s.io/client-go/pkg/version.gitVersion`` / ``buildDate``.  It is *optional*
  for the control plane (``labkit.kube.controlplane.available()`` does not need it; a
  cluster created without it simply has no metrics API), but ``labkit cluster build``
  builds it by default, so ``make test`` has it.

Everything lives under one cache folder (``$LABKIT_CACHE``, default ``~/.cache/labkit``):
``go/mod`` and ``go/build`` (GOMODCACHE and GOCACHE, so a second build is incremental)
and ``<component>/<version>/bin/`` (``kubernetes``, ``etcd``, ``kwok``,
``metrics-server``).  The cache key of a binary is its folder (the pinned version) plus
the stamp file beside it: module, version, ldflags, the Go toolchain's version and, for
the wrapper modules, a digest of their go.mod, go.sum and sources.  A binary whose stamp
matches is not rebuilt; any change to a version rebuilds it.  ``build()`` returns wall
time and peak memory (max RSS of the go commands) per component, which ``labkit cluster
build`` prints (a cold build, measured: ``labkit.kube.versions.MEASURED_COLD_BUILD``, in
docs/VERSIONS.md).  ``sync_wrappers()`` (``python -m labkit.kube.build --sync``) rewrites
the wrapper modules for the pinned versions; ``check_wrappers()`` (run before every
build) refuses a wrapper that requires anything else.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from labkit.core.errors import LabkitError
from labkit.kube import versions
from labkit.kube.versions import (ETCD, GO_MIN, KUBERNETES, KUBERNETES_VERSION, KWOK, KWOK_VERSION, METRICS_SERVER,
                                  METRICS_SERVER_VERSION, PINS, STAGING_VERSION, Pin, version_tuple)

ETCD_VERSION = ETCD.version  # re-exported: callers read the versions through this module or labkit.kube.versions

CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
KWOK_COMMANDS = KWOK.builds
METRICS_COMMANDS = METRICS_SERVER.builds
#: what ``labkit cluster build`` builds by default
ALL_COMPONENTS = CONTROL_PLANE + KWOK_COMMANDS + METRICS_COMMANDS
#: component -> the pin it is built from
PIN_OF = {name: pin for pin in PINS for name in pin.builds}
#: wrapper-module builds: component -> (wrapper folder under clusters/, package)
WRAPPED = {
    "etcd": ("etcd", "."),
    "kube-apiserver": ("controlplane", "k8s.io/kubernetes/cmd/kube-apiserver"),
    "kube-controller-manager": ("controlplane", "k8s.io/kubernetes/cmd/kube-controller-manager"),
    "kube-scheduler": ("controlplane", "k8s.io/kubernetes/cmd/kube-scheduler"),
}
#: ``go install`` builds: component -> package path (``@version`` appended)
INSTALLED = {
    "kwok": "sigs.k8s.io/kwok/cmd/kwok",
    "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl",
    "metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server",
}
BUILD_DATE = "2025-11-11T00:00:00Z"  # fixed: reproducible binaries


def cache_root() -> Path:
    return Path(os.environ.get("LABKIT_CACHE") or Path.home() / ".cache" / "labkit").expanduser()


def clusters_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "clusters"


def module_dir() -> Path:
    """The Kubernetes wrapper module (also home of metrics-server's RBAC manifest)."""
    return clusters_dir() / "controlplane"


def etcd_module_dir() -> Path:
    return clusters_dir() / "etcd"


def pin_bin(pin: Pin) -> Path:
    """``<cache>/<component>/<version>/bin``: the version is part of the cache key."""
    return cache_root() / pin.key / pin.version / "bin"


def control_plane_bin() -> Path:
    return pin_bin(KUBERNETES)


def etcd_bin() -> Path:
    return pin_bin(ETCD)


def kwok_bin() -> Path:
    return pin_bin(KWOK)


def metrics_server_bin() -> Path:
    return pin_bin(METRICS_SERVER)


def binary(name: str) -> Path:
    """Where a built component lives (it may not exist yet)."""
    try:
        return pin_bin(PIN_OF[name]) / name
    except KeyError:
        raise LabkitError(f"unknown component {name!r}; choose from {list(ALL_COMPONENTS)}",
                          field="components") from None


def missing(components: tuple[str, ...] = ALL_COMPONENTS) -> list[str]:
    return [n for n in components if not binary(n).exists()]


def bin_dirs() -> list[Path]:
    """Every folder ``build()`` writes binaries into (for messages)."""
    return [pin_bin(p) for p in PINS]


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
        "GOFLAGS": "-mod=readonly",  # the committed go.sum is the lock; --sync rewrites it
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
    timer = Path("/usr/bin/time").exists()
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
    try:
        return path.exists() and s.exists() and json.loads(s.read_text()) == stamp
    except (OSError, ValueError):
        return False


def go_version(go: str) -> str:
    """``go1.26.8`` — the local toolchain's version (part of every binary's cache key)."""
    proc = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,  # noqa: S603 - fixed argv
                          env={**os.environ, "GOTOOLCHAIN": "local"})
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _require_go() -> tuple[str, str]:
    go = shutil.which("go")
    if go is None:
        raise LabkitError(f"the Go toolchain (`go`, {GO_MIN} or newer) is needed to build the control plane; "
                          "install it from your distribution or https://go.dev/dl and retry")
    have = go_version(go)
    if not have.startswith("go") or version_tuple(have) < version_tuple(GO_MIN):
        raise LabkitError(f"`go` is {have or 'of unknown version'}, but the pinned components need Go {GO_MIN} "
                          f"or newer (see docs/VERSIONS.md); install a newer Go and retry")
    return go, have


def recipe_digest(folder: Path) -> str:
    """sha256 over a wrapper module's go.mod, go.sum and Go sources (part of its binaries' cache key)."""
    h = hashlib.sha256()
    files = [folder / "go.mod", folder / "go.sum"] + sorted(folder.rglob("*.go"))
    for f in files:
        if f.exists():
            h.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


# ------------------------------------------------------------------ the wrapper modules

_REQUIRE_RE = re.compile(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//\s*(indirect))?\s*$")
_REPLACE_RE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\S+)(?:\s+(v\S+))?\s*$")


def parse_gomod(text: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(requires, replaces) of a go.mod: ``{module: version}``, ``{module: (target, version)}``."""
    requires: dict[str, str] = {}
    replaces: dict[str, tuple[str, str]] = {}
    block = ""
    for raw in text.splitlines():
        line = raw.split("//")[0].rstrip() if "=>" in raw else raw.rstrip()
        stripped = line.strip()
        if stripped.endswith("(") and stripped.split()[0] in ("require", "replace", "exclude", "retract"):
            block = stripped.split()[0]
            continue
        if stripped == ")":
            block = ""
            continue
        kind = block or (stripped.split()[0] if stripped else "")
        if kind == "require":
            m = _REQUIRE_RE.match(line)
            if m:
                requires[m.group(1)] = m.group(2)
        elif kind == "replace":
            m = _REPLACE_RE.match(line)
            if m:
                replaces[m.group(1)] = (m.group(2), m.group(3) or "")
    return requires, replaces


def wrapper_expectations() -> dict[str, tuple[Pin, dict[str, str]]]:
    """wrapper folder -> (its pin, the requirements it must have at exactly those versions)."""
    return {"controlplane": (KUBERNETES, {KUBERNETES.module: KUBERNETES.version}),
            "etcd": (ETCD, {ETCD.module: ETCD.version})}


def check_wrappers() -> list[str]:
    """What in ``clusters/{controlplane,etcd}/go.mod`` disagrees with ``labkit.kube.versions`` (empty: agree).

    The Kubernetes wrapper must require k8s.io/kubernetes at the pinned version and replace
    every ``k8s.io/*`` staging module with the matching ``v0.N.P`` and nothing else; the etcd
    wrapper must require go.etcd.io/etcd/server/v3 at the pinned version.
    """
    problems: list[str] = []
    for folder, (pin, wanted) in wrapper_expectations().items():
        gomod = clusters_dir() / folder / "go.mod"
        try:
            requires, replaces = parse_gomod(gomod.read_text())
        except OSError as err:
            problems.append(f"{gomod}: {err.strerror}")
            continue
        for module, version in wanted.items():
            if requires.get(module) != version:
                problems.append(f"{gomod}: requires {module} {requires.get(module, '(nothing)')}, "
                                f"pinned {version} ({pin.key})")
        for module, (target, version) in replaces.items():
            if folder == "controlplane" and module.startswith("k8s.io/") and (target, version) != (module, STAGING_VERSION):
                problems.append(f"{gomod}: replaces {module} with {target} {version}, expected {STAGING_VERSION} "
                                f"(the staging release matching Kubernetes {KUBERNETES_VERSION})")
        if folder == "controlplane" and not any(m.startswith("k8s.io/") for m in replaces):
            problems.append(f"{gomod}: no staging module is replaced (see python -m labkit.kube.build --sync)")
    return problems


def staging_modules(go: str, env: dict[str, str], version: str = KUBERNETES_VERSION) -> list[str]:
    """The staging modules k8s.io/kubernetes@version replaces with ``./staging/...`` (read from its go.mod)."""
    proc = subprocess.run([go, "mod", "download", "-json", f"{KUBERNETES.module}@{version}"],  # noqa: S603
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise LabkitError(f"cannot fetch {KUBERNETES.module}@{version} from the module proxy: {proc.stderr.strip()}")
    gomod = Path(json.loads(proc.stdout)["GoMod"]).read_text()
    _, replaces = parse_gomod(gomod)
    return sorted(m for m, (target, _v) in replaces.items() if target.startswith("./staging/"))


def sync_wrappers(*, log: Callable[[str], None] = print) -> None:
    """Rewrite ``clusters/controlplane`` and ``clusters/etcd`` for the pinned versions (network).

    ``go mod edit`` sets the requirement (and, for Kubernetes, one replace per staging module
    of that release, each at the matching ``v0.N.P``; stale staging replaces are dropped),
    then ``go mod tidy`` recomputes go.mod and go.sum.
    """
    go, _ = _require_go()
    env = {**go_env(), "GOFLAGS": ""}
    staging = staging_modules(go, env)
    cp = module_dir()
    _, old_replaces = parse_gomod((cp / "go.mod").read_text())
    edits = [f"-require={KUBERNETES.module}@{KUBERNETES.version}"]
    edits += [f"-dropreplace={m}" for m in old_replaces if m.startswith("k8s.io/") and m not in staging]
    edits += [f"-replace={m}={m}@{STAGING_VERSION}" for m in staging]
    for folder, cmds in ((cp, [[go, "mod", "edit", *edits], [go, "mod", "tidy"]]),
                         (etcd_module_dir(), [[go, "mod", "edit", f"-require={ETCD.module}@{ETCD.version}"],
                                              [go, "mod", "tidy"]])):
        for cmd in cmds:
            _run(cmd, cwd=folder, env=env, log=log)
    problems = check_wrappers()
    if problems:
        raise LabkitError("the wrapper modules still disagree with labkit/kube/versions.py:\n" + "\n".join(problems))


# ------------------------------------------------------------------ build

def build(components: tuple[str, ...] = ALL_COMPONENTS, *, force: bool = False,
          log: Callable[[str], None] = print) -> BuildReport:
    """Build the components (see module docstring); skips those already built with the same stamp."""
    unknown = [c for c in components if c not in ALL_COMPONENTS]
    if unknown:
        raise LabkitError(f"unknown component(s) {unknown}; choose from {list(ALL_COMPONENTS)}",
                          field="components")
    go, go_ver = _require_go()
    if any(c in WRAPPED for c in components):
        problems = check_wrappers()
        if problems:
            raise LabkitError("the wrapper modules disagree with the pinned versions (labkit/kube/versions.py); "
                              "run `python -m labkit.kube.build --sync`:\n" + "\n".join(problems))
    env = go_env()
    report = BuildReport()
    for name in components:
        pin = PIN_OF[name]
        out = binary(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        if name in INSTALLED:
            ldflags = (metrics_server_ldflags() if pin is METRICS_SERVER
                       else f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={pin.version}")
            recipe = f"go install {INSTALLED[name]}@{pin.version}"
            cmd = [go, "install", "-trimpath", "-ldflags", ldflags, f"{INSTALLED[name]}@{pin.version}"]
            cwd, step_env = None, {**env, "GOBIN": str(out.parent), "GOFLAGS": ""}
        else:
            folder, package = WRAPPED[name]
            ldflags = "-s -w" if pin is ETCD else kube_ldflags()
            recipe = f"clusters/{folder} {recipe_digest(clusters_dir() / folder)}"
            cmd = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), package]
            cwd, step_env = clusters_dir() / folder, env
        stamp = {"component": name, "module": pin.module, "version": pin.version, "ldflags": ldflags,
                 "go": go_ver, "recipe": recipe}
        if not force and _up_to_date(out, stamp):
            report.steps.append(Step(name, 0.0, 0.0, skipped=True))
            log(f"{name}: up to date ({out})")
            continue
        _stamp(out).unlink(missing_ok=True)
        wall, rss = _run(cmd, cwd=cwd, env=step_env, log=log)
        _stamp(out).write_text(json.dumps(stamp))
        report.steps.append(Step(name, wall, rss))
        log(f"{name} {pin.version}: built in {wall:.0f} s, peak RSS {rss:.0f} MiB -> {out}")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.kube.build",
                                 description="Maintain the pinned versions (labkit.kube.versions).")
    ap.add_argument("--write", action="store_true", help="regenerate docs/VERSIONS.md")
    ap.add_argument("--sync", action="store_true",
                    help="rewrite the wrapper modules' go.mod/go.sum for these versions (network)")
    ap.add_argument("--check-proxy", action="store_true", help="list newer patches the proxy serves (network)")
    args = ap.parse_args(argv)
    if args.sync:
        sync_wrappers(log=lambda m: print(m, file=sys.stderr))
    if args.write:
        versions.doc_path().write_text(versions.render())
        print(f"wrote {versions.doc_path()}", file=sys.stderr)
    if args.check_proxy:
        stale = 0
        for p in versions.PINS:
            newer = versions.newer_patches(p)
            if newer and p.rule == versions.NEWEST_PATCH:
                stale += 1
            if not newer:
                print(f"{p.key} {p.version}: newest of the {p.line} line")
            else:
                print(f"{p.key} {p.version}: newer on the {p.line} line: {', '.join(newer)}"
                      + (" (an approved-release pin: reported, not moved)" if p.rule == versions.APPROVED else ""))
        return 1 if stale else 0
    if not (args.write or args.sync):
        print(versions.render(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
