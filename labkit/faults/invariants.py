"""The promises of a GitOps controller, as checks over one finished run.

A GitOps controller promises that the cluster converges to git and that
nothing is lost or deleted that should not be, whatever happens on the way.
This module turns that promise into functions that look at the end state of a
run (the live cluster, the controller's status, the ``AuditCluster`` journal
of every write that reached the cluster, the event log) and return a list of
*violations* — human-readable strings, empty when the promise held.  Property
tests assert the list is empty; the soak benchmark counts them.

The checks
==========

``converged``           every object git wants exists live and every field git sets has
                        git's value (owned fields; fields other managers added are allowed);
``deletes_were_owned``  every delete the controller made hit an object that carried the
                        dialect's ownership marks at that moment;
``protected_survived``  no delete hit an object marked as protected from pruning at that
                        moment (Flux ``kustomize.toolkit.fluxcd.io/prune: disabled``);
``foreign_survived``    objects created by other managers, never in git, all still exist;
``inventory_matches``   each application's recorded inventory is exactly the set of
                        objects git assigns to it;
``no_orphans``          every live object carrying an application's ownership marks is in
                        that application's inventory (or protected, or known foreign) —
                        the controller never loses track of something it created;
``quiet_writes``        a reconcile with nothing to change writes nothing to the objects
                        it manages;
``no_secret_leaks``     no Secret value (plain or base64) appears in the event log, in
                        the controller's status, or in any other text handed in.

Dialects
========

The checks know nothing about Flux or Argo CD.  What differs between dialects —
what "ownership marks" are, what protects an object from pruning, where the
inventory lives — is behind the small ``Dialect`` protocol.  ``FluxDialect``
implements it for kustomize-controller (owner labels
``kustomize.toolkit.fluxcd.io/name`` / ``.../namespace``, the ``prune: disabled``
annotation, ``status.inventory``).  The Argo CD dialect will add an
``ArgoDialect`` with the tracking annotation ``argocd.argoproj.io/tracking-id``
(or the instance label), the ``Prune=false`` / ``Delete=false`` sync options and
the Application's ``status.resources`` as inventory — and every check here then
applies to it unchanged.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Iterable, Mapping, Protocol

from labkit.core.cluster import Cluster, Obj
from labkit.engine.inventory import object_id
from labkit.core.events import EventLog, key_of
from labkit.flux.api import KUSTOMIZE_API_VERSION
from labkit.flux.policy import NAME_LABEL, NAMESPACE_LABEL, PRUNE_ANNOTATION

__all__ = [
    "Dialect",
    "FluxDialect",
    "missing_fields",
    "converged",
    "deletes_were_owned",
    "protected_survived",
    "foreign_survived",
    "inventory_matches",
    "no_orphans",
    "quiet_writes",
    "no_secret_leaks",
    "secret_forms",
]


class Dialect(Protocol):
    """What the invariants need to know about one GitOps dialect."""

    name: str

    def owns(self, app: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        """Whether an object with these labels/annotations carries ``app``'s ownership marks."""
        ...

    def owner_of(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str | None:
        """The application whose ownership marks the object carries, if any."""
        ...

    def protected(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        """Whether the object is marked as never to be pruned."""
        ...

    def inventory(self, app: str) -> set[str] | None:
        """Inventory ids (``<ns>_<name>_<group>_<kind>``) recorded for ``app``; None if unreadable."""
        ...

    def statuses(self) -> list[Obj]:
        """The status of every application object (text to search for leaks)."""
        ...


class FluxDialect:
    """``Dialect`` for kustomize-controller Kustomizations in one namespace."""

    name = "flux"

    def __init__(self, cluster: Cluster, apps: Iterable[str], namespace: str = "flux-system"):
        self.cluster = cluster
        self.apps = list(apps)
        self.namespace = namespace

    def owns(self, app: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        return labels.get(NAME_LABEL) == app and labels.get(NAMESPACE_LABEL) == self.namespace

    def owner_of(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str | None:
        if labels.get(NAMESPACE_LABEL) != self.namespace:
            return None
        return labels.get(NAME_LABEL)

    def protected(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
        return annotations.get(PRUNE_ANNOTATION, "").lower() == "disabled"

    def inventory(self, app: str) -> set[str] | None:
        obj = self.cluster.get(KUSTOMIZE_API_VERSION, "Kustomization", app, self.namespace)
        inv = ((obj or {}).get("status") or {}).get("inventory")
        if inv is None:
            return None
        return {e["id"] for e in inv.get("entries") or []}

    def statuses(self) -> list[Obj]:
        out = []
        for app in self.apps:
            obj = self.cluster.get(KUSTOMIZE_API_VERSION, "Kustomization", app, self.namespace)
            if obj is not None:
                out.append(obj.get("status") or {})
        return out


# ------------------------------------------------------------------ helpers

def _md(obj: Obj) -> tuple[dict[str, str], dict[str, str]]:
    md = obj.get("metadata") or {}
    return dict(md.get("labels") or {}), dict(md.get("annotations") or {})


def missing_fields(desired: Any, live: Any, path: str = "") -> list[str]:
    """Paths where ``live`` does not carry ``desired``'s value (``desired`` ⊆ ``live``).

    Maps: every key of ``desired`` must be in ``live`` with a matching value;
    lists of maps (Kubernetes' associative lists): every item of ``desired``
    must be contained in some item of ``live`` (the server adds defaults inside
    items, e.g. a container's ``imagePullPolicy``, and server-side apply keeps
    items other managers own next to git's); other lists and scalars: equal.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [path or "/"]
        out: list[str] = []
        for k, v in desired.items():
            p = f"{path}/{k}"
            if k not in live:
                out.append(p)
            else:
                out.extend(missing_fields(v, live[k], p))
        return out
    if isinstance(desired, list):
        if not isinstance(live, list):
            return [path or "/"]
        if not all(isinstance(d, Mapping) for d in desired):
            return [] if desired == live else [path or "/"]  # atomic list of scalars: equal
        # associative list (containers by name, ports by port/protocol): each of git's items must be
        # present with git's values; items other managers added may sit next to them (SSA merges by key)
        out = []
        for i, d in enumerate(desired):
            same = live[i] if i < len(live) else None
            if same is not None and not missing_fields(d, same):
                continue
            if not any(not missing_fields(d, l) for l in live):
                out.append(f"{path}/{i}")
        return out
    return [] if desired == live else [path or "/"]


def _get(cluster: Cluster, obj: Obj) -> Obj | None:
    md = obj.get("metadata") or {}
    return cluster.get(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"))


# ------------------------------------------------------------------ the checks

def converged(cluster: Cluster, desired: Mapping[str, Iterable[Obj]], dialect: Dialect) -> list[str]:
    """Every desired object exists, carries its application's marks and git's value for every field git sets."""
    out = []
    for app, objs in desired.items():
        for obj in objs:
            live = _get(cluster, obj)
            if live is None:
                out.append(f"converged: {key_of(obj)} ({app}) is missing")
                continue
            diff = missing_fields({k: v for k, v in obj.items() if k != "metadata"},
                                  {k: v for k, v in live.items() if k != "metadata"})
            labels, annotations = _md(obj)
            live_labels, live_annotations = _md(live)
            diff += [f"/metadata/labels/{k}" for k, v in labels.items() if live_labels.get(k) != v]
            diff += [f"/metadata/annotations/{k}" for k, v in annotations.items() if live_annotations.get(k) != v]
            if diff:
                out.append(f"converged: {key_of(obj)} ({app}) differs from git at {', '.join(sorted(diff))}")
            if not dialect.owns(app, live_labels, live_annotations):
                out.append(f"converged: {key_of(obj)} does not carry the ownership marks of {app}")
    return out


def deletes_were_owned(deletes: Iterable[Any], dialect: Dialect) -> list[str]:
    """Every delete (``SeamWrite`` from ``AuditCluster``) hit an object with some app's ownership marks."""
    return [f"deletes_were_owned: {w.object} was deleted at t={w.time:g} without ownership marks "
            f"(labels {w.labels})" for w in deletes if dialect.owner_of(w.labels, w.annotations) is None]


def protected_survived(deletes: Iterable[Any], dialect: Dialect) -> list[str]:
    """No delete hit an object marked as protected from pruning."""
    return [f"protected_survived: {w.object} was deleted at t={w.time:g} although protected "
            f"(annotations {w.annotations})" for w in deletes if dialect.protected(w.labels, w.annotations)]


def foreign_survived(cluster: Cluster, foreign: Iterable[Obj]) -> list[str]:
    """Objects created by other managers (never in git) all still exist."""
    return [f"foreign_survived: {key_of(o)} (not from git) is gone" for o in foreign if _get(cluster, o) is None]


def inventory_matches(desired: Mapping[str, Iterable[Obj]], dialect: Dialect) -> list[str]:
    """Each app's inventory is exactly the ids of the objects git assigns to it."""
    out = []
    for app, objs in desired.items():
        want = {object_id(o) for o in objs}
        have = dialect.inventory(app)
        if have is None:
            out.append(f"inventory_matches: {app} has no inventory")
        elif have != want:
            extra, missing = sorted(have - want), sorted(want - have)
            out.append(f"inventory_matches: {app} inventory differs: extra {extra}, missing {missing}")
    return out


def no_orphans(cluster: Cluster, kinds: Iterable[tuple[str, str]], dialect: Dialect, apps: Iterable[str], *,
               namespace: str | None = None, exempt: Iterable[str] = ()) -> list[str]:
    """Every live object with an app's marks is in that app's inventory (unless protected or exempt)."""
    apps = list(apps)
    inventories = {a: dialect.inventory(a) or set() for a in apps}
    skip = set(exempt)
    out = []
    for api_version, kind in kinds:
        for live in cluster.list(api_version, kind, namespace):
            labels, annotations = _md(live)
            owner = dialect.owner_of(labels, annotations)
            if owner not in inventories or key_of(live) in skip or dialect.protected(labels, annotations):
                continue
            if object_id(live) not in inventories[owner]:
                out.append(f"no_orphans: {key_of(live)} carries the marks of {owner} but is not in its inventory")
    return out


def quiet_writes(log: EventLog, since: float, managed: Iterable[str], until: float | None = None) -> list[str]:
    """No API write (Created/Updated/Deleted) to a managed object after ``since`` (and before ``until``)."""
    keys = set(managed)
    hits = [e for e in log.filter(component="api", event=["Created", "Updated", "Deleted", "DeletionStarted"],
                                  since=since)
            if e.object in keys and (until is None or e.time <= until)]
    return [f"quiet_writes: {e.event} {e.object} at t={e.time:g} although nothing changed" for e in hits]


def secret_forms(values: Iterable[str]) -> set[str]:
    """The texts that would betray a Secret value: the value itself and its base64 encoding."""
    out = set()
    for v in values:
        if not v:
            continue
        out.add(v)
        out.add(base64.b64encode(v.encode()).decode())
    return out


def no_secret_leaks(values: Iterable[str], *, log: EventLog | None = None, statuses: Iterable[Obj] = (),
                    texts: Mapping[str, str] | None = None) -> list[str]:
    """No Secret value (or its base64) appears in the event log frame, the statuses or the named texts."""
    forms = secret_forms(values)
    haystacks: dict[str, str] = {}
    if log is not None:
        frame = log.to_frame()
        haystacks["event log"] = frame.astype(str).to_csv(index=False) if len(frame) else ""
    for i, st in enumerate(statuses):
        haystacks[f"status[{i}]"] = json.dumps(st, sort_keys=True, default=str)
    for name, text in (texts or {}).items():
        haystacks[name] = text
    out = []
    for where, text in haystacks.items():
        for f in sorted(forms):
            if f in text:
                out.append(f"no_secret_leaks: a Secret value ({f[:4]}…) appears in {where}")
    return out
