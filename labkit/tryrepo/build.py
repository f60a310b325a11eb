"""Rendering for discovery and history: real kustomize over the snapshot, errors in the user's terms.

Discovery has to know what each reconcile unit *contains* before anything is
simulated — which Flux Kustomizations a bootstrap path applies, which objects
an overlay produces, where their fields come from — so it renders every unit
once with the same machinery the controllers use:

* a Flux ``Kustomization`` (or a directory given with ``--path``) goes through
  ``labkit.gitops.render.Renderer`` with the Kustomization's ``spec`` as
  overrides (``targetNamespace``, ``namePrefix``, ``patches``, ``images`` ...)
  — Flux's generated ``kustomization.yaml`` for a plain directory included —
  confined to the snapshot root, so a path that escapes the repository fails
  here exactly as it would in kustomize-controller.  ``postBuild``
  substitution is left to the simulated controller (it needs the cluster's
  ConfigMaps), so ``${var}`` placeholders stay as they are in discovery;
* an Argo CD ``Application`` is read as Argo's repo-server reads it: kustomize
  when the path has a kustomization file, otherwise the directory's own YAML
  files (sub-directories only with ``directory.recurse``).

Renders are memoised per (revision, path, settings), and discovery asks for
every unit it already knows of up front (``prefetch``), so their kustomize
processes run on all cores at once instead of one after another.  A failed
build raises the ``LabkitError`` the renderer gives, with the private snapshot
directory in the message replaced by the repository the user named, so the CLI
can print one line such as ``apps/web: kustomize build failed: accumulating
resources: ...``.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from labkit.core.errors import LabkitError
from labkit.gitops.render import Renderer, parse_manifests
from labkit.gitops.sandbox import inside, read_confined
from labkit.tryrepo.index import SourceIndex, posix_rel

__all__ = ["Builder"]


class Builder:
    """Memoised renders of one snapshot (see the module docstring)."""

    def __init__(self, root: Path, key: str, display: str, index: SourceIndex | None = None, *,
                 allow_remote: bool = False):
        self.root = Path(root)
        self.key = key
        self.display = display
        self.index = index
        self.renderer = Renderer(allow_remote=allow_remote)
        self.renders = 0

    def _friendly(self, err: LabkitError) -> LabkitError:
        real = os.path.realpath(self.root)
        text = err.detail
        for root in (real, str(self.root)):
            text = text.replace(f"'{root}'", f"'{self.display}'").replace(root + os.sep, "").replace(root, ".")
        return LabkitError(text, file=err.file, field=err.field)

    @staticmethod
    def _target(path: str) -> str:
        return "./" + posix_rel(path) if posix_rel(path) != "." else "./"

    def prefetch(self, requests: Iterable[tuple[str, Mapping[str, Any] | None]]) -> int:
        """Render ``(path, Flux spec or None)`` pairs concurrently ahead of the ``flux`` calls that will ask for them.

        Only the kustomize processes overlap (``Renderer.prefetch``); each later
        ``flux`` call returns, or raises, exactly what it would have alone.
        """
        return self.renderer.prefetch([(self._target(p), dict(spec or {})) for p, spec in requests],
                                      root=self.root, key=self.key)

    def flux(self, path: str, spec: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Objects a Flux Kustomization with ``spec`` builds from ``path`` (no postBuild)."""
        target = self._target(path)
        self.renders += 1
        try:
            return self.renderer.render(target, root=self.root, key=self.key, overrides=dict(spec or {}))
        except LabkitError as err:
            raise self._friendly(err) from None

    def argo(self, path: str, recurse: bool = False) -> list[dict[str, Any]]:
        """Objects an Argo CD Application with source ``path`` generates (kustomize or plain directory)."""
        rel = posix_rel(path)
        if self.index is not None and self.index.kustomization_file(rel) is not None:
            return self.flux(rel, None)
        base = self.root / rel
        if not inside(os.path.realpath(base), os.path.realpath(self.root)):
            raise LabkitError(f"{rel}: app path leads outside the repository", field="spec.source.path")
        if not base.is_dir():
            raise LabkitError(f"{rel}: app path does not exist", field="spec.source.path")
        out: list[dict[str, Any]] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recurse else []
            for name in sorted(filenames):
                if name.startswith(".") or not name.endswith((".yaml", ".yml", ".json")):
                    continue
                full = Path(dirpath) / name
                shown = os.path.relpath(full, self.root).replace(os.sep, "/")
                data = read_confined(self.root, shown)  # symlinks out, FIFOs, devices, huge files: refused
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise LabkitError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", file=shown) from None
                for obj in parse_manifests(text, source=shown):
                    if not obj.get("apiVersion") or not obj.get("kind"):
                        raise LabkitError("not a Kubernetes object: apiVersion and kind are required", file=shown)
                    out.append(copy.deepcopy(obj))
        return out
