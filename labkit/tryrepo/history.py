"""Walking the repository's history: renders of earlier revisions, and what changed between them.

Some failures only exist *between* two revisions.  A StatefulSet whose
``volumeClaimTemplates`` changed renders fine and applies fine to an empty
cluster; it is the cluster still running the previous revision that refuses the
sync, with the API server's ``Forbidden: updates to statefulset spec for fields
other than ...``.  And a Secret deleted from the tree is still in every clone.

``RevisionRenders`` renders a unit (a Flux Kustomization's path with its build
settings, or an Argo CD source path) at each of the last N commits touching the
root (``RepoSource.history``), newest first, on the commit's own exported tree
with its own memoised ``Builder``.  A revision where the unit does not exist yet
or does not build is skipped, not an error: history is evidence, not input.
Exports are untrusted like any snapshot: ``RepoSource.export`` checks each
commit's tree as ``git fsck`` does, confines its symlinks and bounds its size,
and records what it left out (or why a whole commit was refused) in
``RepoSource.refused``; a refused commit is tried once, then skipped.

``forbidden_update(old, new)`` asks the simulator's admission — the same
``labkit.sim`` rules the reconcile uses — what the API server would say to the
update, by applying ``old`` to a controller-less ``SimCluster`` and dry-running
``new`` over it with forced ownership, as kustomize-controller's plan does.
The message in the pitfall is therefore the one the run would produce, not a
string written here.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from labkit.core.errors import ApiError, LabkitError
from labkit.tryrepo.build import Builder
from labkit.tryrepo.discovery import Unit
from labkit.tryrepo.source import RepoSource

__all__ = ["Revision", "RevisionRenders", "forbidden_update", "vct_signature"]


@dataclass
class Revision:
    sha: str
    subject: str
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # unit ref -> objects


class RevisionRenders:
    """Renders of units at the last N commits (see the module docstring)."""

    def __init__(self, source: RepoSource, n: int):
        self.source = source
        self.commits = source.history(n) if n > 0 else []
        self._builders: dict[str, Builder | None] = {}

    def builder(self, sha: str) -> Builder | None:
        """The memoised builder of commit ``sha``; None (remembered) when its export was refused or failed."""
        if sha in self._builders:
            return self._builders[sha]
        self._builders[sha] = None
        try:
            root = self.source.export(sha)
        except (LabkitError, OSError):  # refused (recorded in source.refused), or git / the disk failed
            return None
        from labkit.tryrepo.index import SourceIndex

        b = self._builders[sha] = Builder(root, sha, self.source.display, SourceIndex(root))
        return b

    def render(self, unit: Unit, sha: str) -> list[dict[str, Any]] | None:
        """The unit's objects at ``sha``, or None when it does not exist / build there."""
        b = self.builder(sha)
        if b is None or not (b.root / unit.path).is_dir():
            return None
        try:
            if unit.dialect == "flux":
                return b.flux(unit.path, unit.spec)
            recurse = bool(((unit.spec.get("source") or {}).get("directory") or {}).get("recurse"))
            return b.argo(unit.path, recurse)
        except LabkitError:
            return None


def vct_signature(sts: dict[str, Any]) -> str:
    """A comparable form of a StatefulSet's ``volumeClaimTemplates`` (status dropped)."""
    vcts = copy.deepcopy((sts.get("spec") or {}).get("volumeClaimTemplates") or [])
    for v in vcts:
        if isinstance(v, dict):
            v.pop("status", None)
    return json.dumps(vcts, sort_keys=True)


def forbidden_update(old: dict[str, Any], new: dict[str, Any], *, field_manager: str) -> str | None:
    """The API server's refusal of updating ``old`` to ``new`` (None if it would be accepted)."""
    from labkit.sim import SimCluster

    cl = SimCluster(controllers=False)
    ns = (old.get("metadata") or {}).get("namespace") or "default"
    if ns != "default":
        cl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, field_manager="setup")
    a, b = copy.deepcopy(old), copy.deepcopy(new)
    for o in (a, b):
        o.setdefault("metadata", {})["namespace"] = ns
    try:
        cl.apply(a, field_manager=field_manager, force=True)
    except ApiError:
        return None  # the old revision would not apply at all: nothing to compare
    try:
        cl.apply(b, field_manager=field_manager, force=True, dry_run=True)
    except ApiError as err:
        return err.message
    return None
