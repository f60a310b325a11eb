"""The Kustomization's build stage: real kustomize, ``postBuild`` substitution, owner labels.

This is what kustomize-controller's ``build`` does between fetching an artifact
and planning it, and what ``flux diff kustomization`` does before its dry-run:
render ``spec.path`` inside the artifact with real kustomize (``Renderer``,
confined to the artifact and cached per revision, path and build settings),
run ``postBuild`` substitution (on every reconcile, since its ConfigMaps and
Secrets may change), refuse shapes kustomize passes through but the API would
not (``labels: [a]``, ``name: 123``), and stamp every object with the owner
labels the prune and the deletion finaliser select by
(``kustomize.toolkit.fluxcd.io/name`` and ``/namespace``).

It sits in its own module, below both the reconciler (``labkit.flux.kustomize``)
and the controllers' front end (``labkit.flux.system``), so neither has to reach
into the other for it: it takes the renderer and the cluster as arguments.
Errors are ``LabkitError`` (``PathNotFoundError`` and ``PathConfinementError``
among them); the reconciler turns them into its stage's failure reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.core.cluster import Cluster
from labkit.engine.plan import check_shape
from labkit.core.errors import ApiError
from labkit.flux.policy import owner_labels
from labkit.gitops.render import Renderer
from labkit.gitops.substitute import collect_variables, substitute



def render(renderer: Renderer, cluster: Cluster, root: Path, spec: dict, sha: str, namespace: str,
           post_build: Any) -> list[dict]:
    """Real kustomize build of ``spec.path`` inside the artifact ``root``, then ``postBuild``.

    ``spec`` is the Kustomization's raw spec (its build settings), ``post_build``
    the parsed ``spec.postBuild`` or None.  Substitution sources are read from
    ``namespace`` on ``cluster``.
    """
    path = spec.get("path") or "./"
    if post_build is None:
        return renderer.render(path, root=root, key=sha, overrides=spec)
    docs = renderer.render_documents(path, root=root, key=sha, overrides=spec)
    sources: list[Any] = []
    for ref in post_build.substitute_from:
        obj = cluster.get("v1", ref.kind, ref.name, namespace)
        sources.append(({"kind": ref.kind, "name": ref.name, "optional": ref.optional}, obj))
    variables = collect_variables(dict(post_build.substitute), sources)
    return substitute(docs, variables, strict=True, source=path)


def own_objects(objects: list[dict], name: str, namespace: str, cluster: Cluster) -> None:
    """Add the owner labels and default the namespace of namespaced objects (in place)."""
    for o in objects:
        md = o.setdefault("metadata", {})
        labels = md.setdefault("labels", {})
        labels.update(owner_labels(name, namespace))
        if not md.get("namespace"):
            try:
                namespaced = cluster.is_namespaced(o.get("apiVersion", ""), o.get("kind", ""))
            except ApiError:
                namespaced = True  # unknown kind: the dry-run will name it
            if namespaced:
                md["namespace"] = "default"  # as the API server defaults it; keeps inventory ids exact


def build_objects(renderer: Renderer, cluster: Cluster, root: Path, spec: dict, sha: str, name: str,
                  namespace: str, post_build: Any) -> list[dict]:
    """``render``, refuse malformed shapes, then ``own_objects``: the objects Kustomization ``namespace/name`` applies."""
    objects = render(renderer, cluster, root, spec, sha, namespace, post_build)
    for o in objects:
        check_shape(o)  # kustomize passes `labels: [a]` or `name: 123` through: refuse, never crash
    own_objects(objects, name, namespace, cluster)
    return objects
