"""Reconcile each target in a fresh simulated cluster, and read back what happened.

For every target found by ``labkit.tryrepo.discovery``:

1. a new ``labkit.sim.SimCluster`` (seeded; the simulator's realistic
   ``Timings``: image pulls of a few seconds, readiness probe delays, job run
   times) with the registry of ``labkit.tryrepo.simsetup.make_registry`` and
   the CRDs the manifests assume (one the API server refuses — a kind named
   with look-alike non-ASCII letters — is left out with a note, and its
   objects fail in their unit, not the run);
2. the dialect's controllers over it — ``labkit.flux.system.FluxSystem`` with
   Flux's default timings (fetch, build), or ``labkit.argo.ArgoSystem`` with
   Argo's — serving the snapshot at every URL discovery classified as *this
   repository* (``SnapshotRemote``);
3. the bootstrap objects applied as ``kubectl apply`` would (validated first,
   so a broken Kustomization or Application is one clear error);
4. virtual time advanced until the run *settles*: every Kustomization is Ready,
   failed for a reason that will not clear by waiting (``BuildFailed``,
   ``ReconciliationFailed``, ``HealthCheckFailed``, ``PruneFailed``, a source
   that cannot be fetched), suspended, or waiting on a dependency that failed;
   every Application has finished its sync operation and is not
   ``Progressing``.  After that, objects nobody health-checks get a grace
   period (``grace`` virtual seconds, 15 minutes by default — longer than a
   Deployment's 10-minute progress deadline) to become ready or fail, so the
   report can give their time to ready too.  A hard ``max_time`` (2 virtual
   hours) bounds everything, and a run that hits it is marked *not settled*.

Applications without ``syncPolicy.automated`` would stay OutOfSync forever in
Argo CD; here each one gets a single manual sync (what a person clicking
*Sync* does) once its first refresh has happened, and the report says so.

The results are ``labkit.tryrepo.model`` records: per unit the controller's own
status (``Ready`` condition reason and message for Flux, sync / health /
operation phase for Argo) and the virtual time it first became ready; per object
the outcome from ``ObjectTracker`` (exact creation, ready and failure times) and,
for a workload that did not become ready, why — the waiting reason of its pods
(``ImagePullBackOff: ...``), which is what ``kubectl describe`` would show.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from labkit.core.errors import ApiError, LabkitError
from labkit.flux import conditions as C
from labkit.sim import SimCluster
from labkit.tryrepo.discovery import ARGO_API, FLUX_GIT_API, FLUX_KS_API, Discovery, Target, Unit
from labkit.tryrepo.model import ObjectResult, TargetResult, UnitResult
from labkit.tryrepo.simsetup import ObjectTracker, Tracked, assumed_crds, make_registry
from labkit.tryrepo.source import RepoSource, SnapshotRemote

__all__ = ["RunOptions", "TargetRun", "reconcile_target"]

_FINAL_FAIL = {C.BUILD_FAILED, C.FAILED, C.HEALTH_CHECK_FAILED, C.PRUNE_FAILED, "InvalidSpec"}
_NO_HEALTH = {"Resource is current", "Resource is always ready"}
_UNIT_KINDS = {"Kustomization", "Application"}
_BENIGN_REASONS = {"Completed", "ContainerCreating", "PodInitializing"}


@dataclass
class RunOptions:
    seed: int = 0
    missing_images: list[str] = field(default_factory=list)
    step: float = 5.0
    grace: float = 900.0
    max_time: float = 7200.0
    wall_limit: float = 120.0
    renderer: Any = None  # a labkit.gitops.render.Renderer to share with discovery (one kustomize run per path)
    appset_wait: float = 300.0  # give ApplicationSets this long to generate their first Application


@dataclass
class TargetRun:
    """Everything a target's run produced (results plus the live cluster, for tests and figures)."""

    result: TargetResult
    units: list[UnitResult]
    objects: list[ObjectResult]
    cluster: Any
    log: Any
    clusters: dict[str, Any] = field(default_factory=dict)


def _cond(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _default_ns(o: dict[str, Any], cluster: Any) -> str:
    md = o.get("metadata") or {}
    if md.get("namespace"):
        return str(md["namespace"])
    try:
        return "default" if cluster.is_namespaced(o.get("apiVersion", ""), o.get("kind", "")) else ""
    except Exception:  # noqa: BLE001 - unknown kind
        return "default"


def _key(kind: str, ns: str, name: str) -> str:
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


# ---------------------------------------------------------------------------- Flux

def _flux_states(cluster: Any) -> dict[str, str]:
    """Per Kustomization key: ok | fail | wait | suspended (see the module docstring)."""
    items = {f"{k['metadata'].get('namespace', '')}/{k['metadata']['name']}": k
             for k in cluster.list(FLUX_KS_API, "Kustomization")}
    state: dict[str, str] = {}
    for key, k in items.items():
        spec = k.get("spec") or {}
        ready = _cond(k, C.READY)
        rec = _cond(k, C.RECONCILING)
        if spec.get("suspend"):
            state[key] = "suspended"
        elif ready is None or (rec is not None and rec.get("status") == "True"):
            state[key] = "wait"
        elif ready.get("status") == "True":
            gen_ok = (k.get("status") or {}).get("observedGeneration") == k["metadata"].get("generation")
            state[key] = "ok" if gen_ok else "wait"
        elif ready.get("reason") in _FINAL_FAIL:
            state[key] = "fail"
        elif ready.get("reason") == C.ARTIFACT_FAILED:
            ref = spec.get("sourceRef") or {}
            ns = ref.get("namespace") or k["metadata"].get("namespace")
            src = cluster.get(FLUX_GIT_API, ref.get("kind", "GitRepository"), ref.get("name", ""), ns) \
                if ref.get("kind", "GitRepository") == "GitRepository" else None
            src_ready = _cond(src, C.READY)
            state[key] = "fail" if src is None or (src_ready is not None and src_ready.get("status") == "False") \
                else "wait"
        else:
            state[key] = "wait"
    # a Kustomization waiting on a dependency that failed (or does not exist) will wait forever
    changed = True
    while changed:
        changed = False
        for key, k in items.items():
            ready = _cond(k, C.READY)
            if state[key] != "wait" or ready is None or ready.get("reason") != C.DEPENDENCY_NOT_READY:
                continue
            for dep in (k.get("spec") or {}).get("dependsOn") or []:
                dkey = f"{dep.get('namespace') or k['metadata'].get('namespace', '')}/{dep.get('name')}"
                if state.get(dkey, "fail") in ("fail", "suspended") or (dkey not in state and _all_done(state, key)):
                    state[key] = "fail"
                    changed = True
                    break
    return state


def _all_done(state: dict[str, str], but: str) -> bool:
    return all(v != "wait" for k, v in state.items() if k != but)


def _run_until_settled(env_run: Callable[[float], None], now: Callable[[], float], settled: Callable[[], bool],
                       tracker_pending: Callable[[], list], opts: RunOptions) -> tuple[bool, float]:
    wall0 = time.monotonic()
    settled_at: float | None = None
    while now() < opts.max_time:
        env_run(now() + opts.step)
        if time.monotonic() - wall0 > opts.wall_limit:
            return False, now()
        if settled_at is None:
            if settled():
                settled_at = now()
        if settled_at is not None:
            if not tracker_pending() or now() - settled_at >= opts.grace:
                return True, now()
            if not settled():
                settled_at = None
    return False, now()


def reconcile_flux(target: Target, source: RepoSource, disc: Discovery, opts: RunOptions) -> TargetRun:
    from labkit.flux.system import FluxSystem

    wall0 = time.monotonic()
    objs = target.objects()
    cluster = SimCluster(seed=opts.seed, name=target.name, registry=make_registry(objs, opts.missing_images))
    tmp = tempfile.TemporaryDirectory(prefix="labkit-try-flux-")
    flux = FluxSystem(cluster, cluster.env, log=cluster.log, seed=opts.seed, workdir=Path(tmp.name))
    if opts.renderer is not None:
        flux.renderer = opts.renderer
    flux.install()
    for url in sorted(disc.self_urls):
        flux.add_remote(url, SnapshotRemote(source, url))
    notes: list[str] = []
    crds = _install_assumed(cluster, assumed_crds(cluster, objs), notes)
    kinds = {str(o.get("kind")): str(o.get("apiVersion")) for o in objs}
    kinds.setdefault("Kustomization", FLUX_KS_API)
    kinds.setdefault("GitRepository", FLUX_GIT_API)
    tracker = ObjectTracker(cluster, kinds)
    for obj in target.bootstrap:
        root = next((u for u in target.roots if u.name == obj["metadata"]["name"] and u.kind == obj["kind"]), None)
        flux.apply(obj, file=(root.file if root and root.file else None))

    def settled() -> bool:
        st = _flux_states(cluster)
        return bool(st) and all(v != "wait" for v in st.values())

    ok, end = _run_until_settled(lambda t: cluster.run(until=t), lambda: cluster.env.now, settled,
                                 lambda: (tracker.refresh(), tracker.pending())[1], opts)
    result = TargetResult(target.name, "flux", [r.ref for r in target.roots],
                          assumed_crds=[c["metadata"]["name"] for c in crds], settled_at=round(end, 3), settled=ok,
                          notes=notes)
    if not ok:
        result.notes.append(f"the run had not settled after {end:.0f} virtual seconds; results are as of then")
    units = _flux_units(target, cluster)
    objects = _objects(target, {cluster.name: cluster}, tracker.objects, units, default_cluster=cluster)
    result.wall_seconds = round(time.monotonic() - wall0, 3)
    run = TargetRun(result, units, objects, cluster, cluster.log, {cluster.name: cluster})
    run._tmp = tmp  # type: ignore[attr-defined]  # keep the workdir alive as long as the run
    return run


def _install_assumed(cluster: Any, crds: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """Apply the assumed CRDs; one the API server refuses (a kind whose plural is not a DNS name — non-ASCII
    look-alike letters, say) is left out with a note, and objects of that kind fail to apply in their unit."""
    installed = []
    for crd in crds:
        try:
            cluster.apply(crd, field_manager="labkit-try")
        except ApiError as err:
            names = (crd.get("spec") or {}).get("names") or {}
            notes.append(f"kind {names.get('kind')} ({(crd.get('spec') or {}).get('group')}) cannot be assumed "
                         f"installed: {err.message}")
            continue
        installed.append(crd)
    return installed


def _flux_units(target: Target, cluster: Any) -> list[UnitResult]:
    by_ref = {u.ref: u for u in target.units if u.dialect == "flux"}
    out: list[UnitResult] = []
    seen: set[str] = set()
    live = cluster.list(FLUX_KS_API, "Kustomization")
    for k in live:
        md = k["metadata"]
        ref = f"Kustomization/{md.get('namespace', '')}/{md['name']}"
        seen.add(ref)
        u = by_ref.get(ref)
        spec = k.get("spec") or {}
        ready = _cond(k, C.READY) or {}
        if spec.get("suspend"):
            status = "Suspended"
        elif ready.get("status") == "True":
            status = "Ready"
        elif ready.get("reason") in (C.DEPENDENCY_NOT_READY,) or not ready:
            status = "Waiting"
        else:
            status = "Failed"
        healthy = _cond(k, C.HEALTHY)
        health = "" if healthy is None else ("Healthy" if healthy.get("status") == "True" else "Unhealthy")
        first_ok = cluster.log.first(component="kustomize-controller", event=C.SUCCEEDED,
                                     object=f"Kustomization/{md.get('namespace', '')}/{md['name']}")
        deps = [f"{d.get('namespace') or md.get('namespace', '')}/{d.get('name')}" for d in spec.get("dependsOn") or []]
        out.append(UnitResult(target.name, "flux", "Kustomization", md.get("namespace", ""), md["name"],
                              str(spec.get("path") or "./"), status, health, str(ready.get("reason") or ""),
                              str(ready.get("message") or ""), round(first_ok.time, 3) if first_ok else None, deps,
                              u.file if u else None, u.line if u else None, bool(u and u.synthesized),
                              len(u.objects) if u else 0))
    for ref, u in by_ref.items():
        if ref in seen:
            continue
        out.append(UnitResult(target.name, "flux", u.kind, u.namespace, u.name, u.path, "NotApplied", "", "",
                              "never created in the cluster (its parent did not apply it)", None, [],
                              u.file, u.line, u.synthesized, len(u.objects)))
    return sorted(out, key=lambda r: (r.ready_at is None, r.ready_at or 0, r.namespace, r.name))


# ---------------------------------------------------------------------------- objects

def _pod_reason(cluster: Any, t: Tracked) -> str:
    """The waiting/termination reason of a workload's pods, as kubectl describe would show it."""
    live = cluster.get(t.api_version, t.kind, t.name, t.namespace or None)
    if live is None:
        return ""
    sel = (((live.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    if t.kind == "Job":
        sel = {"job-name": t.name} if not sel else sel
    if not sel:
        return ""
    try:
        pods = cluster.list("v1", "Pod", t.namespace or None, sel)
    except Exception:  # noqa: BLE001
        return ""
    for p in pods:
        for cs in ((p.get("status") or {}).get("containerStatuses") or []) + \
                  ((p.get("status") or {}).get("initContainerStatuses") or []):
            state = cs.get("state") or {}
            for phase in ("waiting", "terminated"):
                s = state.get(phase)
                if s and s.get("reason") and s.get("reason") not in _BENIGN_REASONS:
                    msg = s.get("message") or ""
                    return f"{s['reason']}: {msg}" if msg else str(s["reason"])
    return ""


def _objects(target: Target, clusters: dict[str, Any], tracked: dict[str, Tracked], units: list[UnitResult],
             default_cluster: Any, dest_of: Callable[[Unit], str] | None = None) -> list[ObjectResult]:
    unit_state = {u.ref: u for u in units}
    out: list[ObjectResult] = []
    seen: set[str] = set()
    for u in target.units:
        cname = dest_of(u) if dest_of else default_cluster.name
        cl = clusters.get(cname, default_cluster)
        ur = unit_state.get(u.ref)
        for o in u.objects:
            kind, md = str(o.get("kind")), o.get("metadata") or {}
            if u.dialect == "argo":
                dest_ns = str(((u.spec.get("destination") or {}).get("namespace")) or "")
                ns = str(md.get("namespace") or "") or (dest_ns if _namespaced(cl, o) else "")
            else:
                ns = _default_ns(o, cl)
            key = _key(kind, ns, str(md.get("name")))
            if (cname, key) in seen:
                continue
            seen.add((cname, key))
            t = tracked.get(key) if cl is default_cluster or dest_of is None else tracked.get(f"{cname}:{key}")
            res = ObjectResult(target.name, cname, u.ref, str(o.get("apiVersion")), kind, ns, str(md.get("name")),
                               "not-applied")
            child = unit_state.get(f"{kind}/{ns}/{md.get('name')}") if kind in _UNIT_KINDS else None
            if child is not None and t is not None and t.created_at is not None:
                res.created_at = round(t.created_at, 3)
                res.message = child.message
                if child.ready_at is not None and child.status in ("Ready", "Synced"):
                    res.outcome, res.ready_at = "healthy", child.ready_at
                    res.time_to_ready = round(max(child.ready_at - t.created_at, 0.0), 3)
                else:
                    res.outcome = "failed" if child.status == "Failed" else "progressing"
            elif t is None or t.created_at is None:
                why = "its unit did not apply it"
                if ur is not None and ur.message:
                    why = f"{u.ref} {ur.status.lower()}: {ur.message}"
                elif ur is None and u.source != "self":
                    why = u.source_note
                res.message = why
            else:
                res.created_at = round(t.created_at, 3)
                if t.ready_at is not None and t.status == "Current":
                    res.ready_at = round(t.ready_at, 3)
                    res.time_to_ready = round(t.ready_at - t.created_at, 3)
                    res.outcome = "created" if t.message in _NO_HEALTH else "healthy"
                    res.message = t.message
                elif t.status == "Failed" or t.failed_at is not None:
                    res.outcome = "failed"
                    res.message = _pod_reason(cl, t) or t.message
                    if t.message and res.message != t.message:
                        res.message = f"{t.message} ({res.message})"
                else:
                    res.outcome = "progressing"
                    reason = _pod_reason(cl, t)
                    res.message = f"{t.message}" + (f" ({reason})" if reason else "")
                    if ur is not None and ur.status == "Failed" and ur.reason:
                        res.outcome = "failed"
            out.append(res)
    return out


def _namespaced(cluster: Any, o: dict[str, Any]) -> bool:
    try:
        return bool(cluster.is_namespaced(o.get("apiVersion", ""), o.get("kind", "")))
    except Exception:  # noqa: BLE001
        return True


# ---------------------------------------------------------------------------- Argo

IN_CLUSTER_SERVER = "https://kubernetes.default.svc"


def _dest_name(u: Unit) -> str:
    d = u.spec.get("destination") or {}
    server, name = d.get("server") or "", d.get("name") or ""
    if name and name != "in-cluster":
        return name
    if server and server.rstrip("/") != IN_CLUSTER_SERVER:
        return server.split("://", 1)[-1].split("/")[0].split(":")[0] or server
    return "in-cluster"


class _MultiTracker:
    """One ObjectTracker per destination cluster, keyed ``<cluster>:<key>`` for the non-default ones."""

    def __init__(self, clusters: dict[str, Any], kinds: dict[str, str], default: str):
        self.trackers = {n: ObjectTracker(c, kinds) for n, c in clusters.items()}
        self.default = default

    @property
    def objects(self) -> dict[str, Tracked]:
        out: dict[str, Tracked] = {}
        for n, tr in self.trackers.items():
            for k, t in tr.objects.items():
                out[k if n == self.default else f"{n}:{k}"] = t
        return out

    def refresh(self) -> None:
        for tr in self.trackers.values():
            tr.refresh()

    def pending(self) -> list[Tracked]:
        return [t for tr in self.trackers.values() for t in tr.pending()]


def _app_state(app: dict[str, Any]) -> str:
    st = app.get("status") or {}
    op = st.get("operationState") or {}
    conds = [c.get("type", "") for c in st.get("conditions") or []]
    health = (st.get("health") or {}).get("status", "")
    sync = (st.get("sync") or {}).get("status", "")
    if any(c.endswith("Error") for c in conds) and not op:
        return "done"
    if op.get("phase") in ("Running", "Terminating"):
        return "wait"
    if op.get("phase") in ("Failed", "Error"):
        return "done"
    if sync == "Synced" and health not in ("Progressing", "", "Missing"):
        return "done"
    if op.get("phase") == "Succeeded" and health not in ("Progressing",):
        return "done"
    return "wait"


def reconcile_argo(target: Target, source: RepoSource, disc: Discovery, opts: RunOptions) -> TargetRun:
    import simpy

    from labkit.argo import ArgoSystem
    from labkit.core.events import EventLog

    wall0 = time.monotonic()
    objs = target.objects()
    env = simpy.Environment()
    log = EventLog(lambda: env.now)
    registry = make_registry(objs, opts.missing_images)
    mgmt = SimCluster(seed=opts.seed, name="in-cluster", env=env, log=log, registry=registry)
    clusters: dict[str, Any] = {"in-cluster": mgmt}
    argo = ArgoSystem(mgmt, env, log=log, seed=opts.seed)
    for u in target.units:
        if u.kind != "Application":
            continue
        name = _dest_name(u)
        if name in clusters:
            continue
        cl = SimCluster(seed=opts.seed, name=name, env=env, log=EventLog(lambda: env.now), registry=registry)
        clusters[name] = cl
        d = u.spec.get("destination") or {}
        server = d.get("server") or f"https://{name}.clusters.labkit.local"
        argo.add_cluster(name, server, cl)
    for url in sorted(disc.self_urls):
        argo.add_repo(SnapshotRemote(source, url), url)
    if opts.renderer is not None and hasattr(argo.repo_server, "_renderer"):
        argo.repo_server._renderer = opts.renderer  # share discovery's kustomize renders
    argo.install()
    crds: list[dict[str, Any]] = []
    notes: list[str] = []
    for cname, cl in clusters.items():
        dest_objs = [o for u in target.units if _dest_name(u) == cname for o in u.objects]
        crds += _install_assumed(cl, assumed_crds(cl, dest_objs), notes)
    kinds = {str(o.get("kind")): str(o.get("apiVersion")) for o in objs}
    kinds.setdefault("Application", ARGO_API)
    tracker = _MultiTracker(clusters, kinds, "in-cluster")
    for obj in target.bootstrap:
        root = next((u for u in target.roots if u.name == obj["metadata"]["name"] and u.kind == obj["kind"]), None)
        argo.apply(obj, file=(root.file if root and root.file else None))
    manual: set[str] = set()
    healthy_at: dict[str, float] = {}

    def on_app(ev: Any) -> None:
        if ev.component != "api" or not ev.object.startswith("Application/") or ev.object in healthy_at:
            return
        _, ns, name = ev.object.split("/", 2)
        app = mgmt.get(ARGO_API, "Application", name, ns)
        st = (app or {}).get("status") or {}
        if (st.get("sync") or {}).get("status") == "Synced" and (st.get("health") or {}).get("status") == "Healthy":
            healthy_at[ev.object] = ev.time

    log.subscribe(on_app)

    def settled() -> bool:
        apps = mgmt.list(ARGO_API, "Application")
        for a in apps:
            name = a["metadata"]["name"]
            st = a.get("status") or {}
            auto = ((a.get("spec") or {}).get("syncPolicy") or {}).get("automated")
            if auto is None and name not in manual and (st.get("sync") or {}).get("status") == "OutOfSync" \
                    and not st.get("operationState"):
                manual.add(name)
                try:
                    argo.sync(name)
                except LabkitError as err:
                    notes.append(f"manual sync of {name} refused: {err}")
                return False
        if not apps:
            return env.now >= opts.appset_wait  # an ApplicationSet that generates nothing
        return all(_app_state(a) == "done" for a in apps)

    ok, end = _run_until_settled(lambda t: env.run(until=t), lambda: env.now, settled,
                                 lambda: (tracker.refresh(), tracker.pending())[1], opts)
    if manual:
        notes.append(f"{len(manual)} Application(s) without syncPolicy.automated were synced once by hand "
                     f"(as clicking Sync would): {', '.join(sorted(manual))}")
    result = TargetResult(target.name, "argo", [r.ref for r in target.roots],
                          assumed_crds=sorted({c["metadata"]["name"] for c in crds}), settled_at=round(end, 3),
                          settled=ok, notes=notes)
    if not ok:
        result.notes.append(f"the run had not settled after {end:.0f} virtual seconds; results are as of then")
    known = {u.ref for u in target.units}
    for a in mgmt.list(ARGO_API, "Application"):
        ref = f"Application/{a['metadata'].get('namespace', '')}/{a['metadata']['name']}"
        if ref not in known:  # generated by an ApplicationSet: render it the same way, to list its objects
            gen = disc.unit_for({k: a[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in a})
            if gen is not None:
                target.units.append(gen)
                known.add(ref)
                owners = {o.get("name") for o in a["metadata"].get("ownerReferences") or []
                          if o.get("kind") == "ApplicationSet"}
                for parent in target.units:
                    if parent.kind == "ApplicationSet" and parent.name in owners:
                        parent.children.append(gen)
    units = _argo_units(target, mgmt, healthy_at)
    objects = _objects(target, clusters, tracker.objects, units, default_cluster=mgmt, dest_of=_dest_name)
    result.wall_seconds = round(time.monotonic() - wall0, 3)
    return TargetRun(result, units, objects, mgmt, log, clusters)


def _argo_units(target: Target, mgmt: Any, healthy_at: dict[str, float]) -> list[UnitResult]:
    by_ref = {u.ref: u for u in target.units if u.dialect == "argo"}
    out: list[UnitResult] = []
    seen: set[str] = set()
    for a in mgmt.list(ARGO_API, "Application"):
        md = a["metadata"]
        ref = f"Application/{md.get('namespace', '')}/{md['name']}"
        seen.add(ref)
        u = by_ref.get(ref)
        st = a.get("status") or {}
        op = st.get("operationState") or {}
        sync = (st.get("sync") or {}).get("status", "Unknown")
        health = (st.get("health") or {}).get("status", "")
        conds = st.get("conditions") or []
        message = op.get("message") or (conds[0].get("message") if conds else "") or ""
        reason = op.get("phase") or (conds[0].get("type") if conds else "")
        ready_at = round(healthy_at[ref], 3) if ref in healthy_at else None
        src = (a.get("spec") or {}).get("source") or {}
        out.append(UnitResult(target.name, "argo", "Application", md.get("namespace", ""), md["name"],
                              str(src.get("path") or "."), sync, health, str(reason), str(message), ready_at, [],
                              u.file if u else None, u.line if u else None, bool(u and u.synthesized),
                              len(u.objects) if u else 0))
    for s in mgmt.list(ARGO_API, "ApplicationSet"):
        md = s["metadata"]
        ref = f"ApplicationSet/{md.get('namespace', '')}/{md['name']}"
        seen.add(ref)
        u = by_ref.get(ref)
        conds = (s.get("status") or {}).get("conditions") or []
        err = next((c for c in conds if c.get("type") == "ErrorOccurred" and c.get("status") == "True"), None)
        generated = [a for a in mgmt.list(ARGO_API, "Application", md.get("namespace"))
                     if any(o.get("kind") == "ApplicationSet" and o.get("name") == md["name"]
                            for o in a["metadata"].get("ownerReferences") or [])]
        status = "Failed" if err else "Ready"
        message = err.get("message", "") if err else f"generated {len(generated)} Application(s)"
        out.append(UnitResult(target.name, "argo", "ApplicationSet", md.get("namespace", ""), md["name"], ".",
                              status, "", str((err or {}).get("reason") or ""), message, None, [],
                              u.file if u else None, u.line if u else None, False, len(generated)))
    for ref, u in by_ref.items():
        if ref in seen or u.kind != "Application":
            continue
        out.append(UnitResult(target.name, "argo", u.kind, u.namespace, u.name, u.path, "NotApplied", "", "",
                              "never created in the cluster", None, [], u.file, u.line, u.synthesized,
                              len(u.objects)))
    return sorted(out, key=lambda r: (r.ready_at is None, r.ready_at or 0, r.name))


def reconcile_target(target: Target, source: RepoSource, disc: Discovery, opts: RunOptions) -> TargetRun:
    """Run one target to a settled state in a fresh simulated cluster (see the module docstring)."""
    if target.dialect == "argo":
        return reconcile_argo(target, source, disc, opts)
    return reconcile_flux(target, source, disc, opts)
