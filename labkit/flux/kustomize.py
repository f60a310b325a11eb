"""kustomize-controller's Kustomization reconciler: named stages, one failure path, one status patch.

The outer lifecycle follows kustomize-controller's ``Reconcile``: a deleted
object is finalised (below); the finaliser is added first; an invalid spec is
``InvalidSpec``; suspended objects are left alone; dependencies (``dependsOn``)
must be Ready first (otherwise ``DependencyNotReady``, re-checked every 30 s).
Then the named stages run in order, each owning one failure reason:

``fetch``  take the source's latest artifact (revision ``main@sha1:…``); none
           yet, or no such source → ``ArtifactFailed``, re-checked every 30 s;
``build``  render ``spec.path`` with real kustomize (confined to the artifact),
           run ``postBuild`` substitution and add the owner labels
           (``labkit.flux.build``), decrypt SOPS Secrets or refuse them
           without ``decryption`` → ``BuildFailed`` (a ``spec.path`` missing
           from the revision → ``ArtifactFailed``, as Flux checks the path
           before building);
``plan``   dry-run every object and compare with the live state
           (``labkit.engine.plan``) — a failed dry-run applies nothing
           → ``ReconciliationFailed``;
``apply``  staged server-side apply of what changed (``labkit.engine.apply``,
           which runs plan and apply as one call) → ``ReconciliationFailed``;
``prune``  delete stale inventory entries with the safeguards
           (``labkit.engine.prune``) → ``PruneFailed``;
``health`` wait for every applied object (``wait: true``) or the listed
           ``healthChecks`` with kstatus, up to ``timeout`` → ``HealthCheckFailed``.

A stage returns ``None`` when it went through, having put what it produced on
the run (``_Run``: the artifact, the objects, the inventories, the apply's
changeset), or a ``Failure`` — a result object, not an exception — carrying the
stage, the reason and message, the inventory the status must record, and the
server's ``Retry-After`` if it sent one.  Every way a reconcile can end —
success, a stage failure, an invalid spec, a dependency or an artifact not
ready — becomes one ``Attempt``, and the status is patched from it once, at the
end (``_patch_status``), as kustomize-controller's deferred ``finalizeStatus``
does: ``Ready`` with ``ReconciliationSucceeded`` and "Applied revision: …",
``lastAppliedRevision`` (only on success), ``lastAttemptedRevision``,
``inventory``, ``observedGeneration``, ``lastHandledReconcileAt`` and
``history`` (the last five distinct builds, with counts and durations).  The
only other patch is the one Flux also makes when a new revision or generation
starts: ``Reconciling=True`` ("Fetching manifests for revision …").  A success
requeues after ``interval``; a stage failure after ``retryInterval`` (or the
server's ``Retry-After`` if longer).  Drift is not watched: it is found and
taken back by the next run's plan, as in Flux.

Every stage is recorded in the event log (``Fetched``, ``Built``, ``Planned``,
``Applied``, ``Pruned``, ``HealthChecked`` with start and duration), which is
what the tour's timeline draws.

Failures part-way never lose track of what was applied.  When an apply fails
after some objects were written, those objects join the inventory recorded
with the failure (Flux keeps the old inventory there, which orphans an object
created by the failed attempt if it leaves git before the next success).  When
the status patch itself fails (an API outage), the inventory that could not be
recorded is kept in memory (``unrecorded``) and merged into the next
reconcile's old inventory, so the next prune still sees it.  A transient API
error inside a stage is a stage failure; one outside the stages (reading the
object, patching status) is a returned error: the reconcile driver
(``labkit.core.workqueue``) backs off exponentially and ``FluxSystem`` calls
``report_error``, which patches the status through the same ``_patch_status``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator

from labkit.core.workqueue import DONE, Outcome, RequeueAfter
from labkit.core.duration import format_duration
from labkit.engine.apply import ApplyFailed, ApplyOptions, ApplyResult, apply_staged
from labkit.engine.changeset import Action
from labkit.engine.inventory import Inventory, InventoryEntry
from labkit.engine.plan import DryRunFailed
from labkit.engine.prune import prune
from labkit.engine.wait import wait_for_set
from labkit.core.errors import ApiError, LabkitError
from labkit.flux import conditions as C
from labkit.flux.api import KustomizationSpec
from labkit.flux.build import build_objects
from labkit.flux.policy import FIELD_MANAGER, FINALIZE_PRUNE_EXCLUSIONS, FLUX_POLICY, owner_labels
from labkit.flux.services import FluxServices
from labkit.gitops.render import PathConfinementError, PathNotFoundError

__all__ = ["KustomizationReconciler", "Failure", "Attempt", "API_VERSION", "KIND", "FIELD_MANAGER"]

API_VERSION = "kustomize.toolkit.fluxcd.io/v1"
KIND = "Kustomization"
COMPONENT = "kustomize-controller"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FINALIZER = "finalizers.fluxcd.io"
DEPENDENCY_REQUEUE = 30.0
TERMINATION_POLL = 2.0  # WaitForTermination: ssa.WaitOptions{Interval: 2 * time.Second}
HISTORY_LIMIT = 5


@dataclass
class Failure:
    """How a stage failed: its reason and message, and what the status must still record."""

    stage: str
    reason: str
    message: str
    #: the inventory to record with the failure (None: the status keeps the one it has)
    inventory: Inventory | None = None
    #: the server's Retry-After, a floor for the requeue (0: none)
    retry_after: float = 0.0
    #: a precondition not met yet (dependencies, no artifact): come back after this, not ``retryInterval``
    requeue: float | None = None


@dataclass
class _Run:
    """One reconcile's working state, filled in stage by stage."""

    obj: dict
    spec: KustomizationSpec
    started: float
    revision: str = ""
    sha: str = ""
    root: Path | None = None
    objects: list[dict] = field(default_factory=list)
    old_inventory: Inventory | None = None
    inventory: Inventory | None = None
    applied: ApplyResult | None = None
    pruned: int = 0


@dataclass
class Attempt:
    """How a reconcile ended: what ``_patch_status`` writes, once, and when to come back."""

    ready: bool
    reason: str
    message: str
    #: the revision attempted (None or "": keep ``lastAttemptedRevision``); no history without it
    revision: str | None = None
    spec: KustomizationSpec | None = None
    inventory: Inventory | None = None
    applied: bool = False
    started: float | None = None
    digest: str | None = None
    outcome: Outcome = None
    #: what ``last_result`` becomes once the status is written (None: left as it was)
    result: dict[str, Any] | None = None


class KustomizationReconciler:
    """One Kustomization's reconcile (driven by ``FluxSystem`` on the reconcile driver)."""

    def __init__(self, system: FluxServices, namespace: str, name: str):
        self.system = system
        self.namespace = namespace
        self.name = name
        self.key = f"{KIND}/{namespace}/{name}"
        self.rng = system.rng(f"ks:{namespace}/{name}")
        self.last_result: dict[str, Any] = {}
        #: an inventory that was computed but could not be written to status (API error): merged into
        #: the next reconcile's old inventory so nothing it lists escapes pruning
        self.unrecorded: Inventory | None = None

    # ------------------------------------------------------------------ lifecycle

    def reconcile(self, obj: dict[str, Any]) -> Generator[Any, Any, Outcome]:
        md = obj.get("metadata") or {}
        if md.get("deletionTimestamp"):
            yield from self._finalize(obj)
            return DONE
        if FINALIZER not in (md.get("finalizers") or ()):
            # added before anything else, as Flux does, so a deletion can never race the first apply
            self._set_finalizer(obj, present=True)
            return RequeueAfter(0.0)
        attempt = yield from self._attempt(obj)
        if attempt is None:
            return DONE
        self._patch_status(obj, attempt)
        if attempt.result is not None:
            self.last_result = attempt.result
        return attempt.outcome

    def _attempt(self, obj: dict[str, Any]) -> Generator[Any, Any, Attempt | None]:
        """Everything up to the status patch; None when suspended (nothing to write)."""
        sys_ = self.system
        try:
            spec = KustomizationSpec.from_obj(obj)
        except LabkitError as err:
            return Attempt(False, "InvalidSpec", str(err), revision="", outcome=DONE)
        if spec.suspend:
            sys_.log.record(COMPONENT, "Suspended", self.key, detail={"message": "Reconciliation is suspended for this object"})
            return None
        run = _Run(obj, spec, sys_.env.now)
        for dep in spec.depends_on:
            dobj = sys_.cluster.get(API_VERSION, KIND, dep.name, dep.namespace)
            ok = dobj is not None and C.is_ready(dobj) and \
                (dobj.get("status") or {}).get("observedGeneration") == dobj["metadata"].get("generation")
            if not ok:
                msg = f"dependency '{dep.namespace}/{dep.name}' is not ready"
                return self._failed(run, Failure("dependencies", C.DEPENDENCY_NOT_READY, msg, requeue=DEPENDENCY_REQUEUE))
        failure = self._fetch(run)
        if failure is not None:
            return self._failed(run, failure)
        for stage in (self._build, self._apply, self._prune, self._health):
            failure = yield from stage(run)
            if failure is not None:
                return self._failed(run, failure)
        return self._succeeded(run)

    def _failed(self, run: _Run, failure: Failure) -> Attempt:
        """The one failure path: log it, record it, come back after ``retryInterval``.

        A failure with its own ``requeue`` (a dependency not ready, no artifact yet)
        is a precondition, not a failed attempt: it is logged under its reason and
        recorded without a revision, as Flux does before the reconcile proper.
        """
        log = self.system.log
        if failure.requeue is not None:
            log.record(COMPONENT, failure.reason, self.key, detail={"message": failure.message})
            return Attempt(False, failure.reason, failure.message, spec=run.spec, outcome=RequeueAfter(failure.requeue))
        duration = self.system.env.now - run.started
        if failure.reason != C.FAILED:  # else the event below is the same record twice
            log.record(COMPONENT, failure.reason, self.key, revision=run.revision, detail={"message": failure.message})
        log.record(COMPONENT, "ReconciliationFailed", self.key, revision=run.revision,
                   detail={"reason": failure.reason, "message": failure.message, "duration": duration})
        return Attempt(False, failure.reason, failure.message, revision=run.revision, spec=run.spec,
                       inventory=failure.inventory, started=run.started,
                       outcome=RequeueAfter(max(run.spec.retry_interval, failure.retry_after)),
                       result={"ok": False, "reason": failure.reason, "message": failure.message,
                               "revision": run.revision})

    def _succeeded(self, run: _Run) -> Attempt:
        sys_ = self.system
        spec, revision = run.spec, run.revision
        assert run.applied is not None and run.inventory is not None
        duration = sys_.env.now - run.started
        counts = {f"n_{k}": v for k, v in run.applied.changeset.counts().items()}
        sys_.log.record(COMPONENT, C.SUCCEEDED, self.key, revision=revision,
                        detail={"message": f"Reconciliation finished in {format_duration(duration)}, next run in {format_duration(spec.interval)}",
                                "duration": duration, **counts})
        digest = "sha256:" + hashlib.sha256(json.dumps(run.objects, sort_keys=True).encode()).hexdigest()
        result = {"inventory": run.inventory, "counts": counts, "changeset": run.applied.changeset,
                  "pruned": run.pruned, "digest": digest}
        return Attempt(True, C.SUCCEEDED, f"Applied revision: {revision}", revision=revision, spec=spec,
                       inventory=run.inventory, applied=True, started=run.started, digest=digest,
                       outcome=RequeueAfter(spec.interval), result={"ok": True, "revision": revision, **result})

    # ------------------------------------------------------------------ deletion

    def _set_finalizer(self, obj: dict[str, Any], *, present: bool) -> None:
        """Add or remove ``finalizers.fluxcd.io`` with an Update of the live object (a 409 is a returned error)."""
        md = obj["metadata"]
        live = self.system.cluster.get(API_VERSION, KIND, md["name"], md.get("namespace"))
        if live is None:
            return
        lmd = live["metadata"]
        finalizers = [f for f in lmd.get("finalizers") or [] if f != FINALIZER]
        if present:
            finalizers.append(FINALIZER)
        if finalizers == list(lmd.get("finalizers") or []):
            return
        lmd["finalizers"] = finalizers
        lmd.pop("managedFields", None)
        self.system.cluster.update(live, field_manager=FIELD_MANAGER)

    def _finalize(self, obj: dict[str, Any]) -> Generator[Any, Any, None]:
        """kustomize-controller's ``finalize``: garbage-collect the inventory per ``deletionPolicy``, then let go.

        The inventory is deleted (Background propagation) when the policy says so —
        ``MirrorPrune`` (the default) follows ``spec.prune``, ``Delete`` and
        ``WaitForTermination`` always, ``Orphan`` never — unless the Kustomization is
        suspended or has no inventory.  Objects without this Kustomization's owner
        labels, or marked ``kustomize.toolkit.fluxcd.io/prune: disabled`` or
        ``kustomize.toolkit.fluxcd.io/reconcile: disabled``, are skipped.  A failed
        deletion is a returned error (the object is retried with back-off and keeps
        its finalizer); with ``WaitForTermination`` the controller polls every 2 s
        until the deleted objects are gone or ``timeout`` passes (then it logs
        ``failed to wait for resources termination`` and lets go anyway).
        """
        sys_ = self.system
        env = sys_.env
        md = obj["metadata"]
        if FINALIZER not in (md.get("finalizers") or ()):
            return
        raw = obj.get("spec") or {}
        try:
            spec: KustomizationSpec | None = KustomizationSpec.from_obj(obj)
        except LabkitError:
            spec = None  # an invalid spec still gets deleted: read what can be read
        policy = spec.deletion_policy if spec else str(raw.get("deletionPolicy") or "MirrorPrune")
        prune_on = spec.prune if spec else raw.get("prune") is True
        suspended = spec.suspend if spec else raw.get("suspend") is True
        status = obj.get("status") or {}
        inventory = Inventory.from_status(status.get("inventory"))
        revision = status.get("lastAppliedRevision", "")
        delete = {"MirrorPrune": prune_on, "Delete": True, "WaitForTermination": True}.get(policy, False)
        if delete and not suspended and len(inventory):
            t0 = env.now
            pres = yield from prune(env, sys_.cluster, list(inventory),
                                    owner_labels=owner_labels(self.name, self.namespace),
                                    exclusions=FINALIZE_PRUNE_EXCLUSIONS, timings=sys_.engine_timings)
            if pres.failed:
                sys_.log.record(COMPONENT, "GarbageCollectionFailed", self.key, revision=revision,
                                detail={"message": "pruning for deleted resource failed",
                                        "errors": [m for _, m in pres.failed]})
                err = ApiError("InternalError", "pruning for deleted resource failed: "
                               + "; ".join(m for _, m in pres.failed))
                raise err
            deleted = pres.changeset.by_action(Action.DELETED)
            if len(pres.changeset):
                sys_.log.record(COMPONENT, "GarbageCollected", self.key, revision=revision,
                                detail={"changeset": pres.changeset.to_string(), "deleted": len(deleted),
                                        "started": t0, "duration": env.now - t0})
            if policy == "WaitForTermination" and len(deleted):
                gone_ids = {e.object_id for e in deleted}
                waiting = [e for e in inventory if e.id in gone_ids]
                deadline = env.now + (spec.timeout if spec else 0.0)
                while True:
                    left = [e for e in waiting if sys_.cluster.get(e.api_version, e.object_id.kind, e.object_id.name,
                                                                   e.object_id.namespace or None) is not None]
                    if not left:
                        break
                    if env.now >= deadline:
                        sys_.log.record(COMPONENT, "TerminationTimeout", self.key, revision=revision,
                                        detail={"message": "failed to wait for resources termination",
                                                "remaining": [e.object_id.subject for e in left]})
                        break
                    yield env.timeout(min(TERMINATION_POLL, max(deadline - env.now, 0.0)))
        self._set_finalizer(obj, present=False)
        sys_.log.record(COMPONENT, "Finalized", self.key, revision=revision,
                        detail={"deletionPolicy": policy, "garbageCollected": bool(delete and not suspended and len(inventory))})

    def report_error(self, obj: dict[str, Any], err: ApiError, retry_in: float) -> None:
        """Report an API error the driver caught: ``Ready=False`` (``ReconciliationFailed``).

        ``lastAppliedRevision`` is left alone; an inventory still waiting to be
        recorded is written with it.  Raises ``ApiError`` if the status cannot be
        written either (the driver's hook ignores that; the back-off retries).
        """
        message = f"reconciliation failed ({err.reason}): {err.message}; retrying in {format_duration(retry_in)}"
        self._patch_status(obj, Attempt(False, C.FAILED, message, inventory=self.unrecorded))

    def _generation_changed(self, obj: dict[str, Any]) -> bool:
        return (obj.get("status") or {}).get("observedGeneration") != obj["metadata"].get("generation")

    # ------------------------------------------------------------------ stages

    def _fetch(self, run: _Run) -> Failure | None:
        """The source's current artifact; a new revision or generation is marked ``Reconciling``."""
        sys_ = self.system
        src = run.spec.source_ref
        src_ns = src.namespace or self.namespace
        artifact = sys_.artifact_for(src.kind, src_ns, src.name)
        if artifact is None:
            msg = f"Source artifact not found, retrying in {format_duration(DEPENDENCY_REQUEUE)}"
            if sys_.cluster.get("source.toolkit.fluxcd.io/v1", src.kind, src.name, src_ns) is None:
                msg = f"Source '{src.kind}/{src_ns}/{src.name}' not found"
            return Failure("fetch", C.ARTIFACT_FAILED, msg, requeue=DEPENDENCY_REQUEUE)
        run.revision, run.sha, run.root = artifact
        sys_.log.record(COMPONENT, "Fetched", self.key, revision=run.revision,
                        detail={"stage": "fetch", "started": sys_.env.now, "duration": 0.0})
        new_revision = (run.obj.get("status") or {}).get("lastAttemptedRevision") != run.revision
        if new_revision or self._generation_changed(run.obj):
            self._progressing(run.obj, run.revision)
        return None

    def _build(self, run: _Run) -> Generator[Any, Any, Failure | None]:
        sys_ = self.system
        env = sys_.env
        raw = run.obj.get("spec") or {}
        t0 = env.now
        yield env.timeout(sys_.timings.draw(self.rng, "build"))
        assert run.root is not None
        try:
            run.objects = build_objects(sys_.renderer, sys_.cluster, run.root, raw, run.sha, self.name,
                                        self.namespace, run.spec.post_build)
            failure = self._decrypt(run.objects, run.spec)
        except PathNotFoundError as err:  # Flux: the path is checked before building, reason ArtifactFailed
            return Failure("build", C.ARTIFACT_FAILED, f"spec.path: {err.flux_message}")
        except PathConfinementError as err:
            where = "spec.path: " if err.path == (raw.get("path") or "./") else ""
            return Failure("build", C.BUILD_FAILED, where + (err.detail if where else str(err)))
        except LabkitError as err:
            return Failure("build", C.BUILD_FAILED, str(err))
        if failure is not None:
            return failure
        sys_.log.record(COMPONENT, "Built", self.key, revision=run.revision,
                        detail={"stage": "build", "started": t0, "duration": env.now - t0, "objects": len(run.objects)})
        return None

    def _decrypt(self, objects: list[dict], spec: KustomizationSpec) -> Failure | None:
        """SOPS: decrypt encrypted Secrets in place, or refuse them without ``decryption`` (``labkit.secrets.sops``)."""
        from labkit.secrets.sops import FluxDecryptionError, flux_decrypt

        try:
            flux_decrypt(objects, spec.decryption, self.system.cluster, self.namespace)
        except FluxDecryptionError as err:
            return Failure("build", err.reason, err.message)
        return None

    def _apply(self, run: _Run) -> Generator[Any, Any, Failure | None]:
        """The plan and apply stages: ``apply_staged`` dry-runs everything, then applies what changed."""
        sys_ = self.system
        env = sys_.env
        old_inv = Inventory.from_status((run.obj.get("status") or {}).get("inventory"))
        for entry in self.unrecorded or ():
            old_inv.add(entry)
        run.old_inventory = old_inv
        options = ApplyOptions(field_manager=FIELD_MANAGER, force=run.spec.force, ignore=list(run.spec.ignore),
                               policy=FLUX_POLICY)
        t0 = env.now
        try:
            res = yield from apply_staged(env, sys_.cluster, run.objects, options, sys_.engine_timings)
        except DryRunFailed as err:
            sys_.log.record(COMPONENT, "Planned", self.key, revision=run.revision,
                            detail={"stage": "plan", "started": t0, "duration": env.now - t0, "failed": len(err.failures)})
            return Failure("plan", C.FAILED, str(err), inventory=old_inv,
                           retry_after=max((e.retry_after or 0.0 for _, e in err.failures), default=0.0))
        except ApplyFailed as err:
            # what was written before the failure belongs to the inventory: forgetting it would orphan it
            partial = Inventory(list(old_inv))
            for entry in err.changeset:
                if entry.action not in (Action.UNKNOWN, Action.SKIPPED):
                    partial.add(InventoryEntry(entry.object_id, entry.version))
            return Failure("apply", C.FAILED, str(err), inventory=partial,
                           retry_after=getattr(err.__cause__, "retry_after", None) or 0.0)
        run.applied = res
        counts = res.changeset.counts()
        sys_.log.record(COMPONENT, "Planned", self.key, revision=run.revision,
                        detail={"stage": "plan", "started": t0, "duration": 2 * len(run.objects) * sys_.engine_timings.api_call,
                                "plan": res.plan.counts()})
        changed = res.changeset.changed()
        sys_.log.record(COMPONENT, "Applied", self.key, revision=run.revision,
                        detail={"stage": "apply", "started": t0, "duration": env.now - t0, "changeset": changed.to_string(),
                                **{f"n_{k}": v for k, v in counts.items()}})
        if len(changed):
            sys_.log.record(COMPONENT, C.PROGRESSING, self.key, revision=run.revision, detail={"message": changed.to_string()})
        run.inventory = Inventory.from_objects(run.objects)
        return None

    def _prune(self, run: _Run) -> Generator[Any, Any, Failure | None]:
        sys_ = self.system
        env = sys_.env
        if not run.spec.prune:
            return None
        assert run.old_inventory is not None and run.inventory is not None
        t1 = env.now
        stale = run.old_inventory.diff(run.inventory)
        pres = yield from prune(env, sys_.cluster, stale,
                                owner_labels=owner_labels(self.name, self.namespace),
                                exclusions=FLUX_POLICY.prune_exclusions,
                                timings=sys_.engine_timings)
        for entry in pres.kept:
            run.inventory.add(entry)
        run.pruned = len(pres.changeset.by_action(Action.DELETED))
        sys_.log.record(COMPONENT, "Pruned", self.key, revision=run.revision,
                        detail={"stage": "prune", "started": t1, "duration": env.now - t1,
                                "changeset": pres.changeset.to_string(), "deleted": run.pruned})
        if pres.failed:
            return Failure("prune", C.PRUNE_FAILED, "\n".join(m for _, m in pres.failed), inventory=run.inventory)
        return None

    def _health(self, run: _Run) -> Generator[Any, Any, Failure | None]:
        sys_ = self.system
        env = sys_.env
        spec = run.spec
        t2 = env.now
        to_check: list[dict] = []
        if spec.wait:
            # kustomize-controller skips itself ("guard against deadlock: waiting on itself")
            to_check = [o for o in run.objects if not (o.get("kind") == KIND and o.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io/")
                                                       and (o.get("metadata") or {}).get("name") == self.name
                                                       and (o.get("metadata") or {}).get("namespace") == self.namespace)]
        elif spec.health_checks:
            for hc in spec.health_checks:
                to_check.append({"apiVersion": hc.api_version or "v1", "kind": hc.kind,
                                 "metadata": {"name": hc.name, "namespace": hc.namespace or self.namespace}})
        if not to_check:
            return None
        wres = yield from wait_for_set(env, sys_.cluster, to_check, timeout=spec.timeout,
                                       interval=sys_.engine_timings.poll_interval)
        sys_.log.record(COMPONENT, "HealthChecked", self.key, revision=run.revision,
                        detail={"stage": "health", "started": t2, "duration": env.now - t2, "ok": wres.ok,
                                "checked": len(to_check)})
        if not wres.ok:
            return Failure("health", C.HEALTH_CHECK_FAILED, wres.message, inventory=run.inventory)
        return None

    # ------------------------------------------------------------------ status

    def _progressing(self, obj: dict, revision: str) -> None:
        status = _copy_status(obj)
        now = self.system.timestamp()
        C.set_condition(status, C.RECONCILING, True, C.PROGRESSING, f"Fetching manifests for revision {revision} with attempt 1", now,
                        obj["metadata"].get("generation"))
        status["lastAttemptedRevision"] = revision
        self.system.write_status(API_VERSION, KIND, self.name, self.namespace, status)

    def _patch_status(self, obj: dict, attempt: Attempt) -> None:
        """The one status patch of a reconcile (``finalizeStatus``), from how it ended.

        The inventory to record is held in ``unrecorded`` until the patch is
        through, so an API error here does not lose it (see the module docstring).
        """
        if attempt.inventory is not None:
            self.unrecorded = attempt.inventory
        self.system.write_status(API_VERSION, KIND, self.name, self.namespace, self._status_of(obj, attempt))
        if attempt.inventory is not None:
            self.unrecorded = None

    def _status_of(self, obj: dict, a: Attempt) -> dict:
        sys_ = self.system
        live = sys_.cluster.get(API_VERSION, KIND, self.name, self.namespace) or obj
        status = _copy_status(live)
        now = sys_.timestamp()
        gen = live["metadata"].get("generation")
        C.set_condition(status, C.READY, a.ready, a.reason, a.message, now, gen)
        C.remove_condition(status, C.RECONCILING)
        if a.ready and a.spec is not None and (a.spec.wait or a.spec.health_checks):
            C.set_condition(status, C.HEALTHY, True, "Succeeded", "Health check passed", now, gen)
        elif not a.ready and a.reason == C.HEALTH_CHECK_FAILED:
            C.set_condition(status, C.HEALTHY, False, C.HEALTH_CHECK_FAILED, a.message, now, gen)
        status["observedGeneration"] = gen
        if a.revision:
            status["lastAttemptedRevision"] = a.revision
        if a.applied and a.revision:
            status["lastAppliedRevision"] = a.revision
        if a.inventory is not None:
            status["inventory"] = a.inventory.to_status()
        requested = ((live.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        if a.started is not None and a.revision:
            self._history(status, a.digest or "sha256:" + hashlib.sha256(a.revision.encode()).hexdigest(),
                          a.revision, a.started, "ReconciliationSucceeded" if a.ready else a.reason)
        return status

    def _history(self, status: dict, digest: str, revision: str, started: float, outcome: str) -> None:
        sys_ = self.system
        history = [dict(h) for h in status.get("history") or []]
        now = sys_.timestamp()
        duration = format_duration(sys_.env.now - started)
        for h in history:
            if h.get("digest") == digest:
                h.update({"lastReconciled": now, "lastReconciledDuration": duration, "lastReconciledStatus": outcome,
                          "totalReconciliations": h.get("totalReconciliations", 0) + 1})
                break
        else:
            history.insert(0, {"digest": digest, "firstReconciled": now, "lastReconciled": now,
                               "lastReconciledDuration": duration, "lastReconciledStatus": outcome,
                               "totalReconciliations": 1, "metadata": {"revision": revision}})
        history.sort(key=lambda h: h["lastReconciled"], reverse=True)
        status["history"] = history[:HISTORY_LIMIT]


def _copy_status(obj: dict) -> dict:
    status = json.loads(json.dumps(obj.get("status") or {}))
    status.setdefault("conditions", [])
    return status
