"""The sync operation: phases, waves, hooks, pruning — gitops-engine's ``syncContext`` on a SimPy clock.

A sync operation is a list of *tasks* — one per (object, phase): resources to
apply in the ``Sync`` phase, hooks in their phases, objects to prune (a task
without a target), and the destination namespace when ``CreateNamespace=true``
— sorted by phase (PreSync, Sync, PostSync, SyncFail), wave
(``argocd.argoproj.io/sync-wave``), kind (Helm's install order) and name, with
namespaces and CRDs moved ahead of what depends on them
(``labkit.engine.ordering.argo_sort``).  Prune tasks get their waves mirrored
(the last wave prunes first: reverse order of creation), and with
``PruneLast=true`` all go after the last Sync wave.

The operation then advances in *steps*, each a faithful port of gitops-engine's
``Sync()``:

1. the first step dry-runs every task (a failure stops the operation before
   anything is written: ``one or more objects failed to apply (dry run)``).
   Argo's dry-run is client-side, so it cannot see immutable-field rejections
   or a missing namespace; those are let through here too and fail at apply
   time (``one or more objects failed to apply, reason: ...``), as in Argo;
2. every *running* task is re-assessed from its live object: a hook by its
   health (a Job Complete → Succeeded, Failed → Failed with the Job's message,
   e.g. ``Job has reached the specified backoff limit``; a kind with no health
   check → Succeeded "<name> created"), a resource by its health (Healthy →
   Succeeded, Degraded → Failed);
3. while any hook — or, when the operation has more than one phase/wave, any
   resource — is still running, the step ends: ``waiting for healthy state of
   apps/Deployment/web`` / ``waiting for completion of hook batch/Job/migrate``;
4. if any task completed unsuccessfully the operation fails with ``one or more
   synchronization tasks completed unsuccessfully`` — after running the
   ``SyncFail`` hooks, and deleting hooks with ``HookFailed``;
5. otherwise the first pending (phase, wave) runs: prunes first
   (``pruned``, ``ignored (requires pruning)`` when pruning is off,
   ``ignored (no prune)`` for ``Prune=false``; ``Prune=confirm`` waits for
   ``argocd.argoproj.io/deletion-approved`` on the Application), then hooks that
   must be deleted first (``BeforeHookCreation``), then applies
   (``labkit.argo.apply``).  A failed apply fails the operation with ``one or
   more objects failed to apply, reason: <API error>``.  After a wave that is
   not the last, the controller sleeps ``ARGOCD_SYNC_WAVE_DELAY`` (2 s) to give
   other controllers a chance to react before health is assessed;
6. when no task is left: ``successfully synced (all tasks run)`` (or ``(no more
   tasks)``), and hooks with ``HookSucceeded`` are deleted.

Note the gitops-engine rule kept on purpose: resources in the *final* wave are
not waited for — "successful EVEN if those objects subsequently degraded" —
unless the operation is multi-step and something else is still running.

Between steps the operation waits for a change of one of the application's
objects (the cluster's watch) or, at most, ``operation_poll`` seconds.
``RespectIgnoreDifferences=true`` patches each target with the live values of
ignored fields before it is applied (``labkit.argo.diff.respect_ignored``).
Selective syncs (self-heal syncs only the OutOfSync resources) do not run
hooks, as Argo's docs state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Mapping

import simpy

from labkit.argo.api import SyncOptions
from labkit.argo.apply import apply_object, dry_run_object
from labkit.argo.diff import matching_rules, respect_ignored
from labkit.argo.hooks import delete_policies, hook_name
from labkit.argo.state import Comparison, ResKey, res_key
from labkit.engine.apply import is_immutable_error
from labkit.engine.ordering import ARGO_PHASE_ORDER, ArgoTask, argo_sort, sync_wave
from labkit.core.errors import ApiError
from labkit.core.health import DEGRADED, HEALTHY, PROGRESSING, SUSPENDED, UNKNOWN, argo_has_health_check, argo_health

__all__ = ["SyncTask", "SyncContext", "SyncRun", "OperationResult", "DELETION_APPROVED_ANNOTATION"]

DELETION_APPROVED_ANNOTATION = "argocd.argoproj.io/deletion-approved"

# result codes and operation phases (gitops-engine common)
SYNCED, SYNC_FAILED, PRUNED, PRUNE_SKIPPED = "Synced", "SyncFailed", "Pruned", "PruneSkipped"
RUNNING, SUCCEEDED, FAILED, ERROR = "Running", "Succeeded", "Failed", "Error"
_PHASE_OF = {SYNCED: RUNNING, SYNC_FAILED: FAILED, PRUNED: SUCCEEDED, PRUNE_SKIPPED: SUCCEEDED}
_OK, _PENDING, _FAILED = "successful", "pending", "failed"
_DONE, _WAIT, _CONTINUE = "done", "wait", "continue"


@dataclass
class SyncTask:
    phase: str
    target: dict[str, Any] | None
    live: dict[str, Any] | None
    api_version: str
    key: ResKey
    options: SyncOptions
    hook: bool = False
    digest: str = ""
    wave_override: int | None = None
    sync_status: str = ""
    op_state: str = ""
    message: str = ""
    skip_dry_run: bool = False
    order: int = 0

    @property
    def obj(self) -> dict[str, Any]:
        return self.target if self.target is not None else (self.live or {})

    @property
    def wave(self) -> int:
        return self.wave_override if self.wave_override is not None else sync_wave(self.obj)

    @property
    def is_prune(self) -> bool:
        return self.target is None

    @property
    def pending(self) -> bool:
        return self.op_state == ""

    @property
    def running(self) -> bool:
        return self.op_state == RUNNING

    @property
    def completed(self) -> bool:
        return self.op_state in (SUCCEEDED, FAILED, ERROR)

    @property
    def successful(self) -> bool:
        return self.op_state == SUCCEEDED

    def has_policy(self, policy: str) -> bool:
        return self.hook and policy in delete_policies(self.obj)

    @property
    def delete_before_creation(self) -> bool:
        return self.live is not None and self.pending and self.has_policy("BeforeHookCreation")

    @property
    def delete_on_success(self) -> bool:
        return self.live is not None and self.has_policy("HookSucceeded")

    @property
    def delete_on_failure(self) -> bool:
        return self.live is not None and self.has_policy("HookFailed")

    def ref(self) -> str:
        g, kind, _ns, name = self.key
        return f"{g}/{kind}/{name}"

    def result(self) -> dict[str, Any]:
        g, kind, ns, name = self.key
        out: dict[str, Any] = {"group": g, "version": self.api_version.rsplit("/", 1)[-1], "kind": kind,
                               "namespace": ns, "name": name, "status": self.sync_status, "message": self.message,
                               "syncPhase": self.phase}
        if self.op_state:
            out["hookPhase"] = self.op_state
        if self.hook:
            out["hookType"] = self.phase
        return out


@dataclass
class SyncContext:
    """What one sync operation attempt needs from the controller."""

    env: simpy.Environment
    cluster: Any
    app: Any  # ApplicationSpec
    comparison: Comparison
    revision: str
    prune: bool
    options: Mapping[str, str]
    resources: list[Mapping[str, str]] | None
    started_unix: int
    rules: list[Any]
    namespaced: Callable[[str, str], bool]
    wake: Callable[[], simpy.Event]
    record: Callable[[str, str, dict[str, Any]], None]
    deletion_approved: Callable[[], float | None]
    verified: dict[Any, str]
    cluster_name: str
    get: Callable[..., dict[str, Any] | None] | None = None
    api_call: float = 0.0
    wave_delay: float = 2.0
    poll: float = 3.0
    started_at: float = 0.0
    on_progress: Callable[[str, str, list[dict[str, Any]]], None] | None = None


@dataclass
class OperationResult:
    phase: str
    message: str
    resources: list[dict[str, Any]] = field(default_factory=list)


class SyncRun:
    """One attempt of a sync operation (see module docstring)."""

    def __init__(self, ctx: SyncContext):
        self.ctx = ctx
        self.phase = RUNNING
        self.message = ""
        self.tasks: list[SyncTask] = []
        self.dry_run_done = False
        self.requests = 0
        self.steps = 0

    # ------------------------------------------------------------------ task list

    def _options(self, obj: Mapping[str, Any] | None) -> SyncOptions:
        return SyncOptions.for_object(self.ctx.options, obj)

    def _selected(self, key: ResKey) -> bool:
        sel = self.ctx.resources
        if not sel:
            return True
        g, kind, ns, name = key
        return any(r.get("kind") == kind and (r.get("group") or "") == g and r.get("name") == name
                   and (not r.get("namespace") or r.get("namespace") == ns) for r in sel)

    def build(self) -> None:
        ctx = self.ctx
        tasks: list[SyncTask] = []
        for r in ctx.comparison.resources:
            if not self._selected(r.key):
                continue
            if r.target is not None:
                tasks.append(SyncTask("Sync", r.target.obj, r.live, r.api_version, r.key,
                                      self._options(r.target.obj), digest=r.target.digest))
            elif r.requires_pruning and r.live is not None:
                tasks.append(SyncTask("Sync", None, r.live, r.api_version, r.key, self._options(r.live)))
        if not ctx.resources and ctx.comparison.targets is not None:
            for h in ctx.comparison.targets.hooks:
                for phase in h.hook_phases:
                    if phase not in ARGO_PHASE_ORDER:
                        continue
                    obj = dict(h.obj)
                    md = dict(obj.get("metadata") or {})
                    md["name"] = hook_name(h.obj, ctx.revision, phase, ctx.started_unix)
                    md.pop("generateName", None)
                    obj["metadata"] = md
                    from labkit.argo.tracking import set_tracking

                    set_tracking(obj, ctx.app.name, ctx.app.destination.namespace)
                    tasks.append(SyncTask(phase, obj, None, obj.get("apiVersion") or "", res_key(obj),
                                          self._options(obj), hook=True))
        dest_ns = ctx.app.destination.namespace
        if dest_ns and SyncOptions(ctx.options).enabled("CreateNamespace"):
            has_ns = any(t.key[:2] == ("", "Namespace") and t.key[3] == dest_ns for t in tasks if t.target)
            if not has_ns and self._get("v1", "Namespace", dest_ns, None) is None:
                ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dest_ns}}
                tasks.append(SyncTask("PreSync", ns, None, "v1", ("", "Namespace", "", dest_ns), self._options(None)))
        # skip dry-run for kinds the cluster does not serve yet when a CRD of this sync defines them
        crd_kinds = set()
        for t in tasks:
            o = t.target
            if o and o.get("kind") == "CustomResourceDefinition":
                spec = o.get("spec") or {}
                crd_kinds.add((spec.get("group"), (spec.get("names") or {}).get("kind")))
        for t in tasks:
            if t.target is None:
                continue
            if t.options.enabled("SkipDryRunOnMissingResource") or (t.key[0], t.key[1]) in crd_kinds:
                try:
                    ctx.cluster.is_namespaced(t.api_version, t.key[1])
                except ApiError:
                    t.skip_dry_run = True
        # prune waves mirrored; PruneLast after the last Sync wave
        prune_waves = sorted({t.wave for t in tasks if t.is_prune})
        n = len(prune_waves)
        mirror = {prune_waves[i]: prune_waves[n - 1 - i] for i in range(n)}
        for t in tasks:
            if t.is_prune:
                t.wave_override = mirror[sync_wave(t.obj)]
        last_sync_wave = max([0] + [t.wave for t in tasks if t.phase == "Sync"]) + 1
        for t in tasks:
            if t.is_prune and (SyncOptions(ctx.options).enabled("PruneLast") or self._options(t.live).enabled("PruneLast")):
                t.wave_override = last_sync_wave
        self.tasks = self._sort(tasks)

    def _sort(self, tasks: list[SyncTask]) -> list[SyncTask]:
        wrapped = {}
        items = []
        for t in tasks:
            at = ArgoTask(t.obj, t.phase, t.wave)
            wrapped[id(at)] = t
            items.append(at)
        out = []
        for i, at in enumerate(argo_sort(items)):
            t = wrapped[id(at)]
            t.phase = at.phase
            t.wave_override = at.effective_wave
            t.order = i + 1
            out.append(t)
        return out

    # ------------------------------------------------------------------ the operation

    def run(self) -> Generator[simpy.Event, Any, OperationResult]:
        ctx = self.ctx
        self.build()
        while True:
            outcome = yield from self._step()
            self._progress()
            if outcome == _DONE:
                break
            if outcome == _WAIT:
                yield ctx.env.timeout(ctx.poll) | ctx.wake()
        return OperationResult(self.phase, self.message, self.results())

    def results(self) -> list[dict[str, Any]]:
        return [t.result() for t in sorted(self.tasks, key=lambda t: t.order) if t.sync_status or t.op_state]

    def _progress(self) -> None:
        if self.ctx.on_progress is not None:
            self.ctx.on_progress(self.phase, self.message, self.results())

    def _set(self, phase: str, message: str) -> None:
        self.phase, self.message = phase, message

    def _set_running(self, tasks: list[SyncTask], deleting: bool) -> None:
        if not tasks:
            return
        first = tasks[0]
        waiting, more = ("completion of hook", "hooks") if first.hook else ("healthy state of", "resources")
        if deleting:
            waiting = "deletion of"
        msg = f"waiting for {waiting} {first.ref()}"
        if len(tasks) > 1:
            msg += f" and {len(tasks) - 1} more {more}"
        self._set(RUNNING, msg)

    def _multi_step(self) -> bool:
        if not self.tasks:
            return False
        first, last = self.tasks[0], self.tasks[-1]
        return first.wave != last.wave or first.phase != last.phase

    def _get(self, api_version: str, kind: str, name: str, ns: str | None, managed: bool = False) -> dict | None:
        if self.ctx.get is not None:
            return self.ctx.get(api_version, kind, name, ns, managed=managed)
        return self.ctx.cluster.get(api_version, kind, name, ns)

    def _refresh_live(self, only_hooks: bool = False) -> None:
        for t in self.tasks:
            if only_hooks and not (t.hook or t.phase == "PreSync"):
                continue
            g, kind, ns, name = t.key
            self.requests += 1
            try:
                t.live = self._get(t.api_version, kind, name, ns or None)
            except ApiError:
                t.live = None

    def _assess(self, t: SyncTask) -> None:
        live = t.live
        assert live is not None
        if t.hook:
            if not argo_has_health_check(live):
                t.op_state, t.message = SUCCEEDED, f"{live['metadata']['name']} created"
                return
            h = argo_health(live)
            if h.status in (UNKNOWN, DEGRADED):
                self._result(t, FAILED, h.message)
            elif h.status in (PROGRESSING, SUSPENDED):
                self._result(t, RUNNING, h.message)
            elif h.status == HEALTHY:
                self._result(t, SUCCEEDED, h.message)
            if t.completed:
                self.ctx.record("HookCompleted", self._subject(t), {"hookType": t.phase, "hookPhase": t.op_state,
                                                                  "message": t.message})
            return
        if not argo_has_health_check(live):
            t.op_state = SUCCEEDED
            return
        h = argo_health(live)
        if h.status == HEALTHY:
            self._result(t, SUCCEEDED, h.message)
        elif h.status == DEGRADED:
            self._result(t, FAILED, h.message)

    @staticmethod
    def _result(t: SyncTask, op_state: str, message: str) -> None:
        """gitops-engine ``setResourceResult``: the latest non-empty message is kept."""
        t.op_state = op_state
        if message:
            t.message = message

    def _step(self) -> Generator[simpy.Event, Any, str]:
        ctx = self.ctx
        if not self.dry_run_done:
            self.dry_run_done = True
            state = yield from self._run_tasks(self.tasks, dry_run=True)
            if state == _FAILED:
                self._set(FAILED, "one or more objects failed to apply (dry run)")
                return _DONE
        # the first step reuses the live objects the comparison just read; hooks are looked up
        self._refresh_live(only_hooks=not self.steps)
        self.steps += 1
        for t in self.tasks:
            if t.running and t.live is not None:
                self._assess(t)
        multi = self._multi_step()
        running = [t for t in self.tasks if (multi or t.hook) and t.running]
        if running:
            self._set_running(running, False)
            return _WAIT
        pending_delete = [t for t in self.tasks if t.sync_status == PRUNED and t.live is not None
                          and (t.live.get("metadata") or {}).get("deletionTimestamp")]
        if pending_delete:
            self._set_running(pending_delete, True)
            return _WAIT
        ok_hooks = [t for t in self.tasks if t.hook and t.live is not None and not t.running and t.delete_on_success]
        failed_hooks = [t for t in self.tasks if t.hook and t.live is not None and not t.running and t.delete_on_failure]
        sync_fail = [t for t in self.tasks if t.phase == "SyncFail"]
        rest = [t for t in self.tasks if t.phase != "SyncFail"]
        if any(t.completed and not t.successful for t in rest):
            self._delete_hooks(failed_hooks)
            return (yield from self._set_failed(sync_fail, [t for t in rest if t.sync_status == SYNC_FAILED],
                                                "one or more synchronization tasks completed unsuccessfully"))
        rest = [t for t in rest if t.pending]
        if SyncOptions(ctx.options).enabled("ApplyOutOfSyncOnly"):
            rest = self._out_of_sync_only(rest)
        if not rest:
            self._delete_hooks(ok_hooks)
            self._set(SUCCEEDED, "successfully synced (no more tasks)")
            return _DONE
        phase, wave = rest[0].phase, rest[0].wave
        final = phase == rest[-1].phase and wave == rest[-1].wave
        remaining = [t for t in rest if t.phase != phase or t.wave != wave or t.hook]
        current = [t for t in rest if t.phase == phase and t.wave == wave]
        self._set(RUNNING, "one or more tasks are running")
        ctx.record("SyncWaveStarted", "", {"phase": phase, "wave": wave, "tasks": len(current)})
        state = yield from self._run_tasks(current, dry_run=False)
        if state != _FAILED and not final and ctx.wave_delay > 0:
            yield ctx.env.timeout(ctx.wave_delay)
        if state == _FAILED:
            self._delete_hooks(failed_hooks)
            return (yield from self._set_failed(sync_fail, [t for t in current if t.sync_status == SYNC_FAILED],
                                                "one or more objects failed to apply"))
        if state == _OK:
            if not remaining:
                self._delete_hooks(ok_hooks)
                self._set(SUCCEEDED, "successfully synced (all tasks run)")
                return _DONE
            self._set_running(remaining, False)
            return _CONTINUE
        self._set_running([t for t in current if t.delete_before_creation or t.hook and t.pending], True)
        return _WAIT

    def _out_of_sync_only(self, tasks: list[SyncTask]) -> list[SyncTask]:
        synced = {r.key for r in self.ctx.comparison.resources if r.status == "Synced" and r.live is not None}
        return [t for t in tasks if t.hook or t.is_prune or t.key not in synced]

    def _set_failed(self, sync_fail: list[SyncTask], failed: list[SyncTask],
                    message: str) -> Generator[simpy.Event, Any, str]:
        msgs = [t.message for t in failed]
        text = f"{message}, reason: {','.join(msgs)}" if msgs else message
        if sync_fail:
            if all(t.completed for t in sync_fail):
                self._set(FAILED, text)
                return _DONE
            state = yield from self._run_tasks(sync_fail, dry_run=False)
            if state == _FAILED:
                bad = [t.message for t in sync_fail if t.sync_status == SYNC_FAILED]
                extra = "one or more SyncFail hooks failed" + (f", reason: {','.join(bad)}" if bad else "")
                self._set(FAILED, f"{text}\n{extra}")
                return _DONE
            self._set_running([t for t in sync_fail if t.running] or sync_fail, False)
            return _WAIT
        self._set(FAILED, text)
        return _DONE

    # ------------------------------------------------------------------ doing things

    def _subject(self, t: SyncTask) -> str:
        g, kind, ns, name = t.key
        return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"

    def _delete_hooks(self, hooks: list[SyncTask]) -> None:
        for t in hooks:
            g, kind, ns, name = t.key
            try:
                self.ctx.cluster.delete(t.api_version, kind, name, ns or None, propagation="Foreground")
                self.ctx.record("HookDeleted", self._subject(t), {"hookType": t.phase, "hookPhase": t.op_state})
            except ApiError as err:
                if err.reason != "NotFound":
                    t.op_state, t.message = ERROR, f"failed to delete resource: {err.message}"

    def _prune_confirmation(self, prunes: list[SyncTask]) -> str:
        need = [t for t in prunes if self._options(t.live).has("Prune", "confirm")]
        if not need:
            return ""
        approved = self.ctx.deletion_approved()
        if approved is not None and approved >= self.ctx.started_at:
            return ""
        first = need[0]
        more = f" and {len(need) - 1} more resources" if len(need) > 1 else ""
        return f"Waiting for pruning confirmation of {first.api_version}/{first.key[1]}/{first.key[3]}{more}"

    def _prune(self, t: SyncTask, dry_run: bool) -> tuple[str, str]:
        if not self.ctx.prune:
            return PRUNE_SKIPPED, "ignored (requires pruning)"
        if self._options(t.live).has("Prune", "false"):
            return PRUNE_SKIPPED, "ignored (no prune)"
        if dry_run:
            return PRUNED, "pruned (dry run)"
        live = t.live or {}
        if not (live.get("metadata") or {}).get("deletionTimestamp"):
            policy = SyncOptions(self.ctx.options).value("PrunePropagationPolicy") or "foreground"
            g, kind, ns, name = t.key
            self.requests += 1
            try:
                self.ctx.cluster.delete(t.api_version, kind, name, ns or None, propagation=policy.capitalize())
            except ApiError as err:
                return SYNC_FAILED, err.message
            self.ctx.record("Pruned", self._subject(t), {"propagation": policy})
        return PRUNED, "pruned"

    def _dry_run_ok(self, t: SyncTask, err: ApiError) -> bool:
        if is_immutable_error(err):
            return True  # Argo dry-runs client-side: immutable fields are only caught at apply time
        if err.reason == "NotFound" and err.message.startswith('namespaces "'):
            return True  # a client-side dry-run does not look the namespace up: the apply will tell
        return False

    def _apply(self, t: SyncTask, dry_run: bool) -> tuple[str, str]:
        ctx = self.ctx
        target = t.target
        assert target is not None
        self.requests += 1
        if dry_run:
            try:
                dry_run_object(ctx.cluster, target)
            except ApiError as err:
                if not self._dry_run_ok(t, err):
                    return SYNC_FAILED, err.message
            return SYNCED, ""
        if not t.hook and t.live is not None and t.options.enabled("RespectIgnoreDifferences") and ctx.rules:
            rules = matching_rules(ctx.rules, target)
            if rules:
                live = t.live
                if any(r.managed_fields_managers for r in rules):
                    g, kind, ns, name = t.key
                    live = self._get(t.api_version, kind, name, ns or None, managed=True) or live
                target = respect_ignored(target, live, rules)
        try:
            result, message = apply_object(ctx.cluster, target, t.live, t.options)
        except ApiError as err:
            ctx.record("ApplyFailed", self._subject(t), {"reason": err.reason, "message": err.message,
                                                          "phase": t.phase, "wave": t.wave})
            return SYNC_FAILED, err.message
        if not t.hook and t.digest and target is t.target:
            ctx.verified[(ctx.cluster_name, t.key)] = t.digest
        event = "HookCreated" if t.hook else "ResourceApplied"
        ctx.record(event, self._subject(t), {"message": message, "phase": t.phase, "wave": t.wave})
        return SYNCED, message

    def _run_tasks(self, tasks: list[SyncTask], dry_run: bool) -> Generator[simpy.Event, Any, str]:
        ctx = self.ctx
        before = self.requests
        state = _OK
        prunes = [t for t in tasks if t.is_prune]
        creates = [t for t in tasks if not t.is_prune]
        if prunes and not dry_run:
            waiting = self._prune_confirmation(prunes)
            if waiting:
                self.message = waiting
                return _PENDING
        for t in prunes:
            code, msg = self._prune(t, dry_run)
            if code == SYNC_FAILED:
                state = _FAILED
            if not dry_run or code == SYNC_FAILED:
                t.sync_status, t.op_state, t.message = code, _PHASE_OF[code], msg
        if state != _OK:
            yield from self._latency(before)
            return state
        if not dry_run:
            for t in creates:
                if not t.delete_before_creation:
                    continue
                g, kind, ns, name = t.key
                self.requests += 1
                try:
                    ctx.cluster.delete(t.api_version, kind, name, ns or None, propagation="Foreground")
                    ctx.record("HookDeleted", self._subject(t), {"hookType": t.phase, "reason": "BeforeHookCreation"})
                    state = _PENDING
                except ApiError as err:
                    if err.reason != "NotFound":
                        state = _FAILED
                        t.op_state, t.message = ERROR, f"failed to delete resource: {err.message}"
        if state != _OK:
            yield from self._latency(before)
            return state
        for t in creates:
            if dry_run and t.skip_dry_run:
                continue
            code, msg = self._apply(t, dry_run)
            if code == SYNC_FAILED:
                state = _FAILED
            if not dry_run or code == SYNC_FAILED:
                t.sync_status, t.op_state, t.message = code, _PHASE_OF[code], msg
        yield from self._latency(before)
        return state

    def _latency(self, before: int) -> Generator[simpy.Event, Any, None]:
        n = self.requests - before
        if n and self.ctx.api_call > 0:
            yield self.ctx.env.timeout(n * self.ctx.api_call)
