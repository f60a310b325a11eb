"""Fixture repositories for the ``labkit try`` tests, written at test time under ``tmp_path``.

``write(root, files)`` writes a tree; ``git_repo(root, commits)`` makes a real
git repository with one commit per entry (isolated from the user's git config);
``line(text, needle)`` is the 1-based line of the first line containing
``needle`` — expected line numbers are derived from the fixture text, never
copied from the code under test.
"""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
           "GIT_COMMITTER_NAME": "alice", "GIT_COMMITTER_EMAIL": "alice@example.com"}


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(root: Path, files: dict[str, str | None]) -> Path:
    """Write (or, for None, delete) files under ``root``; returns ``root``."""
    for rel, text in files.items():
        p = root / rel
        if text is None:
            if p.exists():
                p.unlink()
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(dedent(text))
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_repo(root: Path, commits: list[tuple[str, dict[str, str | None]]]) -> list[str]:
    """A git repository at ``root`` with one commit per ``(message, files)``; returns the SHAs, oldest first."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    shas = []
    for message, files in commits:
        write(root, files)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", message)
        shas.append(git(root, "rev-parse", "HEAD"))
    return shas


def line(text: str, needle: str, after: str | None = None) -> int:
    """1-based line of the first line of ``text`` (dedented) containing ``needle`` (after ``after``, if given)."""
    lines = dedent(text).splitlines()
    start = 0
    if after is not None:
        start = next(i for i, ln in enumerate(lines) if after in ln) + 1
    return next(i + 1 for i, ln in enumerate(lines) if i >= start and needle in ln)


KUSTOMIZATION = """
    apiVersion: kustomize.config.k8s.io/v1beta1
    kind: Kustomization
    namespace: {ns}
    resources:
{resources}
"""


def kustomization(ns: str, *resources: str) -> str:
    return KUSTOMIZATION.format(ns=ns, resources="\n".join(f"      - {r}" for r in resources))


def namespace(name: str) -> str:
    return f"""
    apiVersion: v1
    kind: Namespace
    metadata:
      name: {name}
    """


def deployment(name: str, image: str = "ghcr.io/acme/web:1.4.2", replicas: int | None = 2) -> str:
    rep = f"\n      replicas: {replicas}" if replicas is not None else ""
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:{rep}
      selector:
        matchLabels:
          app: {name}
      template:
        metadata:
          labels:
            app: {name}
        spec:
          containers:
            - name: {name}
              image: {image}
    """


def flux_ks(name: str, path: str, *, wait: bool = True, prune: bool = True, depends_on: list[str] | None = None,
            extra: str = "") -> str:
    deps = ""
    if depends_on:
        deps = "\n      dependsOn:\n" + "\n".join(f"        - name: {d}" for d in depends_on)
    return f"""
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata:
      name: {name}
      namespace: flux-system
    spec:
      interval: 10m0s
      path: {path}
      prune: {str(prune).lower()}
      wait: {str(wait).lower()}
      timeout: 5m0s
      sourceRef:
        kind: GitRepository
        name: flux-system{deps}{extra}
    """


GIT_SOURCE = """
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata:
      name: flux-system
      namespace: flux-system
    spec:
      interval: 1m0s
      ref:
        branch: main
      url: https://github.com/acme/fleet
"""
