"""The one seam between the GitOps engine and a cluster.

Like an httpx transport, ``Cluster`` is the only thing the engine knows about
where objects live.  The embedded simulator (``labkit.sim.SimCluster``), a real
cluster through the official ``kubernetes`` client (``KubeCluster``) and test
doubles all implement it, so the engine's plan / apply / prune / health stages run
unchanged against any of them.

The seam is deliberately small and speaks plain dicts (the JSON form of objects):

* ``get`` / ``list`` read live objects (``list`` filters by namespace and label
  selector);
* ``apply`` is server-side apply (``PATCH`` with ``application/apply-patch+yaml``):
  the caller names its ``field_manager``, may ``force`` ownership of conflicting
  fields, and may ``dry_run`` (validate and compute the result without persisting);
* ``update`` is an Update operation (what ``kubectl edit`` and ``kubectl scale``
  do): the whole object is replaced and the manager takes ownership of what it
  changed;
* ``delete`` removes an object with a propagation policy (``Background``,
  ``Foreground``, ``Orphan``);
* ``patch_status`` writes an object's ``status`` subresource (controllers
  reporting conditions);
* ``is_namespaced`` tells whether a kind is namespaced, raising ``ApiError``
  NotFound for a kind the cluster does not serve (how an unknown kind surfaces).

Every failure is an ``labkit.core.errors.ApiError`` carrying the API server's reason,
code and message.  Reads return deep copies: mutating a returned dict never
changes the cluster.

A backend may also offer ``watch(api_version, kind, callback)`` (the simulator
does, and ``KubeCluster`` bound to a clock); controllers use it when present and
poll otherwise.  And ``create(obj, *, field_manager, dry_run=False)``, a POST:
the one write that lets the server pick the name (``metadata.generateName``), as
controllers such as sealed-secrets need for their key Secrets; ``SimCluster`` and
``KubeCluster`` implement it.  Controllers that run on any backend (the database
operator, the sealed-secrets controller, the External Secrets operator) use
only these calls — never a backend's internals.

Time is not part of this seam: the engine runs as processes on a SimPy
environment (``labkit.core.clock``), virtual for the simulator and real-time for a
real cluster.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, runtime_checkable

Obj = dict[str, Any]


@runtime_checkable
class Cluster(Protocol):
    """What the engine needs from a cluster; see the module docstring."""

    name: str

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The live object, or ``None`` when it does not exist."""
        ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: dict[str, str] | None = None,
    ) -> list[Obj]:
        """Live objects of one kind (all namespaces when ``namespace`` is None)."""
        ...

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False, dry_run: bool = False) -> Obj:
        """Server-side apply ``obj`` as ``field_manager``; returns the resulting live object."""
        ...

    def update(self, obj: Obj, *, field_manager: str, dry_run: bool = False) -> Obj:
        """Replace the object (an Update operation, like ``kubectl edit``)."""
        ...

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        dry_run: bool = False,
    ) -> Obj | None:
        """Delete; returns the object as last seen (with deletionTimestamp if finalizers hold it), None if absent."""
        ...

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        """True for namespaced kinds; raises ApiError(NotFound) for kinds the cluster does not serve."""
        ...

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj, *, field_manager: str
    ) -> Obj:
        """Replace the ``status`` subresource of an object (how controllers report)."""
        ...


def ref_of(obj: Obj) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)`` of an object ('' namespace when cluster-scoped)."""
    md = obj.get("metadata") or {}
    return obj.get("apiVersion", ""), obj.get("kind", ""), md.get("namespace") or "", md.get("name", "")


def match_labels(labels: dict[str, str] | None, selector: dict[str, str] | None) -> bool:
    if not selector:
        return True
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def iter_kinds(objs: Iterable[Obj]) -> set[tuple[str, str]]:
    return {(o.get("apiVersion", ""), o.get("kind", "")) for o in objs}


def edit(cluster: Cluster, api_version: str, kind: str, name: str, namespace: str | None,
         mutate: Callable[[Obj], None], *, field_manager: str = "kubectl-edit", attempts: int = 5) -> Obj:
    """``kubectl edit`` over the seam: read, ``mutate(obj)`` in place, write back as an Update.

    The write carries the resourceVersion it read, so a controller writing in between
    makes it a 409; like client-go's ``RetryOnConflict`` the read-mutate-write is
    repeated (up to ``attempts`` times) on that optimistic-concurrency conflict only.
    """
    from labkit.core.errors import ApiError, not_found

    for attempt in range(attempts):
        obj = cluster.get(api_version, kind, name, namespace)
        if obj is None:
            raise not_found(api_version, kind, name)
        obj["metadata"].pop("managedFields", None)
        mutate(obj)
        try:
            return cluster.update(obj, field_manager=field_manager)
        except ApiError as err:
            if err.code != 409 or "the object has been modified" not in err.message or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
