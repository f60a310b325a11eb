"""How Argo CD writes one object: client-side apply, server-side apply, replace.

Argo CD's sync engine (gitops-engine ``applyObject``) writes each object in one
of three ways, chosen per object by its sync options:

* **apply** (default) — ``kubectl apply``, *client-side*: a three-way merge of
  the new manifest, the live object and the previous manifest stored in the
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation.  The
  message is kubectl's (``deployment.apps/web created|configured|unchanged``).
  With ``Force=true`` a change an immutable field refuses is made by deleting
  and creating the object (``kubectl apply --force``);
* **server-side apply** (``ServerSideApply=true``) — ``kubectl apply
  --server-side --force-conflicts`` with field manager ``argocd-controller``
  (Argo always forces: its SSA proposal settles conflicts that way).  Message
  ``deployment.apps/web serverside-applied``;
* **replace** (``Replace=true``) — ``kubectl replace`` (a PUT of the whole
  object, so fields other managers set are dropped too), ``create`` when the
  object does not exist, and with ``Force=true`` delete + create.  CRDs and
  Namespaces are never recreated (an Update instead), as in gitops-engine.

How labkit models them
----------------------
Both apply modes go through the seam's server-side apply with manager
``argocd-controller`` and ``force=True`` — no conflict ever stops an Argo sync
either way.  What differs between them, and what matters to the scenarios, is
**what happens to a field that was removed from git**:

* client-side (three-way merge): the field is deleted if it was in the last
  applied manifest, *whoever owns it now*.  labkit keeps the real
  ``last-applied-configuration`` annotation on every object it client-side
  applies, and after the apply removes (with an Update by ``argocd-controller``)
  every field of the previous manifest that the new one no longer has and that
  is still set — so dropping ``replicas`` from git resets a Deployment the HPA
  has scaled to the default of 1;
* server-side: the API server removes the field only if ``argocd-controller``
  alone still owns it; if the HPA has written ``replicas`` since (it then owns
  it), the value stays.

Lists are atomic for the three-way removal (a list that disappeared from the
manifest is removed whole; items inside a list are left to the merge).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from labkit.argo.api import SyncOptions
from labkit.argo.diff import LAST_APPLIED_ANNOTATION
from labkit.core.cluster import Cluster
from labkit.engine.apply import is_immutable_error
from labkit.core.errors import ApiError, group_of

__all__ = ["FIELD_MANAGER", "kubectl_ref", "apply_object", "dry_run_object", "last_applied"]

FIELD_MANAGER = "argocd-controller"


def kubectl_ref(obj: Mapping[str, Any]) -> str:
    """``deployment.apps/web``, ``service/web``: how kubectl names an object in its output."""
    kind = (obj.get("kind") or "").lower()
    group = group_of(obj.get("apiVersion") or "")
    name = (obj.get("metadata") or {}).get("name", "")
    return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"


def last_applied(obj: Mapping[str, Any]) -> str:
    """The ``last-applied-configuration`` text kubectl would store for ``obj`` (without that annotation)."""
    md = dict(obj.get("metadata") or {})
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED_ANNOTATION}
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    clean = {k: v for k, v in obj.items() if k != "status"}
    clean["metadata"] = md
    return json.dumps(clean, sort_keys=True, separators=(",", ":"))


def _with_last_applied(obj: Mapping[str, Any]) -> dict[str, Any]:
    text = last_applied(obj)
    md = dict(obj.get("metadata") or {})
    ann = dict(md.get("annotations") or {})
    ann[LAST_APPLIED_ANNOTATION] = text
    md["annotations"] = ann
    out = dict(obj)
    out["metadata"] = md
    return out


def _removed_paths(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Map paths present in ``old`` and absent from ``new`` (lists atomic)."""
    out: list[tuple[str, ...]] = []
    if not isinstance(old, dict):
        return out
    for k, v in old.items():
        if prefix == () and k in ("status", "apiVersion", "kind"):
            continue
        if prefix == ("metadata",) and k in ("name", "namespace", "resourceVersion", "uid"):
            continue
        p = prefix + (k,)
        if not isinstance(new, dict) or k not in new:
            out.append(p)
        elif isinstance(v, dict) and isinstance(new[k], dict):
            out.extend(_removed_paths(v, new[k], p))
    return out


def _drop(obj: dict, path: tuple[str, ...]) -> bool:
    cur: Any = obj
    for t in path[:-1]:
        if not isinstance(cur, dict) or t not in cur:
            return False
        cur = cur[t]
    if isinstance(cur, dict) and path[-1] in cur:
        del cur[path[-1]]
        return True
    return False


def _three_way_removals(cluster: Cluster, result: dict, live: Mapping[str, Any] | None,
                        target: Mapping[str, Any]) -> dict:
    """Client-side apply's deletions: fields of the previous manifest missing from the new one."""
    if live is None:
        return result
    old_text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if not old_text:
        return result
    try:
        old = json.loads(old_text)
    except ValueError:
        return result
    paths = _removed_paths(old, target)
    if not paths:
        return result
    new = json.loads(json.dumps(result))
    changed = False
    for p in paths:
        changed |= _drop(new, p)
    if not changed:
        return result
    new["metadata"].pop("managedFields", None)
    return cluster.update(new, field_manager=FIELD_MANAGER)


def dry_run_object(cluster: Cluster, target: Mapping[str, Any]) -> dict:
    """Validate ``target`` with a server-side dry-run apply as Argo's manager (raises ApiError)."""
    return cluster.apply(dict(target), field_manager=FIELD_MANAGER, force=True, dry_run=True)


def apply_object(cluster: Cluster, target: Mapping[str, Any], live: Mapping[str, Any] | None,
                 options: SyncOptions) -> tuple[dict | None, str]:
    """Write one object as Argo would; returns ``(result, kubectl-style message)``. Raises ApiError."""
    ref = kubectl_ref(target)
    md = target.get("metadata") or {}
    if options.enabled("Replace"):
        if live is None:
            created = _create(cluster, target)
            return created, f"{ref} created"
        kind = target.get("kind")
        is_crd_or_ns = (kind == "CustomResourceDefinition" and group_of(target.get("apiVersion") or "") ==
                        "apiextensions.k8s.io") or (kind == "Namespace" and "/" not in (target.get("apiVersion") or "v1"))
        if is_crd_or_ns:
            upd = json.loads(json.dumps(target))
            upd["metadata"]["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
            res = cluster.update(upd, field_manager=FIELD_MANAGER)
            return res, f"{target.get('kind')}/{md.get('name')} updated"
        if options.enabled("Force"):
            return _recreate(cluster, target), f"{ref} replaced"
        upd = json.loads(json.dumps(target))
        upd["metadata"]["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
        res = cluster.update(upd, field_manager=FIELD_MANAGER)
        return res, f"{ref} replaced"
    if options.enabled("ServerSideApply"):
        try:
            res = cluster.apply(dict(target), field_manager=FIELD_MANAGER, force=True)
        except ApiError as err:
            if live is None or not options.enabled("Force") or not is_immutable_error(err):
                raise
            return _recreate(cluster, target), f"{ref} replaced"
        return res, f"{ref} serverside-applied"
    body = _with_last_applied(target)
    before = (live.get("metadata") or {}).get("resourceVersion") if live is not None else None
    try:
        res = cluster.apply(body, field_manager=FIELD_MANAGER, force=True)
    except ApiError as err:
        # kubectl apply --force: an immutable field is changed by deleting and creating the object again
        if live is None or not options.enabled("Force") or not is_immutable_error(err):
            raise
        return _recreate(cluster, body), f"{ref} replaced"
    res = _three_way_removals(cluster, res, live, target)
    if live is None:
        return res, f"{ref} created"
    after = (res.get("metadata") or {}).get("resourceVersion")
    return res, f"{ref} {'unchanged' if after == before else 'configured'}"


def _recreate(cluster: Cluster, target: Mapping[str, Any]) -> dict:
    md = target.get("metadata") or {}
    cluster.delete(target["apiVersion"], target["kind"], md.get("name", ""), md.get("namespace"),
                   propagation="Background")
    if cluster.get(target["apiVersion"], target["kind"], md.get("name", ""), md.get("namespace")) is not None:
        raise ApiError("Conflict", f"{kubectl_ref(target)}: the old object is still being deleted")
    return _create(cluster, target)


def _create(cluster: Cluster, target: Mapping[str, Any]) -> dict:
    # the seam has no POST; an apply of an absent object is a create (same admission, same result)
    return cluster.apply(dict(target), field_manager=FIELD_MANAGER, force=True)
