"""kustomize-controller's Kustomization reconciler.

The outer lifecycle follows kustomize-controller's ``Reconcile``: suspended
objects are left alone; dependencies (``dependsOn``) must be Ready first
(otherwise ``DependencyNotReady``, re-checked every 30 s); the source must have an
artifact (otherwise ``ArtifactFailed``); then the named stages run, each
returning its result and owning one failure reason:

``fetch``  take the source's latest artifact (revision ``main@sha1:…``);
``build``  render ``spec.path`` with real kustomize (confined to the artifact),
           set ``targetNamespace``, add the owner labels, run ``postBuild``
           substitution, refuse SOPS-encrypted Secrets without ``decryption``
           → ``BuildFailed`` (a ``spec.path`` missing from the revision →
           ``ArtifactFailed``, as Flux checks the path before building);
``plan``   dry-run every object and compare with the live state
           (``labkit.engine.plan``) — a failed dry-run applies nothing;
``apply``  staged server-side apply of what changed (``labkit.engine.apply``)
           → ``ReconciliationFailed``;
``prune``  delete stale inventory entries with the safeguards
           (``labkit.engine.prune``) → ``PruneFailed``;
``health`` wait for every applied object (``wait: true``) or the listed
           ``healthChecks`` with kstatus, up to ``timeout`` → ``HealthCheckFailed``.

The status is written at the end: ``Ready`` with ``ReconciliationSucceeded``
and "Applied revision: …", ``lastAppliedRevision`` (only on success),
``lastAttemptedRevision``, ``inventory``, ``observedGeneration`` and
``history`` (the last five distinct builds, with counts and durations).  A
success requeues after ``interval``; a failure after ``retryInterval``.  Drift
is not watched: it is found and taken back by the next run's plan, as in Flux.

Every stage is recorded in the event log (``Fetched``, ``Built``, ``Planned``,
``Applied``, ``Pruned``, ``HealthChecked`` with start and duration), which is
what the tour's timeline draws.

Failures part-way never lose track of what was applied.  When an apply fails
after some objects were written, those objects join the inventory recorded
with the failure (Flux keeps the old inventory there, which orphans an object
created by the failed attempt if it leaves git before the next success).  When
the status write itself fails (an API outage), the inventory that could not be
recorded is kept in memory and merged into the next reconcile's old inventory,
so the next prune still sees it.  A transient API error inside a stage is a
stage failure (``Ready=False``, requeue after ``retryInterval``, or after the
server's ``Retry-After`` if longer); one outside the stages (reading the
object, writing status) goes back to the dispatch loop, which backs off
exponentially (``labkit.flux.system``) and calls ``report_error``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

from labkit.duration import format_duration
from labkit.engine.apply import ApplyFailed, ApplyOptions, apply_staged
from labkit.engine.changeset import Action
from labkit.engine.inventory import Inventory, InventoryEntry
from labkit.engine.plan import DryRunFailed, check_shape
from labkit.engine.prune import prune
from labkit.engine.wait import wait_for_set
from labkit.errors import ApiError, LabkitError
from labkit.flux import conditions as C
from labkit.flux.api import KustomizationSpec
from labkit.flux.policy import (FIELD_MANAGER, FINALIZE_PRUNE_EXCLUSIONS, FLUX_POLICY, NAME_LABEL,  # noqa: F401
                                NAMESPACE_LABEL, RECONCILE_ANNOTATION, owner_labels)
from labkit.gitops.render import PathConfinementError, PathNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from labkit.flux.system import FluxSystem

API_VERSION = "kustomize.toolkit.fluxcd.io/v1"
KIND = "Kustomization"
COMPONENT = "kustomize-controller"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FINALIZER = "finalizers.fluxcd.io"
DEPENDENCY_REQUEUE = 30.0
TERMINATION_POLL = 2.0  # WaitForTermination: ssa.WaitOptions{Interval: 2 * time.Second}
HISTORY_LIMIT = 5


def own_objects(objects: list[dict], name: str, namespace: str, cluster: Any) -> None:
    """Add the owner labels and default the namespace of namespaced objects (in place)."""
    for o in objects:
        md = o.setdefault("metadata", {})
        labels = md.setdefault("labels", {})
        labels[NAME_LABEL] = name
        labels[NAMESPACE_LABEL] = namespace
        if not md.get("namespace"):
            try:
                namespaced = cluster.is_namespaced(o.get("apiVersion", ""), o.get("kind", ""))
            except ApiError:
                namespaced = True  # unknown kind: the dry-run will name it
            if namespaced:
                md["namespace"] = "default"  # as the API server defaults it; keeps inventory ids exact


class StageFailed(Exception):
    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(message)


class KustomizationReconciler:
    """One Kustomization's reconcile loop (a SimPy process driven by ``FluxSystem``)."""

    def __init__(self, system: "FluxSystem", namespace: str, name: str):
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

    def reconcile(self, obj: dict[str, Any]) -> Generator[Any, Any, float | None]:
        sys_ = self.system
        env = sys_.env
        md = obj.get("metadata") or {}
        if md.get("deletionTimestamp"):
            yield from self._finalize(obj)
            return None
        if FINALIZER not in (md.get("finalizers") or ()):
            # added before anything else, as Flux does, so a deletion can never race the first apply
            self._set_finalizer(obj, present=True)
            return 0.0
        try:
            spec = KustomizationSpec.from_obj(obj)
        except LabkitError as err:
            self._write(obj, spec=None, ready=False, reason="InvalidSpec", message=str(err), revision="")
            return None
        if spec.suspend:
            sys_.log.record(COMPONENT, "Suspended", self.key, detail={"message": "Reconciliation is suspended for this object"})
            return None
        started = env.now
        # dependencies
        for dep in spec.depends_on:
            dobj = sys_.cluster.get(API_VERSION, KIND, dep.name, dep.namespace)
            ok = dobj is not None and C.is_ready(dobj) and \
                (dobj.get("status") or {}).get("observedGeneration") == dobj["metadata"].get("generation")
            if not ok:
                msg = f"dependency '{dep.namespace}/{dep.name}' is not ready"
                sys_.log.record(COMPONENT, C.DEPENDENCY_NOT_READY, self.key, detail={"message": msg})
                self._write(obj, spec, False, C.DEPENDENCY_NOT_READY, msg, revision=None)
                return DEPENDENCY_REQUEUE
        # fetch
        src = spec.source_ref
        artifact = sys_.artifact_for(src.kind, src.namespace or self.namespace, src.name)
        if artifact is None:
            msg = f"Source artifact not found, retrying in {format_duration(DEPENDENCY_REQUEUE)}"
            if sys_.cluster.get("source.toolkit.fluxcd.io/v1", src.kind, src.name, src.namespace or self.namespace) is None:
                msg = f"Source '{src.kind}/{src.namespace or self.namespace}/{src.name}' not found"
            sys_.log.record(COMPONENT, C.ARTIFACT_FAILED, self.key, detail={"message": msg})
            self._write(obj, spec, False, C.ARTIFACT_FAILED, msg, revision=None)
            return DEPENDENCY_REQUEUE
        revision, sha, root = artifact
        sys_.log.record(COMPONENT, "Fetched", self.key, revision=revision, detail={"stage": "fetch", "started": env.now, "duration": 0.0})
        new_revision = (obj.get("status") or {}).get("lastAttemptedRevision") != revision
        if new_revision or self._generation_changed(obj):
            self._progressing(obj, revision)
        try:
            objects = yield from self._build(obj, spec, root, sha, revision)
            result = yield from self._apply(obj, spec, objects, revision)
        except StageFailed as failed:
            if failed.reason != C.FAILED:  # else the event below is the same record twice
                sys_.log.record(COMPONENT, failed.reason, self.key, revision=revision, detail={"message": failed.message})
            sys_.log.record(COMPONENT, "ReconciliationFailed", self.key, revision=revision,
                            detail={"reason": failed.reason, "message": failed.message, "duration": env.now - started})
            inventory = getattr(failed, "inventory", None)
            if inventory is not None:
                self.unrecorded = inventory
            self._write(obj, spec, False, failed.reason, failed.message, revision=revision,
                        inventory=inventory, started=started)
            if inventory is not None:
                self.unrecorded = None
            self.last_result = {"ok": False, "reason": failed.reason, "message": failed.message, "revision": revision}
            return max(spec.retry_interval, getattr(failed, "retry_after", None) or 0.0)
        duration = env.now - started
        msg = f"Applied revision: {revision}"
        sys_.log.record(COMPONENT, C.SUCCEEDED, self.key, revision=revision,
                        detail={"message": f"Reconciliation finished in {format_duration(duration)}, next run in {format_duration(spec.interval)}",
                                "duration": duration, **result["counts"]})
        self.unrecorded = result["inventory"]
        self._write(obj, spec, True, C.SUCCEEDED, msg, revision=revision, inventory=result["inventory"],
                    applied=True, started=started, digest=result["digest"])
        self.unrecorded = None
        self.last_result = {"ok": True, "revision": revision, **result}
        return spec.interval

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
        """Report an API error the dispatch loop caught: ``Ready=False`` (``ReconciliationFailed``).

        ``lastAppliedRevision`` is left alone; an inventory still waiting to be
        recorded is written with it.  Raises ``ApiError`` if the status cannot be
        written either (the loop ignores that and tries again after the back-off).
        """
        message = f"reconciliation failed ({err.reason}): {err.message}; retrying in {format_duration(retry_in)}"
        self._write(obj, None, False, C.FAILED, message, revision=None, inventory=self.unrecorded)
        self.unrecorded = None

    def _generation_changed(self, obj: dict[str, Any]) -> bool:
        return (obj.get("status") or {}).get("observedGeneration") != obj["metadata"].get("generation")

    # ------------------------------------------------------------------ stages

    def _build(self, obj: dict, spec: KustomizationSpec, root: Path, sha: str, revision: str) -> Generator[Any, Any, list[dict]]:
        sys_ = self.system
        env = sys_.env
        t0 = env.now
        yield env.timeout(sys_.timings.draw(self.rng, "build"))
        try:
            objects = sys_.build(root, obj.get("spec") or {}, sha, self.namespace, spec.post_build)
            for o in objects:
                check_shape(o)  # kustomize passes `labels: [a]` or `name: 123` through: refuse, never crash
            own_objects(objects, self.name, self.namespace, sys_.cluster)
            self._check_sops(objects, spec)
        except PathNotFoundError as err:  # Flux: the path is checked before building, reason ArtifactFailed
            raise StageFailed(C.ARTIFACT_FAILED, f"spec.path: {err.flux_message}") from None
        except PathConfinementError as err:
            where = "spec.path: " if err.path == ((obj.get("spec") or {}).get("path") or "./") else ""
            raise StageFailed(C.BUILD_FAILED, where + (err.detail if where else str(err))) from None
        except LabkitError as err:
            raise StageFailed(C.BUILD_FAILED, str(err)) from None
        sys_.log.record(COMPONENT, "Built", self.key, revision=revision,
                        detail={"stage": "build", "started": t0, "duration": env.now - t0, "objects": len(objects)})
        return objects

    def _check_sops(self, objects: list[dict], spec: KustomizationSpec) -> None:
        """SOPS: decrypt encrypted Secrets in place, or refuse them without ``decryption`` (``labkit.secrets.sops``)."""
        from labkit.secrets.sops import FluxDecryptionError, flux_decrypt

        try:
            flux_decrypt(objects, spec.decryption, self.system.cluster, self.namespace)
        except FluxDecryptionError as err:
            raise StageFailed(err.reason, err.message) from None

    def _apply(self, obj: dict, spec: KustomizationSpec, objects: list[dict], revision: str) -> Generator[Any, Any, dict]:
        sys_ = self.system
        env = sys_.env
        old_inv = Inventory.from_status((obj.get("status") or {}).get("inventory"))
        for entry in self.unrecorded or ():
            old_inv.add(entry)
        options = ApplyOptions(field_manager=FIELD_MANAGER, force=spec.force, ignore=list(spec.ignore),
                               policy=FLUX_POLICY)
        t0 = env.now
        try:
            res = yield from apply_staged(env, sys_.cluster, objects, options, sys_.engine_timings)
        except DryRunFailed as err:
            sys_.log.record(COMPONENT, "Planned", self.key, revision=revision,
                            detail={"stage": "plan", "started": t0, "duration": env.now - t0, "failed": len(err.failures)})
            failed = StageFailed(C.FAILED, str(err))
            failed.inventory = old_inv  # type: ignore[attr-defined]
            failed.retry_after = max((e.retry_after or 0.0 for _, e in err.failures), default=0.0)  # type: ignore[attr-defined]
            raise failed from None
        except ApplyFailed as err:
            failed = StageFailed(C.FAILED, str(err))
            # what was written before the failure belongs to the inventory: forgetting it would orphan it
            partial = Inventory(list(old_inv))
            for entry in err.changeset:
                if entry.action not in (Action.UNKNOWN, Action.SKIPPED):
                    partial.add(InventoryEntry(entry.object_id, entry.version))
            failed.inventory = partial  # type: ignore[attr-defined]
            failed.retry_after = getattr(err.__cause__, "retry_after", None)  # type: ignore[attr-defined]
            raise failed from None
        counts = res.changeset.counts()
        sys_.log.record(COMPONENT, "Planned", self.key, revision=revision,
                        detail={"stage": "plan", "started": t0, "duration": 2 * len(objects) * sys_.engine_timings.api_call,
                                "plan": res.plan.counts()})
        changed = res.changeset.changed()
        sys_.log.record(COMPONENT, "Applied", self.key, revision=revision,
                        detail={"stage": "apply", "started": t0, "duration": env.now - t0, "changeset": changed.to_string(),
                                **{f"n_{k}": v for k, v in counts.items()}})
        if len(changed):
            sys_.log.record(COMPONENT, C.PROGRESSING, self.key, revision=revision, detail={"message": changed.to_string()})
        new_inv = Inventory.from_objects(objects)
        # prune
        t1 = env.now
        pruned = 0
        if spec.prune:
            stale = old_inv.diff(new_inv)
            pres = yield from prune(env, sys_.cluster, stale,
                                    owner_labels=owner_labels(self.name, self.namespace),
                                    exclusions=FLUX_POLICY.prune_exclusions, timings=sys_.engine_timings)
            for entry in pres.kept:
                new_inv.add(entry)
            pruned = len(pres.changeset.by_action(Action.DELETED))
            sys_.log.record(COMPONENT, "Pruned", self.key, revision=revision,
                            detail={"stage": "prune", "started": t1, "duration": env.now - t1,
                                    "changeset": pres.changeset.to_string(), "deleted": pruned})
            if pres.failed:
                failed = StageFailed(C.PRUNE_FAILED, "\n".join(m for _, m in pres.failed))
                failed.inventory = new_inv  # type: ignore[attr-defined]
                raise failed
        # health
        t2 = env.now
        to_check: list[dict] = []
        if spec.wait:
            # kustomize-controller skips itself ("guard against deadlock: waiting on itself")
            to_check = [o for o in objects if not (o.get("kind") == KIND and o.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io/")
                                                   and (o.get("metadata") or {}).get("name") == self.name
                                                   and (o.get("metadata") or {}).get("namespace") == self.namespace)]
        elif spec.health_checks:
            for hc in spec.health_checks:
                to_check.append({"apiVersion": hc.api_version or "v1", "kind": hc.kind,
                                 "metadata": {"name": hc.name, "namespace": hc.namespace or self.namespace}})
        if to_check:
            wres = yield from wait_for_set(env, sys_.cluster, to_check, timeout=spec.timeout,
                                           interval=sys_.engine_timings.poll_interval)
            sys_.log.record(COMPONENT, "HealthChecked", self.key, revision=revision,
                            detail={"stage": "health", "started": t2, "duration": env.now - t2, "ok": wres.ok,
                                    "checked": len(to_check)})
            if not wres.ok:
                failed = StageFailed(C.HEALTH_CHECK_FAILED, wres.message)
                failed.inventory = new_inv  # type: ignore[attr-defined]
                raise failed
        digest = "sha256:" + hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()
        return {"inventory": new_inv, "counts": {f"n_{k}": v for k, v in counts.items()}, "changeset": res.changeset,
                "pruned": pruned, "digest": digest}

    # ------------------------------------------------------------------ status

    def _progressing(self, obj: dict, revision: str) -> None:
        status = _copy_status(obj)
        now = self.system.timestamp()
        C.set_condition(status, C.RECONCILING, True, C.PROGRESSING, f"Fetching manifests for revision {revision} with attempt 1", now,
                        obj["metadata"].get("generation"))
        status["lastAttemptedRevision"] = revision
        self.system.write_status(API_VERSION, KIND, self.name, self.namespace, status)

    def _write(self, obj: dict, spec: KustomizationSpec | None, ready: bool, reason: str, message: str, *,
               revision: str | None, inventory: Inventory | None = None, applied: bool = False,
               started: float | None = None, digest: str | None = None) -> None:
        sys_ = self.system
        live = sys_.cluster.get(API_VERSION, KIND, self.name, self.namespace) or obj
        status = _copy_status(live)
        now = sys_.timestamp()
        gen = live["metadata"].get("generation")
        C.set_condition(status, C.READY, ready, reason, message, now, gen)
        C.remove_condition(status, C.RECONCILING)
        if ready and spec is not None and (spec.wait or spec.health_checks):
            C.set_condition(status, C.HEALTHY, True, "Succeeded", "Health check passed", now, gen)
        elif not ready and reason == C.HEALTH_CHECK_FAILED:
            C.set_condition(status, C.HEALTHY, False, C.HEALTH_CHECK_FAILED, message, now, gen)
        status["observedGeneration"] = gen
        if revision:
            status["lastAttemptedRevision"] = revision
        if applied and revision:
            status["lastAppliedRevision"] = revision
        if inventory is not None:
            status["inventory"] = inventory.to_status()
        requested = ((live.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        if started is not None and revision:
            self._history(status, digest or "sha256:" + hashlib.sha256(revision.encode()).hexdigest(),
                          revision, started, "ReconciliationSucceeded" if ready else reason)
        sys_.write_status(API_VERSION, KIND, self.name, self.namespace, status)

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
