"""kind clusters for users with Docker: ``labkit cluster create|delete|status --provider kind``.

kind (Kubernetes IN Docker) runs each node of a cluster as a container, with a real
kubelet and container runtime inside — the most faithful local cluster a laptop can
run, and the one the workshop participants use.  labkit does not reimplement any of
it: it shells out to the ``kind`` CLI with the configuration kept in the repository,
``clusters/kind/labkit.yaml`` (one control-plane node, two workers, cluster name
``labkit``, API server on ``127.0.0.1``), and writes the kubeconfig to labkit's own
cache (``$LABKIT_CACHE/clusters/kind-<name>/kubeconfig``, context ``kind-<name>``) rather
than merging it into ``~/.kube/config``::

    kind create cluster --config clusters/kind/labkit.yaml --name labkit \\
        --kubeconfig ~/.cache/labkit/clusters/kind-labkit/kubeconfig --wait 180s

Prerequisites are checked first and reported as one clear message (exit status 2 in
the CLI) instead of kind's own failure deep into a run: ``kind`` must be on ``PATH``,
``docker`` must be on ``PATH``, and ``docker info`` must succeed — a Docker CLI without
a reachable engine (the situation on this project's build machines) is the most common
way kind fails.  Where Docker is missing, the message points at the provider that needs
no Docker (``--provider kwok``).

The engine then talks to the cluster through ``labkit.kube.client.KubeCluster`` with
that kubeconfig and context, exactly as it talks to the simulator.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labkit.core.errors import LabkitError
from labkit.kube import build as kbuild

DEFAULT_NAME = "labkit"
INSTALL_KIND = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
INSTALL_DOCKER = "https://docs.docker.com/engine/install/"


class ProviderUnavailable(LabkitError):
    """kind or Docker is not usable on this machine."""


def config_path() -> Path:
    """``clusters/kind/labkit.yaml`` of the checkout (``LABKIT_HOME`` overrides the checkout root)."""
    home = os.environ.get("LABKIT_HOME")
    root = Path(home) if home else Path(__file__).resolve().parent.parent.parent
    return root / "clusters" / "kind" / "labkit.yaml"


def kubeconfig_path(name: str = DEFAULT_NAME) -> Path:
    return kbuild.cache_root() / "clusters" / f"kind-{name}" / "kubeconfig"


def context_name(name: str = DEFAULT_NAME) -> str:
    return f"kind-{name}"


def _run(argv: list[str], *, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)  # noqa: S603 - fixed argv


def check_prerequisites() -> str:
    """The path of ``kind``; raises ``ProviderUnavailable`` when kind or a reachable Docker engine is missing."""
    kind = shutil.which("kind")
    docker = shutil.which("docker")
    if docker is None:
        raise ProviderUnavailable(
            "the kind provider needs Docker, and `docker` is not installed "
            f"(see {INSTALL_DOCKER}); without Docker use `labkit cluster create --provider kwok`")
    try:
        info = _run([docker, "info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        raise ProviderUnavailable("the kind provider needs Docker, and `docker info` did not answer within 30 s; "
                                  "start the Docker engine, or use `labkit cluster create --provider kwok`") from None
    if info.returncode != 0:
        detail = (info.stderr or info.stdout).strip().splitlines()
        why = detail[-1] if detail else f"exit status {info.returncode}"
        raise ProviderUnavailable(
            f"the kind provider needs a running Docker engine, and `docker info` failed: {why}; "
            "start Docker, or use `labkit cluster create --provider kwok`")
    if kind is None:
        raise ProviderUnavailable(f"the kind provider needs the `kind` CLI, which is not on PATH (see {INSTALL_KIND})")
    return kind


@dataclass
class KindCluster:
    name: str
    kubeconfig: Path
    context: str


def create(name: str = DEFAULT_NAME, *, wait: str = "180s", log: Callable[[str], None] | None = None) -> KindCluster:
    """``kind create cluster`` with labkit's config; returns where its kubeconfig is."""
    kind = check_prerequisites()
    cfg = config_path()
    if not cfg.exists():
        raise LabkitError("kind configuration not found", file=str(cfg))
    kc = kubeconfig_path(name)
    kc.parent.mkdir(parents=True, exist_ok=True)
    argv = [kind, "create", "cluster", "--config", str(cfg), "--name", name, "--kubeconfig", str(kc), "--wait", wait]
    if log:
        log("$ " + " ".join(argv))
    proc = _run(argv)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise LabkitError(f"`kind create cluster` failed (exit {proc.returncode}):\n{tail}")
    return KindCluster(name, kc, context_name(name))


def delete(name: str = DEFAULT_NAME, *, log: Callable[[str], None] | None = None) -> None:
    """``kind delete cluster`` (kind itself is idempotent about missing clusters)."""
    kind = check_prerequisites()
    kc = kubeconfig_path(name)
    argv = [kind, "delete", "cluster", "--name", name, "--kubeconfig", str(kc)]
    if log:
        log("$ " + " ".join(argv))
    proc = _run(argv)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise LabkitError(f"`kind delete cluster` failed (exit {proc.returncode}):\n{tail}")
    if kc.parent.exists():
        shutil.rmtree(kc.parent, ignore_errors=True)


def exists(name: str = DEFAULT_NAME) -> bool:
    """Whether ``kind get clusters`` lists ``name``."""
    kind = check_prerequisites()
    proc = _run([kind, "get", "clusters"])
    if proc.returncode != 0:
        raise LabkitError(f"`kind get clusters` failed: {(proc.stderr or proc.stdout).strip()}")
    return name in proc.stdout.split()
