"""Replaying a participant's history into a fresh lab, on a schedule of virtual time.

A judge never reads the participant's YAML to decide anything; it hands the
history to a lab and lets the controllers act.  ``AppReplay`` does that for
the ``AppLab`` exercises (one application, Flux or Argo CD): the exercise
folder's ``gitops/`` files hold the GitOps object(s) — a Flux
``GitRepository`` + ``Kustomization``, or an Argo CD ``Application`` — which
the platform team applies (``kubectl apply``, validated as the dialect's API
would), and every other file is the application's repository content, which
is committed and pushed to the lab's git host.  The start state is deployed at
t = 0; the participant's commits are pushed one by one at ``first_at``,
``first_at + gap`` ...; between pushes the clock runs, so everything a
controller does in between is in the event log.

A participant's YAML that a controller refuses is not a crash: the replay
records it (``refused``), and the judge turns it into feedback naming the file.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import yaml

from labkit.core.errors import LabkitError
from labkit.workshop.model import History
from labkit.workshop.yamltext import yaml_dump, yaml_dump_all

__all__ = ["GITOPS_DIR", "AppReplay", "flux_gitops_yaml", "argo_gitops_yaml", "gitops_files", "app_files_of"]

GITOPS_DIR = "gitops/"


def flux_gitops_yaml(name: str, path: str, *, interval: str = "5m", extra_spec: Mapping[str, Any] | None = None,
                     repo_url: str | None = None) -> str:
    """The GitRepository + Kustomization a platform team writes for one app (``AppLab``'s shape)."""
    from labkit.scenarios.applab import FLUX_NS, KS_API, REPO_URL, SRC_API

    source = {"apiVersion": SRC_API, "kind": "GitRepository", "metadata": {"name": "app", "namespace": FLUX_NS},
              "spec": {"interval": "1m", "url": repo_url or REPO_URL, "ref": {"branch": "main"}}}
    spec: dict[str, Any] = {"interval": interval, "sourceRef": {"kind": "GitRepository", "name": "app"},
                            "path": f"./{path}", "prune": True, "wait": False}
    spec.update(extra_spec or {})
    ks = {"apiVersion": KS_API, "kind": "Kustomization", "metadata": {"name": name, "namespace": FLUX_NS},
          "spec": spec}
    return yaml_dump_all([source, ks], sort_keys=False)


def argo_gitops_yaml(name: str, path: str, namespace: str, *, self_heal: bool = True,
                     sync_options: tuple[str, ...] = (), extra_spec: Mapping[str, Any] | None = None) -> str:
    """The Argo CD Application a platform team writes for one app (``AppLab``'s shape)."""
    from labkit.scenarios.applab import ARGO_NS, IN_CLUSTER, REPO_URL

    policy: dict[str, Any] = {"automated": {"prune": True, "selfHeal": self_heal}}
    if sync_options:
        policy["syncOptions"] = list(sync_options)
    spec: dict[str, Any] = {"project": "default",
                            "source": {"repoURL": REPO_URL, "targetRevision": "HEAD", "path": path},
                            "destination": {"server": IN_CLUSTER, "namespace": namespace},
                            "syncPolicy": policy}
    spec.update(extra_spec or {})
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": name, "namespace": ARGO_NS}, "spec": spec}
    return yaml_dump(app, sort_keys=False)


def gitops_files(files: Mapping[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.startswith(GITOPS_DIR)}


def app_files_of(files: Mapping[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if not p.startswith(GITOPS_DIR) and not p.endswith(".md")}


@dataclass
class AppReplay:
    """The history replayed into an ``AppLab`` (see the module docstring)."""

    lab: Any
    pushed_at: list[float] = field(default_factory=list)  # virtual time of each participant commit
    refused: list[str] = field(default_factory=list)  # "file: message" for objects a controller refused

    @classmethod
    def run(cls, history: History, *, dialect: str, first_at: float, gap: float = 60.0,
            lab_factory: Callable[[], Any] | None = None, on_start: Callable[[Any], None] | None = None,
            **lab_kwargs: Any) -> "AppReplay":
        """Deploy the start state at t=0, then push each commit; the clock stops at the last push."""
        from labkit.scenarios.applab import AppLab

        lab = lab_factory() if lab_factory is not None else AppLab(dialect, **lab_kwargs)
        rep = cls(lab)
        rep._push(history.start, {}, "exercise start", author="platform")
        if on_start is not None:
            on_start(lab)
        previous = history.start
        for i, commit in enumerate(history.commits):
            lab.run(first_at + i * gap)
            rep.pushed_at.append(lab.now)
            rep._push(commit.files, previous, commit.message or "participant commit", author="participant")
            previous = commit.files
        return rep

    def _push(self, files: Mapping[str, str], previous: Mapping[str, str], message: str, *, author: str) -> None:
        lab = self.lab
        app_now, app_before = app_files_of(files), app_files_of(previous)
        changes: dict[str, str | None] = {p: t for p, t in app_now.items() if app_before.get(p) != t}
        changes.update({p: None for p in app_before if p not in app_now})
        if changes:
            try:
                lab.repo.commit(changes, message=message, author=author, when=lab.now)
            except LabkitError:
                pass  # nothing to commit
        ops_now, ops_before = gitops_files(files), gitops_files(previous)
        for path, text in sorted(ops_now.items()):
            if ops_before.get(path) == text:
                continue
            try:
                if lab.dialect == "flux":
                    lab.flux.apply(text, file=path)
                else:
                    lab.argo.apply(text, file=path)
            except LabkitError as exc:
                self.refused.append(str(exc) if str(exc).startswith(path) else f"{path}: {exc}")

    def release(self, path: str, old: str, new: str, *, author: str = "bob", message: str = "") -> str | None:
        """A routine release: replace ``old`` by ``new`` in ``path`` as it is in git now, and push."""
        text = self.lab.repo.read(path)
        if old not in text:
            return None
        return self.lab.repo.commit({path: text.replace(old, new)}, message=message or f"release: {new}",
                                    author=author, when=self.lab.now)


def base(path: str) -> str:
    return posixpath.basename(path)
