"""Staged server-side apply, like ``fluxcd/pkg/ssa``'s ``ApplyAllStaged``.

Objects are applied in kustomize-controller's stages (``labkit.engine.ordering``):
cluster definitions first — CustomResourceDefinitions, Namespaces, ClusterRoles —
then class definitions (StorageClass, IngressClass, ...), then everything else.
After the first stage the engine *waits* for those objects to be ready (a CRD
Established, a Namespace Active) so the later stages can be validated against
them.

Before anything is written the whole set is planned (``labkit.engine.plan``):
each object is dry-run, and a single failed dry-run aborts the apply with
nothing written.  Only ``created`` and ``configured`` objects are then applied;
``unchanged`` objects cost a dry-run but no write, so a reconcile with no change
in git writes nothing at all.

Immutable fields: when the dry-run fails because a field cannot change (a Job's
template, a selector, a StatefulSet's ``volumeClaimTemplates``) and ``force`` is
on — ``ApplyOptions.force`` for every object, or the caller's ``Policy.force``
selector for one (Flux: ``spec.force`` and the ``kustomize.toolkit.fluxcd.io/force:
Enabled`` annotation) — the object is deleted and created again (``recreated``), which is
what Flux does and why ``force`` on a StatefulSet is dangerous: its Pods go, and
only the PVCs survive.

The functions here are SimPy generators: they ``yield`` the modelled API
latency (``EngineTimings.api_call`` per request; zero against a real cluster,
where the requests take real time) and ``return`` their result, so callers run
them with ``result = yield from apply_staged(...)``.  A backend may also report
latency of its own (``seam_latency``: a fault-injecting wrapper's slow
responses); the engine yields it at the same points.

Failures part-way: once a stage has been written, any later failure (an API
error, a deferred dry-run that fails, a stage that never becomes ready) raises
``ApplyFailed`` carrying the change set *so far*, so the caller can record what
was already applied in its inventory instead of losing track of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generator, Iterable

import simpy

from labkit.core.cluster import Cluster, Obj
from labkit.engine.changeset import Action, ChangeSet, ChangeSetEntry
from labkit.engine.normalize import IgnoreRule
from labkit.engine.ordering import flux_stages, is_crd, is_namespace
from labkit.engine.plan import DryRunFailed, Plan, PlanEntry, plan
from labkit.engine.policy import Policy
from labkit.core.errors import ApiError


@dataclass
class EngineTimings:
    """How long engine work takes in virtual time (seconds)."""

    api_call: float = 0.005  # one API request (get, dry-run, apply, delete)
    poll_interval: float = 2.0  # kstatus poll interval while waiting for readiness

    @classmethod
    def realtime(cls) -> "EngineTimings":
        """Against a real cluster the requests take their own time: model none."""
        return cls(api_call=0.0, poll_interval=2.0)


@dataclass
class ApplyOptions:
    """How to apply: as which field manager, with which per-object ``Policy`` (default: none)."""

    field_manager: str
    force: bool = False
    ignore: list[IgnoreRule] = field(default_factory=list)
    stage_timeout: float = 60.0
    policy: Policy = field(default_factory=Policy)


@dataclass
class ApplyResult:
    changeset: ChangeSet
    plan: Plan
    recreated: list[str] = field(default_factory=list)
    requests: int = 0


def seam_latency(cluster: Cluster) -> float:
    """Latency the backend accumulated since last asked (``take_latency()``), 0 if it models none.

    ``labkit.faults.FaultyCluster`` counts its injected slow responses there; the
    engine yields the total on its clock so slow calls take time in the run.
    """
    take = getattr(cluster, "take_latency", None)
    return float(take()) if callable(take) else 0.0


class ApplyFailed(Exception):
    def __init__(self, message: str, changeset: ChangeSet):
        self.changeset = changeset
        super().__init__(message)


def is_immutable_error(err: ApiError) -> bool:
    """Whether an API error is a refusal to change an immutable field (Flux ``IsImmutableError``)."""
    msg = err.message
    return err.reason in ("Invalid", "Forbidden") and (
        "field is immutable" in msg or "Forbidden: updates to" in msg or "may not change once set" in msg
        or "spec is immutable" in msg
    )


def _force_enabled(obj: Obj, options: ApplyOptions) -> bool:
    return options.force or options.policy.forced(obj)


def _plan_with_force(cluster: Cluster, objects: list[Obj], options: ApplyOptions, new_ns: set[str]) -> tuple[Plan, list[Obj]]:
    """Plan; objects whose dry-run fails only for immutable fields under force are marked for recreation."""
    try:
        return plan(cluster, objects, field_manager=options.field_manager, ignore=options.ignore,
                    new_namespaces=new_ns, policy=options.policy), []
    except DryRunFailed as failed:
        recreate = [o for o, e in failed.failures if is_immutable_error(e) and _force_enabled(o, options)]
        if len(recreate) < len(failed.failures):
            rest = [(o, e) for o, e in failed.failures if not (is_immutable_error(e) and _force_enabled(o, options))]
            raise DryRunFailed(rest) from None
        ids = {id(o) for o in recreate}
        p = plan(cluster, [o for o in objects if id(o) not in ids], field_manager=options.field_manager,
                 ignore=options.ignore, new_namespaces=new_ns, policy=options.policy)
        p.entries.extend(PlanEntry(o, Action.CREATED, reason="recreate") for o in recreate)
        return p, recreate


def apply_staged(
    env: simpy.Environment,
    cluster: Cluster,
    objects: Iterable[Obj],
    options: ApplyOptions,
    timings: EngineTimings | None = None,
) -> Generator[simpy.Event, Any, ApplyResult]:
    """Plan everything, then apply stage by stage (see module docstring)."""
    timings = timings or EngineTimings()
    objects = list(objects)
    stages = flux_stages(objects)
    new_ns: set[str] = set()
    for o in stages[0]:
        if not is_namespace(o):
            continue
        try:
            if cluster.get("v1", "Namespace", o["metadata"]["name"]) is None:
                new_ns.add(o["metadata"]["name"])
        except ApiError as err:
            raise ApplyFailed(f"Namespace/{o['metadata']['name']} get failed ({err.reason}): {err.message}",
                              ChangeSet()) from err
    the_plan, recreate = _plan_with_force(cluster, objects, options, new_ns)
    requests = 2 * len(objects)
    yield env.timeout(requests * timings.api_call + seam_latency(cluster))
    # entries hold the (possibly ignore-filtered) desired copy; key them by the originals
    originals = {}
    for o, e in zip(objects, _align(objects, the_plan)):
        originals[id(o)] = e
    cs = ChangeSet()
    recreated: list[str] = []
    for i, stage in enumerate(stages):
        entries = [originals[id(o)] for o in stage if id(o) in originals]
        deferred = [e for e in entries if e.deferred]
        if deferred:
            try:
                late = plan(cluster, [e.desired for e in deferred], field_manager=options.field_manager,
                            policy=options.policy)
            except DryRunFailed as failed:  # earlier stages are written: report them with the failure
                raise ApplyFailed(str(failed), cs) from (failed.failures[0][1] if failed.failures else None)
            requests += 2 * len(deferred)
            for e, le in zip(deferred, late.entries):
                e.deferred, e.action, e.dry_run = False, le.action, le.dry_run
        for e in entries:
            if e.action in (Action.CREATED, Action.CONFIGURED):
                try:
                    if e.reason == "recreate":
                        md = e.desired["metadata"]
                        cluster.delete(e.desired["apiVersion"], e.desired["kind"], md["name"], md.get("namespace"))
                        requests += 1
                        recreated.append(e.subject)
                        yield from _wait_gone(env, cluster, e.desired, timings)
                    cluster.apply(e.desired, field_manager=options.field_manager, force=True)
                    requests += 1
                except ApiError as err:
                    cs.add(ChangeSetEntry.for_object(e.desired, Action.UNKNOWN))
                    raise ApplyFailed(f"{e.subject} apply failed ({err.reason}): {err.message}", cs) from err
            cs.add(ChangeSetEntry.for_object(e.desired, e.action))
        yield env.timeout(len(entries) * timings.api_call + seam_latency(cluster))
        if i == 0 and entries:
            try:
                yield from _wait_definitions(env, cluster, [e.desired for e in entries], options, timings)
            except ApplyFailed as failed:
                raise ApplyFailed(str(failed), cs) from None
    return ApplyResult(cs, the_plan, recreated, requests)


def _align(objects: list[Obj], the_plan: Plan) -> list[PlanEntry]:
    """Plan entries in the order of ``objects`` (the plan keeps input order; recreations are appended)."""
    normal = [e for e in the_plan.entries if e.reason != "recreate"]
    recreate = {(_k(e.desired)): e for e in the_plan.entries if e.reason == "recreate"}
    out, it = [], iter(normal)
    for o in objects:
        if _k(o) in recreate:
            out.append(recreate[_k(o)])
        else:
            out.append(next(it))
    return out


def _k(o: Obj) -> tuple:
    md = o.get("metadata") or {}
    return (o.get("apiVersion"), o.get("kind"), md.get("namespace"), md.get("name"))


def _wait_gone(env, cluster: Cluster, obj: Obj, timings: EngineTimings):
    md = obj["metadata"]
    for _ in range(60):
        try:
            if cluster.get(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace")) is None:
                return
        except ApiError:
            pass  # cannot tell (transient API error): poll again
        yield env.timeout(max(timings.poll_interval / 4, 0.1))


def _wait_definitions(env, cluster: Cluster, objs: list[Obj], options: ApplyOptions, timings: EngineTimings):
    """Wait until the first stage's CRDs are Established and Namespaces Active."""
    deadline = env.now + options.stage_timeout
    pending = [o for o in objs if is_crd(o) or is_namespace(o)]
    while pending:
        still = []
        for o in pending:
            try:
                live = cluster.get(o["apiVersion"], o["kind"], o["metadata"]["name"])
            except ApiError:
                still.append(o)  # status unknown for this poll (transient API error): keep waiting
                continue
            if live is None:
                still.append(o)
            elif is_crd(o):
                conds = {c.get("type"): c.get("status") for c in (live.get("status") or {}).get("conditions") or []}
                if conds.get("Established") != "True":
                    still.append(o)
            elif (live.get("status") or {}).get("phase", "Active") != "Active":
                still.append(o)
        if not still:
            return
        if env.now >= deadline:
            names = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in still)
            raise ApplyFailed(f"timeout waiting for cluster definitions: {names}", ChangeSet())
        pending = still
        yield env.timeout(timings.poll_interval + seam_latency(cluster))
