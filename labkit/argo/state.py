"""CompareAppState: targets from git, live objects from the cluster, and the verdict per resource.

This is the heart of an Argo CD *refresh* (``controller/state.go``
``CompareAppState``), written against the ``Cluster`` seam:

1. **Targets.**  The repo-server's manifests for the resolved revision become
   *targets*: namespaced objects without a namespace get the destination
   namespace, every object gets the tracking annotation
   (``labkit.argo.tracking``), objects annotated ``hook: Skip`` are dropped and
   hooks are set aside (they are not managed resources).  An unknown hook type
   or delete policy is a comparison error naming the object and annotation, and
   nothing is synced.  Targets are built once per (revision, source) and keep a
   digest each for the verified-target cache of ``labkit.argo.diff``.
2. **Live.**  Each target's live object, plus every object this Application
   managed before (its ``status.resources``) that still exists and still
   carries *its own* tracking id — those are the ones that would be pruned.
3. **Verdict.**  Per resource: ``Synced`` / ``OutOfSync`` (missing, differing
   per ``labkit.argo.diff``, or requiring pruning), and its health
   (``labkit.core.health.argo_health``; kinds without a health check have none; a
   missing target is ``Missing``).  The Application is ``OutOfSync`` if any
   resource is, and its health is the worst of its resources' (resources that
   only await pruning do not count), in gitops-engine's order
   Healthy < Suspended < Progressing < Missing < Degraded < Unknown.

``status_resources`` renders the verdict as ``status.resources`` entries the
way Argo writes them (``group``, ``version``, ``kind``, ``namespace``, ``name``,
``status``, ``health``, ``requiresPruning``, ``syncWave``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from labkit.argo.api import ApplicationSpec, IgnoreDifference
from labkit.argo.diff import DiffResult, exact_diff, matching_rules, respect_ignored, subset_diff, target_hash
from labkit.argo.hooks import hook_types, is_hook, is_skipped, validate_hook, RUN_PHASES
from labkit.argo.tracking import owns, set_tracking
from labkit.engine.ordering import sync_wave
from labkit.core.errors import ApiError, TemporaryError
from labkit.core.health import MISSING, Health, argo_has_health_check, argo_health, worst_health

__all__ = ["ResKey", "res_key", "Target", "TargetSet", "ResourceStatus", "Comparison", "build_targets",
           "compare", "status_resources", "SYNCED", "OUT_OF_SYNC", "UNKNOWN"]

SYNCED = "Synced"
OUT_OF_SYNC = "OutOfSync"
UNKNOWN = "Unknown"

ResKey = tuple[str, str, str, str]  # group, kind, namespace, name


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def res_key(obj: Mapping[str, Any]) -> ResKey:
    md = obj.get("metadata") or {}
    return (_group(obj.get("apiVersion") or ""), obj.get("kind") or "", md.get("namespace") or "", md.get("name") or "")


def key_str(key: ResKey) -> str:
    g, k, ns, n = key
    return f"{k}/{ns}/{n}" if ns else f"{k}/{n}"


@dataclass
class Target:
    obj: dict[str, Any]
    key: ResKey
    digest: str
    hook_phases: tuple[str, ...] = ()

    @property
    def hook(self) -> bool:
        return bool(self.hook_phases)

    @property
    def api_version(self) -> str:
        return self.obj.get("apiVersion") or ""


@dataclass
class TargetSet:
    revision: str
    resources: list[Target]
    hooks: list[Target]
    source_type: str = "Directory"
    warnings: list[str] = field(default_factory=list)
    by_key: dict[ResKey, Target] = field(default_factory=dict)


@dataclass
class ResourceStatus:
    key: ResKey
    api_version: str
    target: Target | None
    live: dict[str, Any] | None
    status: str
    health: Health | None
    requires_pruning: bool = False
    diff: DiffResult | None = None

    @property
    def wave(self) -> int:
        return sync_wave(self.target.obj if self.target else (self.live or {}))


@dataclass
class Comparison:
    revision: str
    resources: list[ResourceStatus] = field(default_factory=list)
    targets: TargetSet | None = None
    sync_status: str = SYNCED
    health: Health = field(default_factory=lambda: Health("Healthy", ""))
    error: str = ""
    requests: int = 0

    def out_of_sync(self) -> list[ResourceStatus]:
        return [r for r in self.resources if r.status != SYNCED]


def build_targets(app: ApplicationSpec, objects: Iterable[Mapping[str, Any]], revision: str,
                  namespaced: Callable[[str, str, list[Mapping[str, Any]]], bool],
                  source_type: str = "Directory") -> TargetSet:
    """Targets from rendered objects (see module docstring). Raises LabkitError on invalid hooks."""
    objs = list(objects)
    dest_ns = app.destination.namespace
    where = f"{app.source.repo_url} {app.source.path or '.'}"
    resources: list[Target] = []
    hooks: list[Target] = []
    warnings: list[str] = []
    by_key: dict[ResKey, Target] = {}
    for o in objs:
        validate_hook(o, source=where)
        if is_skipped(o):
            continue
        api_version, kind = o.get("apiVersion") or "", o.get("kind") or ""
        obj = dict(o)
        md = dict(obj.get("metadata") or {})
        if namespaced(api_version, kind, objs):
            if not md.get("namespace"):
                md["namespace"] = dest_ns or "default"
        else:
            md.pop("namespace", None)
        obj["metadata"] = md
        set_tracking(obj, app.name, dest_ns)
        if is_hook(obj):
            phases = tuple(t for t in hook_types(obj) if t in RUN_PHASES)
            hooks.append(Target(obj, res_key(obj), target_hash(obj), phases or ("PreDelete",)))
            continue
        t = Target(obj, res_key(obj), target_hash(obj))
        if t.key in by_key:
            warnings.append(f"Resource {key_str(t.key)} appeared 2 times among application resources.")
            continue
        by_key[t.key] = t
        resources.append(t)
    return TargetSet(revision, resources, hooks, source_type, warnings, by_key)


def compare(
    app: ApplicationSpec,
    targets: TargetSet,
    cluster: Any,
    known: Iterable[tuple[str, ResKey]],
    rules: list[IgnoreDifference],
    verified: dict[Any, str],
    cluster_name: str,
    *,
    namespaced: Callable[[str, str], bool],
    dry_run: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    get: Callable[..., dict[str, Any] | None] | None = None,
) -> Comparison:
    """Compare targets with live objects; ``known`` are ``(apiVersion, key)`` of previously managed objects.

    ``get(api_version, kind, name, namespace, managed=False)`` reads a live object
    (the controller's cache); ``managed=True`` asks for ``managedFields`` too.
    An API error reading any of them raises ``TemporaryError`` ("Failed to load
    live state: ..."): the caller reports a ComparisonError and keeps its status.
    """
    comp = Comparison(targets.revision, targets=targets)
    if get is None:
        get = lambda av, k, n, ns=None, managed=False: cluster.get(av, k, n, ns)  # noqa: E731
    requests = 0
    seen: set[ResKey] = set()
    for t in targets.resources:
        seen.add(t.key)
        g, kind, ns, name = t.key
        requests += 1
        obj_rules = matching_rules(rules, t.obj) if rules else []
        managed = any(r.managed_fields_managers for r in obj_rules)
        try:
            live = get(t.api_version, kind, name, ns or None, managed=managed)
        except ApiError as err:
            raise _live_state_error(err) from None
        if live is None:
            comp.resources.append(ResourceStatus(t.key, t.api_version, t, None, OUT_OF_SYNC, Health(MISSING, "")))
            continue
        d = subset_diff(t.obj, live, obj_rules)
        vkey = (cluster_name, t.key)
        if not d.modified and verified.get(vkey) != t.digest and dry_run is not None:
            requests += 1
            try:
                predicted = dry_run(t.obj if not obj_rules else respect_ignored(t.obj, live, obj_rules))
            except ApiError:
                predicted = None
            if predicted is not None:
                d = exact_diff(predicted, live, obj_rules)
                if not d.modified:
                    verified[vkey] = t.digest
        health = argo_health(live) if argo_has_health_check(live) else None
        comp.resources.append(ResourceStatus(t.key, t.api_version, t, live, OUT_OF_SYNC if d.modified else SYNCED,
                                             health, diff=d))
    for api_version, key in known:
        if key in seen:
            continue
        seen.add(key)
        g, kind, ns, name = key
        requests += 1
        try:
            live = get(api_version, kind, name, ns or None)
        except ApiError as err:
            raise _live_state_error(err) from None
        if live is None or is_hook(live):
            continue
        if not owns(app.name, live, namespaced(api_version, kind)):
            continue
        health = argo_health(live) if argo_has_health_check(live) else None
        comp.resources.append(ResourceStatus(key, api_version, None, live, OUT_OF_SYNC, health, requires_pruning=True))
    comp.requests = requests
    comp.sync_status = OUT_OF_SYNC if any(r.status != SYNCED for r in comp.resources) else SYNCED
    comp.health = worst_health(r.health for r in comp.resources if r.health is not None and not r.requires_pruning)
    return comp


def _live_state_error(err: ApiError) -> TemporaryError:
    """A live object that cannot be read fails the whole comparison, as a cluster-cache error does in Argo.

    Treating it as missing would make a managed object look deleted (and an
    object awaiting pruning drop out of ``status.resources``, never to be pruned).
    """
    return TemporaryError(message=f"Failed to load live state: {err.message}", reason="ComparisonError")


def status_resources(comp: Comparison) -> list[dict[str, Any]]:
    out = []
    for r in sorted(comp.resources, key=lambda r: (r.key[0], r.key[1], r.key[2], r.key[3])):
        g, kind, ns, name = r.key
        entry: dict[str, Any] = {"group": g, "version": r.api_version.rsplit("/", 1)[-1], "kind": kind,
                                 "namespace": ns, "name": name, "status": r.status}
        if r.health is not None:
            h: dict[str, Any] = {"status": r.health.status}
            if r.health.message:
                h["message"] = r.health.message
            entry["health"] = h
        if r.requires_pruning:
            entry["requiresPruning"] = True
        if r.target is not None:
            wave = sync_wave(r.target.obj)
            if wave:
                entry["syncWave"] = wave
        out.append(entry)
    return out


def known_from_status(status: Mapping[str, Any] | None) -> list[tuple[str, ResKey]]:
    """``(apiVersion, key)`` of the resources an Application's status lists."""
    out = []
    for r in (status or {}).get("resources") or []:
        g = r.get("group") or ""
        av = f"{g}/{r.get('version')}" if g else (r.get("version") or "v1")
        out.append((av, (g, r.get("kind") or "", r.get("namespace") or "", r.get("name") or "")))
    return out

