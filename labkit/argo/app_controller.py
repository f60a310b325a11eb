"""One Application's reconcile loop: refresh, automated sync, self-heal, retries, operations, deletion.

``AppController`` is what ``argocd-application-controller`` does for one
Application, as a SimPy process.  ``ArgoSystem`` builds one per Application
and drives it (``request_refresh``, ``on_resource_event``, ``start_operation``);
the controller itself is given only the collaborators it works with, as
Argo's ``ApplicationController`` is:

* ``client`` (``labkit.argo.appclient``) — its own Application in the
  management cluster: read it, patch its status, clear the refresh annotation,
  remove the resources finalizer;
* ``settings`` (``labkit.argo.settings``) — namespace, timings, random
  streams, the system-wide ignore rules of ``argocd-cm``;
* ``destinations`` (``labkit.argo.destinations``) — where ``spec.destination``
  points;
* ``cache`` (``labkit.argo.cluster_cache``) — the live state of the
  destination clusters, scope discovery, and the objects tracked by each
  Application;
* ``repo_server`` (``labkit.argo.repo_server``) — revisions and manifests;
* ``log`` — the event recorder;
* ``on_gone`` — told when the Application has been deleted and the loop ends.

No back-reference to ``ArgoSystem``: this module sits below it, and imports
nothing that imports it.

The loop is the shared reconcile driver (``labkit.core.workqueue``): one
``Driver`` per Application, whose single key is queued by every
``request_refresh`` and coalesced while it waits, so a burst of watch events is
one refresh.  What the driver's key cannot carry is the refresh *level*: the
controller keeps the highest level requested since the last pass and the pass
consumes it.  For the same reason a pass that failed on an API error is not a
driver-requeued error but a ``request_refresh(LATEST, after=delay)``, with
``delay`` from the driver's ``RateLimiter`` (client-go's per-item back-off,
Retry-After honoured), which only a pass that refreshed or finalized resets;
delayed requests (resync jitter, self-heal back-off, error retries) are
independent timers that each fire, as they did before the driver.

Refresh
-------
A refresh is a ``CompareAppState`` (``labkit.argo.state``) at one of three
levels, as Argo's ``CompareWith``:

* ``RECENT`` — a managed object changed in the cluster (the watch): compare the
  live state with the targets of the last compared revision, no git access;
* ``LATEST`` — a new object, a spec change, an expired comparison (the periodic
  resync, ``timeout.reconciliation`` 120 s plus up to
  ``timeout.reconciliation.jitter`` 60 s), a webhook, the end of an operation:
  resolve ``targetRevision`` again (``git ls-remote``) and use the manifest
  cache;
* ``HARD`` — ``argocd.argoproj.io/refresh: hard``: also regenerate manifests.

The periodic resync only compares when the last comparison has *expired*
(``reconciledAt + timeout.reconciliation <= now``, ``reconciledAt`` being the
start of the last refresh, truncated to whole seconds as the API stores it).

Every refresh writes the status: ``sync`` (status, revision, comparedTo),
``health``, ``resources``, ``conditions`` (``InvalidSpecError``,
``ComparisonError``, ``SyncError``, ``RepeatedResourceWarning``),
``reconciledAt``, ``sourceType``, and keeps ``operationState`` and ``history``.

Automated sync (``autoSync``)
-----------------------------
Only for an ``OutOfSync`` Application with no operation in progress.  Skipped
when only pruning is needed and ``prune`` is off.  An automated sync runs once
per (revision, source): if the last operation already targeted this commit
and it *failed*, no new sync starts and a ``SyncError`` condition says
``Failed last sync attempt to [<sha>]: <message>``; if it succeeded, nothing happens
unless ``selfHeal`` is on.  Self-heal syncs only the OutOfSync resources and is
throttled by the exponential self-heal back-off (``--self-heal-backoff-timeout-seconds``
2, ``--self-heal-backoff-factor`` 3, ``--self-heal-backoff-cap-seconds`` 300),
measured from the end of the previous operation: the n-th self-heal attempt
waits ``2·3^(n-1)`` seconds (2, 6, 18, 54, 162, then 300), the first one none.
The attempt count is carried from operation to operation and reset when the
previous operation finished more than ``--self-heal-backoff-cooldown-seconds``
(330 s) ago.  With ``prune`` on and ``allowEmpty`` off, a sync that would delete
every resource is refused (``auto-sync will wipe out all resources``).

Operations and retries
----------------------
An operation (automated or ``ArgoSystem.sync``) runs ``labkit.argo.sync.SyncRun``
attempts.  A failed attempt is retried while ``retryCount < retry.limit``
(``limit < 0``: for ever) after ``min(maxDuration, duration · factor^retryCount)``
with the count *after* the increment — 10 s, 20 s, 40 s ... for the default
5 s × 2 — and the message ``<message>. Retrying attempt #N at 3:04PM.``; the
final failure says ``(retried N times).``.  Argo gives *automated* operations a
retry limit of 5 when the Application sets none (``controller/appcontroller.go``:
``Retry: RetryStrategy{Limit: 5}``; ``automated_retry_limit`` changes it).  A
successful full sync appends to ``status.history`` (id, revision, source,
``deployStartedAt``, ``deployedAt``, ``initiatedBy``; ``revisionHistoryLimit``
entries, default 10); selective syncs (self-heal) do not.

Errors from the API server and the repo-server
----------------------------------------------
Nothing a failing cluster or git host does may end the loop (an exception
escaping a SimPy process would stop the whole run), and nothing may be
forgotten because of it:

* an API error while reading the Application or finalizing it is a returned
  error: ``ReconcileError`` in the log and a refresh requeued with client-go's
  per-item back-off (5 ms doubling, capped at 1000 s) or the server's
  ``Retry-After`` when longer;
* a live object that cannot be read fails the comparison (``ComparisonError``
  ``Failed to load live state: ...``, sync status Unknown) and the status keeps
  the resources it listed — treating the object as missing would make it look
  deleted, and an object awaiting pruning would drop out of the inventory;
* sources that cannot be loaded (git unreachable, a ref to a commit the
  remote does not have, a manifest generation over its deadline) are a
  ``ComparisonError``; nothing is synced and the last good revision stays;
* a failed status patch is logged (``StatusPatchFailed``) and the status kept
  in memory (this controller is its only writer): the next refresh writes it;
  the *final* state of an operation is written every second until it sticks
  (``RetryUntilSucceed``), and only then does the operation end;
* an API error inside a sync attempt fails that attempt, which the retry
  policy then retries.

Managed objects are found as Argo finds them: the previous ``status.resources``
*and* every object in the watch cache whose tracking id names this
Application (``ClusterCache.tracked``), so an object created by an operation after
the refresh that last listed it is still compared — and pruned.

Deletion
--------
With ``resources-finalizer.argocd.argoproj.io`` (or ``/foreground``,
``/background``) a deleted Application first deletes every resource it manages
(except those marked ``Delete=false``), waits until they are gone, then removes
its finalizer — for an app-of-apps this cascades through the child
Applications' own finalizers.  Without the finalizer the Application goes and
its resources stay.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Generator

import simpy

from labkit.argo.api import (APPLICATION_KIND, RESOURCES_FINALIZERS, ApplicationSpec, Backoff, Retry, SyncOptions,
                             parse_application)
from labkit.argo.appclient import AppClient
from labkit.argo.apply import dry_run_object
from labkit.argo.cluster_cache import ClusterCache
from labkit.argo.destinations import Destinations
from labkit.argo.repo_server import RepoServer
from labkit.argo.settings import Settings
from labkit.argo.state import (OUT_OF_SYNC, SYNCED, UNKNOWN, Comparison, TargetSet, build_targets, compare,
                               known_from_status, status_resources)
from labkit.argo.sync import DELETION_APPROVED_ANNOTATION, OperationResult, SyncContext, SyncRun
from labkit.argo.tracking import owns
from labkit.core.clock import timestamp
from labkit.core.workqueue import DONE, Driver, Outcome, RateLimiter
from labkit.core.errors import ApiError, LabkitError, TemporaryError
from labkit.core.events import EventLog
from labkit.gitops.render import RenderTimeoutError

__all__ = ["AppController", "RECENT", "LATEST", "HARD", "RESYNC", "COMPONENT"]

COMPONENT = "argocd-application-controller"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
RESYNC, RECENT, LATEST, HARD = 1, 2, 3, 4
#: ``kube.RetryUntilSucceed(..., updateOperationStateTimeout, "Update application operation state", ...)``:
#: the final state of an operation is written every second until the write succeeds
OPERATION_STATE_RETRY = 1.0
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _kitchen(seconds: float) -> str:
    """Go's ``time.Kitchen`` (``3:04PM``) of a run-clock time."""
    t = _EPOCH + timedelta(seconds=float(seconds))
    hour = t.hour % 12 or 12
    return f"{hour}:{t.minute:02d}{'AM' if t.hour < 12 else 'PM'}"


def _parse_ts(text: str | None) -> float | None:
    if not text:
        return None
    try:
        t = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return (t - _EPOCH).total_seconds()


class AppController:
    """The reconcile loop of one Application (see module docstring)."""

    def __init__(self, env: simpy.Environment, namespace: str, name: str, *, client: AppClient, settings: Settings,
                 destinations: Destinations, cache: ClusterCache, repo_server: RepoServer, log: EventLog,
                 on_gone: Callable[["AppController"], None]):
        self.env = env
        self.client = client
        self.settings = settings
        self.destinations = destinations
        self.cache = cache
        self.repo_server = repo_server
        self.log = log
        self.on_gone = on_gone
        self.namespace = namespace
        self.name = name
        self.key = f"{APPLICATION_KIND}/{namespace}/{name}"
        self.rng = settings.rng(f"app:{namespace}/{name}")
        self.level = 0
        self._wake = self.env.event()
        self._op_wake: simpy.Event | None = None
        self._op_dirty = False
        self.spec: ApplicationSpec | None = None
        self.revision: str | None = None
        self.source_key: tuple | None = None
        self._targets: dict[tuple, TargetSet] = {}
        self.comparison: Comparison | None = None
        self._compared_at = -1.0
        self.operation: dict[str, Any] | None = None
        self.op_process: simpy.Process | None = None
        self.reconciled_at: float | None = None
        self.sync_error: str = ""
        self.refreshes = 0
        self.last_status: dict[str, Any] = {}
        self.gone = False
        self._last_write_ok = True
        # A failed refresh is retried at a refresh level (LATEST at least), so it is requeued as a
        # request_refresh; the back-off is client-go's per-item limiter, reset by a refresh or a
        # finalize step that went through (a resync skipped as not expired does not reset it).
        self._backoff = RateLimiter(honour_retry_after=True)
        self.driver = Driver(env, self._reconcile)
        self.driver.interleave = False  # one key: a refresh requested meanwhile follows at once
        self.process = self.driver.process
        self.request_refresh(LATEST)

    # ------------------------------------------------------------------ triggers

    def request_refresh(self, level: int, after: float = 0.0) -> None:
        if after > 0:
            def later() -> Generator[simpy.Event, Any, None]:
                yield self.env.timeout(after)
                self.request_refresh(level)
            self.env.process(later())
            return
        if self.gone:
            return
        self.level = max(self.level, level)
        if not self._wake.triggered:
            self._wake.succeed()  # wakes a finalize step waiting for news
        self.driver.add(self.key)

    def on_resource_event(self) -> None:
        """A managed object changed: re-drive a running operation, or refresh against the live state."""
        if self.operation is not None:
            self._op_dirty = True
            if self._op_wake is not None and not self._op_wake.triggered:
                self._op_wake.succeed()
            return
        self.request_refresh(RECENT)

    def op_wake(self) -> simpy.Event:
        """The event a running operation waits on; already fired if something changed since its last step."""
        if self._op_dirty:
            self._op_dirty = False
            ev = self.env.event()
            ev.succeed()
            return ev
        self._op_wake = self.env.event()
        return self._op_wake

    # ------------------------------------------------------------------ loop

    def _reconcile(self, key: str) -> Generator[simpy.Event, Any, Outcome]:
        """One pass for the driver: read the Application, then finalize it, or refresh it at the level requested."""
        if self.gone:
            return DONE
        if self._wake.triggered:
            self._wake = self.env.event()
        level, self.level = self.level, 0
        try:
            obj = self.client.get(self.namespace, self.name)
            if obj is None:
                self.gone = True
                self.on_gone(self)
                self.log.record(COMPONENT, "ApplicationDeleted", self.key)
                return DONE
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                yield from self._finalize(obj)
                self._backoff.forget(self.key)
                return DONE
            if level == RESYNC:
                if not self._expired():
                    return DONE
                level = LATEST  # "comparison expired, requesting refresh": compare with the latest revision
            if level == 0:
                return DONE
            yield from self._refresh(obj, level)
            self._backoff.forget(self.key)
        except (ApiError, TemporaryError) as err:
            self._requeue_after(err, level)
        return DONE

    def _requeue_after(self, err: ApiError | TemporaryError, level: int) -> None:
        """A returned error: requeue with the per-item exponential back-off (or the server's Retry-After)."""
        delay = self._backoff.when(self.key, err)
        self.log.record(COMPONENT, "ReconcileError", self.key,
                        detail={"reason": err.reason, "code": getattr(err, "code", 0), "message": err.message,
                                "retry_in": delay})
        self.request_refresh(max(level, LATEST), after=delay)

    def _expired(self) -> bool:
        if self.reconciled_at is None:
            return True
        return math.floor(self.reconciled_at) + self.settings.timings.reconciliation <= self.env.now

    # ------------------------------------------------------------------ refresh

    def _spec(self, obj: dict[str, Any]) -> ApplicationSpec:
        return parse_application(obj, file=self.key, default_namespace=self.settings.namespace)

    def _refresh(self, obj: dict[str, Any], level: int) -> Generator[simpy.Event, Any, None]:
        env = self.env
        started = env.now
        self.reconciled_at = started
        self.refreshes += 1
        ann = (obj.get("metadata") or {}).get("annotations") or {}
        if ann.get(REFRESH_ANNOTATION):
            if ann[REFRESH_ANNOTATION] == "hard":
                level = HARD
            level = max(level, LATEST)
            self.client.clear_annotation(obj, REFRESH_ANNOTATION)
        if not self.last_status:
            self.last_status = dict(obj.get("status") or {})  # we are the only writer of the status from now on
        conditions: list[dict[str, Any]] = []
        try:
            spec = self._spec(obj)
        except LabkitError as err:
            self._write_error("InvalidSpecError", str(err))
            return
        self.spec = spec
        try:
            dest_name, cluster = self.destinations.destination(spec)
        except LabkitError as err:
            self._write_error("InvalidSpecError", err.detail)
            return
        try:
            targets = yield from self._targets_for(spec, level, dest_name)
        except (LabkitError, TemporaryError) as err:
            if isinstance(err, RenderTimeoutError):  # the repo-server outlived the controller's gRPC deadline
                rpc = "code = DeadlineExceeded desc = context deadline exceeded"
            else:
                rpc = f"code = Unknown desc = {_error_text(err)}"
            self._write_error("ComparisonError", "Failed to load target state: failed to generate manifest "
                                                 f"for source 1 of 1: rpc error: {rpc}")
            return
        rules = list(spec.ignore_differences) + self.settings.ignore_rules()
        self._watch(dest_name, targets)
        try:
            comp = self._compare(spec, targets, cluster, dest_name, rules, self.last_status)
        except TemporaryError as err:
            # gitops-engine: a live state that cannot be read is a ComparisonError and sync status Unknown;
            # the resources the status lists stay as they were (nothing is forgotten, nothing pruned)
            self._write_error("ComparisonError", err.message)
            return
        if comp.requests and self.settings.engine_timings.api_call > 0:
            yield env.timeout(comp.requests * self.settings.engine_timings.api_call)
        self.comparison = comp
        self._compared_at = env.now
        for w in targets.warnings:
            conditions.append({"type": "RepeatedResourceWarning", "message": w})
        # the operation may have written its state while this refresh waited on git: start from the latest
        status = dict(self.last_status)
        condition, op = self._auto_sync(spec, comp, status)
        if condition:
            conditions.append({"type": "SyncError", "message": condition})
        status.update(self._compare_status(spec, comp, targets, dest_name))
        status["conditions"] = self._conditions(status.get("conditions"), conditions)
        status["reconciledAt"] = timestamp(started)
        self._write(status)
        self.log.record(COMPONENT, "Refreshed", self.key, revision=comp.revision,
                        detail={"sync": comp.sync_status, "health": comp.health.status, "level": level,
                                "started": started, "duration": env.now - started,
                                "outOfSync": len(comp.out_of_sync())})
        if op is not None:
            self.log.record(COMPONENT, "OperationStarted", self.key, revision=comp.revision,
                            detail={"message": f"Initiated automated sync to '{comp.revision}'",
                                    "selfHeal": "resources" in op["sync"],
                                    "attempt": op["sync"].get("autoHealAttemptsCount", 0)})
            self.start_operation(op)

    def _targets_for(self, spec: ApplicationSpec, level: int, dest_name: str) -> Generator[simpy.Event, Any, TargetSet]:
        src = spec.source
        skey = (src.repo_url, src.path, src.target_revision, src.directory_recurse, spec.destination.namespace,
                dest_name)
        if level >= LATEST or self.revision is None or self.source_key != skey:
            yield self.env.timeout(self.settings.timings.draw(self.rng, "git_ls_remote"))
            sha = self.repo_server.resolve(src.repo_url, src.target_revision)
            self.revision, self.source_key = sha, skey
        return (yield from self.targets_at(spec, self.revision, dest_name, hard=level >= HARD))

    def targets_at(self, spec: ApplicationSpec, sha: str, dest_name: str, *, hard: bool = False
                   ) -> Generator[simpy.Event, Any, TargetSet]:
        src = spec.source
        ck = (sha, src.repo_url, src.path, src.directory_recurse, spec.destination.namespace, dest_name)
        cached = self._targets.get(ck)
        if cached is not None and not hard:
            return cached
        rs = self.repo_server
        if hard or not rs.cached(src.repo_url, sha, src.path, src.directory_recurse):
            yield self.env.timeout(self.settings.timings.draw(self.rng, "manifest_generate"))
        objects = rs.manifests(src.repo_url, sha, src.path, recurse=src.directory_recurse, hard=hard)
        stype = rs.source_type(src.repo_url, sha, src.path)
        targets = build_targets(spec, objects, sha, lambda av, k, objs: self.cache.namespaced(dest_name, av, k, objs), stype)
        if len(self._targets) > 4:
            self._targets.clear()
        self._targets[ck] = targets
        return targets

    def _compare(self, spec: ApplicationSpec, targets: TargetSet, cluster: Any, dest_name: str, rules: list,
                 status: dict[str, Any] | None) -> Comparison:
        """``CompareAppState`` against the cluster cache: the resources ``status`` lists plus every tracked one."""
        known = known_from_status(status) + self.cache.tracked(dest_name, self.name)
        return compare(spec, targets, cluster, known, rules, self.cache.verified,
                       dest_name, namespaced=lambda av, k: self.cache.namespaced(dest_name, av, k),
                       dry_run=lambda obj: dry_run_object(cluster, obj), get=self.cache.live_getter(dest_name))

    def _watch(self, dest_name: str, targets: TargetSet) -> None:
        """Make sure the cluster cache watches every kind the targets (resources and hooks) name."""
        self.cache.ensure_watches(dest_name, [(t.api_version, t.key[1]) for t in targets.resources + targets.hooks])

    def _compare_status(self, spec: ApplicationSpec, comp: Comparison, targets: TargetSet,
                        dest_name: str) -> dict[str, Any]:
        health: dict[str, Any] = {"status": comp.health.status}
        if comp.health.message:
            health["message"] = comp.health.message
        return {
            "sync": {"status": comp.sync_status, "revision": comp.revision,
                     "comparedTo": {"source": _source_dict(spec),
                                    "destination": {"server": self.destinations.server_of(dest_name),
                                                    "namespace": spec.destination.namespace}}},
            "health": health,
            "resources": status_resources(comp),
            "sourceType": targets.source_type,
        }

    def _conditions(self, old: Any, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prev = {(c.get("type"), c.get("message")): c.get("lastTransitionTime") for c in old or []}
        out = []
        for c in new:
            c = dict(c)
            c["lastTransitionTime"] = prev.get((c["type"], c["message"])) or timestamp(self.env.now)
            out.append(c)
        return out

    def _write_error(self, ctype: str, message: str) -> None:
        status = dict(self.last_status)
        status["sync"] = dict(status.get("sync") or {}, status=UNKNOWN)
        status["health"] = {"status": "Unknown"} if ctype == "InvalidSpecError" else (status.get("health") or {"status": "Unknown"})
        status["conditions"] = self._conditions(status.get("conditions"), [{"type": ctype, "message": message}])
        status["reconciledAt"] = timestamp(self.env.now)
        self._write(status)
        self.log.record(COMPONENT, ctype, self.key, detail={"message": message})

    def _write(self, status: dict[str, Any]) -> bool:
        """Persist ``status`` (kept in memory either way: this controller is its only writer); False on an API error.

        Argo's ``persistAppStatus`` logs a failed patch and moves on: the next
        refresh writes the status again.
        """
        self.last_status = status
        try:
            self.client.write_status(self.namespace, self.name, status)
        except ApiError as err:
            self.log.record(COMPONENT, "StatusPatchFailed", self.key,
                                   detail={"reason": err.reason, "code": err.code, "message": err.message})
            return False
        return True

    # ------------------------------------------------------------------ automated sync

    def _auto_sync(self, spec: ApplicationSpec, comp: Comparison,
                   status: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """Argo's ``autoSync``: ``(SyncError message or "", operation to start or None)``."""
        policy = spec.sync_policy
        if not policy.auto or policy.automated is None:
            return "", None
        if self.operation is not None:
            return "", None
        if comp.sync_status != OUT_OF_SYNC:
            return "", None
        auto = policy.automated
        if not auto.prune and all(r.status == SYNCED or r.requires_pruning for r in comp.resources):
            self._skip("need to prune extra resources only but automated prune is disabled")
            return "", None
        desired = comp.revision
        last = status.get("operationState") or {}
        sync_res = last.get("syncResult") or {}
        last_sync = (last.get("operation") or {}).get("sync") or {}
        attempted = bool(sync_res) and sync_res.get("revision") == desired and \
            _source_key(sync_res.get("source")) == (spec.source.repo_url, spec.source.path)
        phase = last.get("phase", "")
        count = int(last_sync.get("autoHealAttemptsCount") or 0)
        finished = _parse_ts(last.get("finishedAt"))
        if finished is not None and self.env.now - finished >= self.settings.timings.self_heal_cooldown:
            count = 0
        resources: list[dict[str, str]] | None = None
        if attempted and (not auto.self_heal or phase != "Succeeded"):
            if phase != "Succeeded":
                return f"Failed last sync attempt to [{desired}]: {last.get('message', '')}", None
            self._skip(f"most recent sync already to {desired}")
            return "", None
        if attempted and auto.self_heal:
            remaining = self._self_heal_remaining(count, finished)
            if remaining > 0:
                self._skip(f"already attempted sync to {desired} (retrying in {remaining:g}s)", backoff=remaining,
                           attempts=count)
                self.request_refresh(LATEST, after=remaining)
                return "", None
            count += 1
            resources = [{"group": r.key[0], "kind": r.key[1], "name": r.key[3]}
                         for r in comp.resources if r.status != SYNCED]
        if auto.prune and not auto.allow_empty and comp.resources and all(r.requires_pruning for r in comp.resources):
            return f"Skipping sync attempt to {desired}: auto-sync will wipe out all resources", None
        retry = policy.retry if policy.retry is not None else Retry(limit=self.settings.automated_retry_limit)
        op = {"sync": {"revision": desired, "prune": auto.prune,
                       "syncOptions": [f"{k}={v}" for k, v in policy.sync_options.items()]},
              "initiatedBy": {"automated": True}, "retry": _retry_dict(retry), "_retry": retry}
        if count:
            op["sync"]["autoHealAttemptsCount"] = count
        if resources is not None:
            op["sync"]["resources"] = resources
        return "", op

    def _self_heal_remaining(self, count: int, finished: float | None) -> float:
        """``selfHealRemainingBackoff``: the back-off of attempt ``count`` minus the time since the last operation."""
        duration, factor, cap = self.settings.timings.self_heal_backoff
        delay = backoff_step_delay(count, duration, factor, cap)
        elapsed = self.env.now - finished if finished is not None else 0.0
        return delay - elapsed

    def _skip(self, reason: str, **detail: Any) -> None:
        self.log.record(COMPONENT, "AutoSyncSkipped", self.key, revision=self.revision or "",
                               detail={"reason": f"Skipping auto-sync: {reason}", **detail})

    # ------------------------------------------------------------------ operations

    def start_operation(self, op: dict[str, Any]) -> None:
        if self.operation is not None:
            raise LabkitError(f"another operation is already in progress for application {self.name}")
        self.operation = op
        self.op_process = self.env.process(self._run_operation(op))

    def _run_operation(self, op: dict[str, Any]) -> Generator[simpy.Event, Any, None]:
        env = self.env
        retry: Retry | None = op.pop("_retry", None)
        started = env.now
        state: dict[str, Any] = {"operation": op, "phase": "Running", "message": "", "startedAt": timestamp(started)}
        self._write_op(state)
        result = OperationResult("Error", "")
        revision = op["sync"].get("revision") or ""
        retry_count = 0
        while True:
            attempt_started = env.now
            try:
                result, revision = yield from self._attempt(op, state, started)
            except (LabkitError, TemporaryError) as err:
                result = OperationResult("Error", f"ComparisonError: {_error_text(err)}")
            except ApiError as err:  # reading the Application or the live state failed: the attempt errs
                result = OperationResult("Error", err.message)
            if result.phase in ("Failed", "Error") and retry is not None and retry.allows(retry_count):
                retry_at = attempt_started  # message uses the pre-increment count, as upstream
                wait_shown = retry.backoff.wait(retry_count)
                retry_count += 1
                state.update({"phase": "Running", "retryCount": retry_count, "finishedAt": timestamp(env.now),
                              "message": f"{result.message}. Retrying attempt #{retry_count} at "
                                         f"{_kitchen(env.now + wait_shown)}.",
                              "syncResult": {"resources": result.resources, "revision": revision,
                                             "source": _source_dict(self.spec) if self.spec else {}}})
                self._write_op(state)
                self.log.record(COMPONENT, "OperationRetrying", self.key, revision=revision,
                                detail={"message": result.message, "retryCount": retry_count,
                                        "wait": retry.backoff.wait(retry_count), "attemptStarted": retry_at})
                yield env.timeout(retry.backoff.wait(retry_count))
                state.pop("finishedAt", None)
                continue
            break
        message = result.message
        if result.phase in ("Failed", "Error") and retry_count > 0:
            message = f"{message} (retried {retry_count} times)."
        finished = env.now
        state.update({"phase": result.phase, "message": message, "finishedAt": timestamp(finished),
                      "syncResult": {"resources": result.resources, "revision": revision,
                                     "source": _source_dict(self.spec) if self.spec else {}}})
        if retry_count:
            state["retryCount"] = retry_count
        status = self._write_op(state, history=(result.phase == "Succeeded" and not op["sync"].get("resources")),
                                revision=revision, started=started, op=op)
        while not self._last_write_ok:  # RetryUntilSucceed: the operation ends only once its state is stored
            yield env.timeout(OPERATION_STATE_RETRY)
            status = self.last_status
            self._last_write_ok = self._write(status)
        self.log.record(COMPONENT, "OperationCompleted", self.key, revision=revision,
                        detail={"phase": result.phase, "message": message, "started": started,
                                "duration": finished - started, "retries": retry_count,
                                "selfHeal": bool(op["sync"].get("resources"))})
        self.operation = None
        self.op_process = None
        self.last_status = status
        self.request_refresh(LATEST)

    def _attempt(self, op: dict[str, Any], state: dict[str, Any],
                 started: float) -> Generator[simpy.Event, Any, tuple[OperationResult, str]]:
        env = self.env
        obj = self.client.get(self.namespace, self.name)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return OperationResult("Error", "application is being deleted"), ""
        spec = self._spec(obj)
        self.spec = spec
        dest_name, cluster = self.destinations.destination(spec)
        revision = op["sync"].get("revision") or spec.source.target_revision
        if len(revision) != 40:
            yield env.timeout(self.settings.timings.draw(self.rng, "git_ls_remote"))
            revision = self.repo_server.resolve(spec.source.repo_url, revision)
        targets = yield from self.targets_at(spec, revision, dest_name)
        rules = list(spec.ignore_differences) + self.settings.ignore_rules()
        fresh = self.comparison
        if fresh is not None and self._compared_at == env.now and fresh.revision == revision \
                and fresh.targets is targets:
            comp = fresh  # the refresh that started this operation compared at this very instant
        else:
            comp = self._compare(spec, targets, cluster, dest_name, rules, self.last_status or obj.get("status"))
        self._watch(dest_name, targets)
        options = dict(spec.sync_policy.sync_options)
        for item in op["sync"].get("syncOptions") or []:
            k, _, v = item.partition("=")
            options[k] = v

        def progress(phase: str, message: str, resources: list[dict[str, Any]]) -> None:
            if state.get("message") != message or state.get("phase") != phase:
                state.update({"phase": "Running", "message": message,
                              "syncResult": {"resources": resources, "revision": revision,
                                             "source": _source_dict(spec)}})
                if phase == "Running":
                    self._write_op(state)

        ctx = SyncContext(
            env=env, cluster=cluster, app=spec, comparison=comp, revision=revision,
            prune=bool(op["sync"].get("prune")), options=options, resources=op["sync"].get("resources"),
            started_unix=int((_EPOCH + timedelta(seconds=started)).timestamp()), rules=rules,
            namespaced=lambda av, k: self.cache.namespaced(dest_name, av, k), wake=self.op_wake,
            record=lambda ev, subject, detail: self.log.record(COMPONENT, ev, self.key, revision=revision,
                                                               detail={"resource": subject, **detail}),
            deletion_approved=self._deletion_approved, verified=self.cache.verified, cluster_name=dest_name,
            get=self.cache.live_getter(dest_name),
            api_call=self.settings.engine_timings.api_call, wave_delay=self.settings.timings.sync_wave_delay,
            poll=self.settings.timings.operation_poll, started_at=started, on_progress=progress,
        )
        result = yield from SyncRun(ctx).run()
        return result, revision

    def _deletion_approved(self) -> float | None:
        obj = self.client.get(self.namespace, self.name)
        ann = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        return _parse_ts(ann.get(DELETION_APPROVED_ANNOTATION))

    def _write_op(self, state: dict[str, Any], *, history: bool = False, revision: str = "",
                  started: float = 0.0, op: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.last_status:
            obj: dict[str, Any] | None = {"status": self.last_status}  # we are the only writer of the status
        else:
            try:
                obj = self.client.get(self.namespace, self.name)
            except ApiError:
                obj = {"status": {}}  # the first refresh has not run yet: nothing of ours to keep
        status = dict((obj or {}).get("status") or {})
        st = {k: v for k, v in state.items()}
        st["operation"] = {k: v for k, v in st["operation"].items() if not k.startswith("_")}
        status["operationState"] = st
        if history and self.spec is not None:
            hist = list(status.get("history") or [])
            next_id = max([h.get("id", -1) for h in hist] + [-1]) + 1
            entry = {"revision": revision, "deployedAt": timestamp(self.env.now), "id": next_id,
                     "source": _source_dict(self.spec), "deployStartedAt": timestamp(started),
                     "initiatedBy": (op or {}).get("initiatedBy", {})}
            hist.append(entry)
            limit = self.spec.revision_history_limit
            status["history"] = hist[-limit:] if limit > 0 else hist
        self._last_write_ok = self._write(status) if obj is not None else True
        return status

    # ------------------------------------------------------------------ deletion

    def _finalize(self, obj: dict[str, Any]) -> Generator[simpy.Event, Any, None]:
        md = obj.get("metadata") or {}
        finalizers = [f for f in md.get("finalizers") or [] if f in RESOURCES_FINALIZERS]
        if not finalizers:
            yield self.env.timeout(self.settings.timings.operation_poll) | self._wake
            return
        if self.op_process is not None and self.op_process.is_alive:
            yield self.op_process  # the running operation ends (its next attempt sees the deletion)
        background = any(f.endswith("/background") for f in finalizers)
        try:
            spec = self._spec(obj)
            dest_name, cluster = self.destinations.destination(spec)
        except LabkitError:
            spec, dest_name, cluster = None, "", None
        remaining = []
        if cluster is not None and spec is not None:
            app_opts = dict(spec.sync_policy.sync_options)
            for api_version, key in known_from_status(obj.get("status")):
                g, kind, ns, name = key
                try:
                    live = cluster.get(api_version, kind, name, ns or None)
                except ApiError:
                    continue
                if live is None or not owns(self.name, live, self.cache.namespaced(dest_name, api_version, kind)):
                    continue
                if SyncOptions.for_object(app_opts, live).has("Delete", "false"):
                    continue
                remaining.append(live)
                if not (live.get("metadata") or {}).get("deletionTimestamp"):
                    try:
                        cluster.delete(api_version, kind, name, ns or None,
                                       propagation="Background" if background else "Foreground")
                        self.log.record(COMPONENT, "ResourceDeleted", self.key,
                                        detail={"resource": f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}",
                                                "reason": "cascade"})
                    except ApiError as err:
                        if err.reason != "NotFound":
                            self.log.record(COMPONENT, "DeletionFailed", self.key, detail={"message": err.message})
            if self.settings.engine_timings.api_call > 0 and remaining:
                yield self.env.timeout(len(remaining) * self.settings.engine_timings.api_call)
            still = []
            for live in remaining:
                lmd = live["metadata"]
                try:
                    if cluster.get(live["apiVersion"], live["kind"], lmd["name"], lmd.get("namespace")) is not None:
                        still.append(live)
                except ApiError:
                    pass
            if still:
                yield self.env.timeout(self.settings.timings.operation_poll) | self._wake
                self.request_refresh(RECENT)
                return
        self.client.remove_finalizers(obj, finalizers)
        self.log.record(COMPONENT, "ApplicationFinalized", self.key, detail={"finalizers": finalizers})
        self.request_refresh(RECENT)


def _error_text(err: Exception) -> str:
    """A LabkitError that names a file keeps it (``app/c.yaml: line 5 ...``); otherwise just the message."""
    if isinstance(err, LabkitError):
        return str(err) if err.file else err.detail
    return getattr(err, "message", "") or str(err)


def backoff_step_delay(count: int, duration: float, factor: float, cap: float) -> float:
    """The delay k8s ``wait.Backoff.Step()`` returns on its ``count``-th call (0 when ``count`` is 0)."""
    d, steps, delay = duration, count, 0.0
    for _ in range(count):
        if steps < 1:
            delay = d
            continue
        steps -= 1
        delay = d
        nd = d * factor
        if cap > 0 and nd > cap:
            d, steps = cap, 0
        else:
            d = nd
    return delay


def _source_dict(spec: ApplicationSpec | None) -> dict[str, Any]:
    if spec is None:
        return {}
    s = spec.source
    out: dict[str, Any] = {"repoURL": s.repo_url, "targetRevision": s.target_revision}
    if s.path:
        out["path"] = s.path
    return out


def _source_key(source: Any) -> tuple[str, str]:
    if not isinstance(source, dict):
        return ("", "")
    return (source.get("repoURL", ""), source.get("path", ""))


def _retry_dict(retry: Retry) -> dict[str, Any]:
    b: Backoff = retry.backoff
    return {"limit": retry.limit, "backoff": {"duration": f"{b.duration:g}s", "factor": b.factor,
                                              "maxDuration": f"{b.max_duration:g}s"}}
