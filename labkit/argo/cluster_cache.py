"""Argo CD's cluster cache: live objects from the watch stream, indexed by the Application tracking them.

The application controller compares git with the cluster on every refresh.
Argo does not ask the API server for every managed object each time: its
*cluster cache* (gitops-engine's ``pkg/cache``) lists and then watches every
kind an Application targets, keeps the objects in memory, and answers the
comparison from there.  ``ClusterCache`` is that cache for every registered
destination (``labkit.argo.destinations``):

* ``ensure_watches(cluster, kinds)`` starts an informer per (cluster, kind)
  the first time an Application targets it — list, then watch.  A kind the
  API server does not serve yet (its CRD comes with the sync) is simply tried
  again on the next refresh; a cluster without ``watch`` (a real one through
  ``KubeCluster``) is read through the API instead;
* ``live_getter(cluster)`` reads watched kinds from the cache and the rest
  from the API.  Cached objects are shared and read-only and carry no
  ``managedFields``; a caller that needs field ownership passes
  ``managed=True`` and gets a fresh read;
* ``tracked(cluster, app)`` lists the cached objects whose tracking id names
  an Application — Argo finds an Application's managed objects this way too,
  not only through ``status.resources``, so an object created by an operation
  after the refresh that last listed it is still compared and pruned;
* ``namespaced(cluster, apiVersion, kind)`` is API discovery with a cache: a
  failed discovery (5xx, 429, timeout) is a ``TemporaryError``, not an answer,
  while a kind that is not served yet is answered from a CRD among the objects
  being synced (or assumed namespaced);
* ``verified`` remembers which target digests a server-side dry run already
  accepted, per cluster, so a comparison does not dry-run them again.

A change to a cached object that carries a tracking id is reported to
``on_change(app_name)``: the assembly (``ArgoSystem``) turns it into a refresh
of that Application, or the next step of its running sync.  The cache knows
nothing of controllers — that is what keeps it below them in the layering.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from labkit.argo.destinations import Destinations
from labkit.argo.tracking import app_of
from labkit.core.errors import ApiError, TemporaryError
from labkit.engine.objectid import split_api_version

__all__ = ["ClusterCache", "CacheKey"]

#: (group, kind, namespace, name) of a cached object
CacheKey = tuple[str, str, str, str]


def _group(api_version: str) -> str:
    return split_api_version(api_version)[0]


class ClusterCache:
    """Watched live objects of every destination cluster (see module docstring)."""

    def __init__(self, destinations: Destinations, on_change: Callable[[str], None]):
        self.destinations = destinations
        self.on_change = on_change
        self.verified: dict[Any, str] = {}
        self._namespaced: dict[tuple[str, str, str], bool] = {}
        self._watched: set[tuple[str, str, str]] = set()
        self._live: dict[str, dict[CacheKey, dict]] = {}
        # (cluster, app) -> {cache key: apiVersion} of cached objects whose tracking id names that app
        self._tracked: dict[tuple[str, str], dict[CacheKey, str]] = {}
        self._cached_kinds: set[tuple[str, str, str]] = set()

    def ensure_watches(self, cluster_name: str, kinds: Iterable[tuple[str, str]]) -> None:
        """Start an informer (list, then watch) for every ``(apiVersion, kind)`` not yet watched in the cluster."""
        entry = self.destinations.get(cluster_name)
        if entry is None:
            return
        watch = getattr(entry.cluster, "watch", None)
        if not callable(watch):
            return
        for api_version, kind in kinds:
            wk = (cluster_name, api_version, kind)
            if wk in self._watched:
                continue
            try:
                watch(api_version, kind, lambda t, o, cn=cluster_name: self._on_event(cn, t, o))
            except ApiError:
                continue  # kind not served yet (its CRD comes with the sync): try again next refresh
            self._watched.add(wk)
            group = _group(api_version)
            cache = self._live.setdefault(cluster_name, {})
            try:
                for o in entry.cluster.list(api_version, kind):  # list, then watch: an informer's start
                    md = o.get("metadata") or {}
                    o["metadata"].pop("managedFields", None)
                    ckey = (group, kind, md.get("namespace") or "", md.get("name") or "")
                    self._index(cluster_name, ckey, cache.get(ckey), o)
                    cache[ckey] = o
            except ApiError:
                continue
            self._cached_kinds.add((cluster_name, group, kind))

    def _on_event(self, cluster_name: str, event_type: str, obj: dict) -> None:
        md = obj.get("metadata") or {}
        key = (_group(obj.get("apiVersion") or ""), obj.get("kind") or "", md.get("namespace") or "",
               md.get("name") or "")
        cache = self._live.setdefault(cluster_name, {})
        if event_type == "DELETED":
            self._index(cluster_name, key, cache.pop(key, None), None)
        else:
            self._index(cluster_name, key, cache.get(key), obj)
            cache[key] = obj
        app = app_of(obj)
        if app:
            self.on_change(app)

    def _index(self, cluster_name: str, key: CacheKey, old: dict | None, new: dict | None) -> None:
        old_app, new_app = app_of(old), app_of(new)
        if old_app and old_app != new_app:
            self._tracked.get((cluster_name, old_app), {}).pop(key, None)
        if new_app:
            self._tracked.setdefault((cluster_name, new_app), {})[key] = new.get("apiVersion") or ""  # type: ignore[union-attr]

    def tracked(self, cluster_name: str, app: str) -> list[tuple[str, CacheKey]]:
        """``(apiVersion, key)`` of every cached live object whose tracking id names ``app``, sorted by key."""
        return [(av, key) for key, av in sorted(self._tracked.get((cluster_name, app), {}).items())]

    def namespaced(self, cluster_name: str, api_version: str, kind: str, objs: Iterable[dict] | None = None) -> bool:
        """Whether ``kind`` is namespaced in the cluster (discovery, cached); TemporaryError if discovery failed."""
        group = _group(api_version)
        key = (cluster_name, group, kind)
        hit = self._namespaced.get(key)
        if hit is not None:
            return hit
        cluster = self.destinations.cluster(cluster_name)
        try:
            value = bool(cluster.is_namespaced(api_version, kind))
        except ApiError as err:
            if err.reason != "NotFound":  # discovery failed (5xx, 429, timeout): not an answer, try again later
                raise TemporaryError(message=f"failed to discover the scope of {kind}: {err.message}",
                                     reason=err.reason) from None
            for o in objs or ():
                if o.get("kind") == "CustomResourceDefinition":
                    spec = o.get("spec") or {}
                    if spec.get("group") == group and (spec.get("names") or {}).get("kind") == kind:
                        return spec.get("scope", "Namespaced") == "Namespaced"
            return True
        self._namespaced[key] = value
        return value

    def live_getter(self, cluster_name: str) -> Callable[..., dict | None]:
        """A ``get(apiVersion, kind, name, namespace=None, *, managed=False)`` reading the cache where it can."""
        cluster = self.destinations.cluster(cluster_name)
        cache = self._live.get(cluster_name, {})
        kinds = self._cached_kinds

        def get(api_version: str, kind: str, name: str, namespace: str | None = None, *, managed: bool = False):
            group = _group(api_version)
            if not managed and (cluster_name, group, kind) in kinds:
                obj = cache.get((group, kind, namespace or "", name))
                if obj is not None and obj.get("apiVersion") != api_version:
                    obj = dict(obj, apiVersion=api_version)
                return obj
            return cluster.get(api_version, kind, name, namespace)
        return get
