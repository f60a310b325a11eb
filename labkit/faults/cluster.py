"""Fault injection and auditing at the ``Cluster`` seam.

``FaultyCluster(inner, plan, rng)`` implements ``labkit.core.cluster.Cluster`` by
delegating every call to ``inner`` — the embedded simulator, a real cluster
behind the official client, or another wrapper — after asking the
``FaultPlan`` whether this call should fail.  Because it only speaks the seam,
it works the same on the simulator and on a real cluster: the engine above it
cannot tell an injected ``503`` from a real one.

What a failing call looks like
==============================

Errors are ``labkit.core.errors.ApiError`` in the API server's own words, so the
engine's handling is exercised exactly as a real failure would exercise it:

* ``internal``    — ``InternalError`` 500, ``Internal error occurred: etcdserver: leader changed``;
* ``unavailable`` — ``ServiceUnavailable`` 503, ``the server is currently unable to handle the request``;
* ``throttle``    — ``TooManyRequests`` 429 (API Priority and Fairness),
  ``Too many requests, please try again later.``, with ``retry_after`` and
  ``details.retryAfterSeconds`` (the ``Retry-After`` header);
* ``conflict``    — ``Conflict`` 409, ``Operation cannot be fulfilled on configmaps "a": the object
  has been modified; please apply your changes to the latest version and try again``;
* ``timeout``     — ``Timeout`` 504, ``the server was unable to return a response in the time
  allotted, but may still be processing the request``.  With ``lost_response``
  the write is performed first and only the answer is lost — the nastiest
  timeout, which checks that every write the engine makes is idempotent.

Slow responses
==============

The engine calls the seam synchronously and accounts for time itself: its
stages ``yield env.timeout(...)`` for the modelled API latency
(``EngineTimings.api_call``).  A ``slow`` fault therefore cannot sleep inside
the call (in virtual time nothing would move; in real time it would block the
whole SimPy loop).  Instead ``FaultyCluster`` adds the fault's ``latency`` to a
running total that the engine drains with ``take_latency()`` at the points where
it yields anyway (``labkit.engine.apply.seam_latency``: after planning and after
each apply stage, after a prune, on every health poll, and after each reconcile
in the Flux dispatch loop).  The reconcile thus takes longer on the clock, its
health-check budget shrinks and its stage durations in the event log grow,
exactly as they would with a slow API server; against a real cluster the same
yield waits that many real seconds on the ``RealtimeEnvironment``.

Auditing
========

``AuditCluster(inner)`` is the other half of the property machinery: a
transparent wrapper that journals every *write that reached the cluster*
(apply, update, delete, patch_status; dry runs excluded), and for every delete
the labels and annotations the object carried just before it — which is what
"nothing without ownership marks is ever deleted" and "nothing marked
``prune: disabled`` is deleted" are checked against.  Stack it under the fault
wrapper (``FaultyCluster(AuditCluster(sim), plan, rng)``) so that it sees only
calls that were not refused.

Both wrappers forward ``watch`` when the inner cluster has it (and only then:
``getattr(cluster, "watch", None)`` keeps meaning "can this backend watch"),
and any other attribute (``env``, ``log``, ``store``, ``kubectl_edit`` ...) so a
wrapped ``SimCluster`` still works as a lab.  Watch events are never faulted:
a dropped watch in Kubernetes shows up as a relist, which the controllers
already do on their intervals.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from labkit.core.cluster import Cluster, Obj
from labkit.core.errors import ApiError, qualified_resource
from labkit.core.events import object_key
from labkit.faults.plan import Fault, FaultPlan

__all__ = ["FaultyCluster", "AuditCluster", "SeamWrite", "injected_error"]

_WRITES = ("apply", "update", "delete", "patch_status")


def injected_error(fault: Fault, verb: str, api_version: str, kind: str, name: str) -> ApiError:
    """The ``ApiError`` a real API server would answer for this fault kind."""
    if fault.kind == "internal":
        return ApiError("InternalError", "Internal error occurred: etcdserver: leader changed", code=500)
    if fault.kind == "unavailable":
        return ApiError("ServiceUnavailable", "the server is currently unable to handle the request", code=503)
    if fault.kind == "throttle":
        seconds = max(int(round(fault.retry_after)), 1)
        return ApiError("TooManyRequests", "Too many requests, please try again later.", code=429,
                        details={"retryAfterSeconds": seconds}, retry_after=float(fault.retry_after))
    if fault.kind == "conflict":
        resource = qualified_resource(api_version, kind) if kind else "objects"
        return ApiError("Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                        "modified; please apply your changes to the latest version and try again", code=409,
                        details={"name": name, "kind": kind})
    if fault.kind == "timeout":
        return ApiError("Timeout", "the server was unable to return a response in the time allotted, "
                        "but may still be processing the request", code=504)
    raise ValueError(f"fault kind {fault.kind!r} is not an API error")


def _clock_of(inner: Any, env: Any, clock: Callable[[], float] | None) -> Callable[[], float]:
    if clock is not None:
        return clock
    if env is None:
        env = getattr(inner, "env", None)
    if env is not None:
        return lambda: float(env.now)
    return lambda: 0.0


def _ref(obj: Obj) -> tuple[str, str, str, str | None]:
    md = obj.get("metadata") or {} if isinstance(obj, dict) else {}
    return (obj.get("apiVersion", "") if isinstance(obj, dict) else "",
            obj.get("kind", "") if isinstance(obj, dict) else "", md.get("name", ""), md.get("namespace"))


class FaultyCluster:
    """A ``Cluster`` that injects the faults of a ``FaultPlan`` (see the module docstring)."""

    def __init__(self, inner: Cluster, faults: FaultPlan, rng: random.Random, *, env: Any = None,
                 clock: Callable[[], float] | None = None):
        self.inner = inner
        self.faults = faults
        self.rng = rng
        self.name = getattr(inner, "name", "faulty")
        self._now = _clock_of(inner, env, clock)
        self._latency = 0.0
        self.calls = 0

    def __getattr__(self, item: str) -> Any:  # watch, env, log, store, kubectl_edit ... of the inner cluster
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)

    def __repr__(self) -> str:
        return f"FaultyCluster({self.inner!r}, {self.faults!r})"

    # -------------------------------------------------------------- latency

    def take_latency(self) -> float:
        """Seconds of injected latency since the last call; the engine yields them on its clock."""
        out, self._latency = self._latency, 0.0
        return out

    # -------------------------------------------------------------- the gate

    def _call(self, verb: str, api_version: str, kind: str, name: str, namespace: str | None, dry_run: bool,
              fn: Callable[[], Any]) -> Any:
        self.calls += 1
        key = object_key(kind, namespace, name) if name else (f"{kind}/{namespace}" if namespace else kind)
        fault = self.faults.draw("api", verb, kind, self._now(), self.rng, dry_run=dry_run, obj=key, name=name)
        if fault is None:
            return fn()
        if fault.kind == "slow":
            self._latency += fault.latency
            return fn()
        if fault.kind == "timeout" and fault.lost_response and verb in _WRITES and not dry_run:
            try:
                fn()  # the server did the work; only the response is lost
            except ApiError:
                pass
        raise injected_error(fault, verb, api_version, kind, name)

    # -------------------------------------------------------------- the seam

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self._call("get", api_version, kind, name, namespace, False,
                          lambda: self.inner.get(api_version, kind, name, namespace))

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        return self._call("list", api_version, kind, "", namespace, False,
                          lambda: self.inner.list(api_version, kind, namespace, label_selector))

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False, dry_run: bool = False) -> Obj:
        av, kind, name, ns = _ref(obj)
        return self._call("apply", av, kind, name, ns, dry_run,
                          lambda: self.inner.apply(obj, field_manager=field_manager, force=force, dry_run=dry_run))

    def update(self, obj: Obj, *, field_manager: str, dry_run: bool = False) -> Obj:
        av, kind, name, ns = _ref(obj)
        return self._call("update", av, kind, name, ns, dry_run,
                          lambda: self.inner.update(obj, field_manager=field_manager, dry_run=dry_run))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background", dry_run: bool = False) -> Obj | None:
        return self._call("delete", api_version, kind, name, namespace, dry_run,
                          lambda: self.inner.delete(api_version, kind, name, namespace, propagation=propagation,
                                                    dry_run=dry_run))

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self._call("is_namespaced", api_version, kind, "", None, False,
                          lambda: self.inner.is_namespaced(api_version, kind))

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj, *,
                     field_manager: str) -> Obj:
        return self._call("patch_status", api_version, kind, name, namespace, False,
                          lambda: self.inner.patch_status(api_version, kind, name, namespace, status,
                                                          field_manager=field_manager))


@dataclass(frozen=True)
class SeamWrite:
    """One write that reached the cluster, as ``AuditCluster`` saw it."""

    time: float
    verb: str
    object: str
    field_manager: str = ""
    ok: bool = True
    reason: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # deletes: the live object's labels before the call
    annotations: dict[str, str] = field(default_factory=dict)  # deletes: ... and its annotations
    existed: bool = True  # deletes: whether there was anything to delete


class AuditCluster:
    """A transparent ``Cluster`` that journals every write reaching the cluster (see the module docstring)."""

    def __init__(self, inner: Cluster, *, env: Any = None, clock: Callable[[], float] | None = None):
        self.inner = inner
        self.name = getattr(inner, "name", "audit")
        self._now = _clock_of(inner, env, clock)
        self.writes: list[SeamWrite] = []

    def __getattr__(self, item: str) -> Any:
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)

    def deletes(self) -> list[SeamWrite]:
        """The delete calls that found an object to delete."""
        return [w for w in self.writes if w.verb == "delete" and w.existed]

    def _journal(self, verb: str, key: str, manager: str, fn: Callable[[], Any], **extra: Any) -> Any:
        try:
            out = fn()
        except ApiError as err:
            self.writes.append(SeamWrite(self._now(), verb, key, manager, False, err.reason, **extra))
            raise
        self.writes.append(SeamWrite(self._now(), verb, key, manager, True, "", **extra))
        return out

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.inner.get(api_version, kind, name, namespace)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: dict[str, str] | None = None) -> list[Obj]:
        return self.inner.list(api_version, kind, namespace, label_selector)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return self.inner.is_namespaced(api_version, kind)

    def apply(self, obj: Obj, *, field_manager: str, force: bool = False, dry_run: bool = False) -> Obj:
        if dry_run:
            return self.inner.apply(obj, field_manager=field_manager, force=force, dry_run=True)
        av, kind, name, ns = _ref(obj)
        return self._journal("apply", object_key(kind, ns, name), field_manager,
                             lambda: self.inner.apply(obj, field_manager=field_manager, force=force))

    def update(self, obj: Obj, *, field_manager: str, dry_run: bool = False) -> Obj:
        if dry_run:
            return self.inner.update(obj, field_manager=field_manager, dry_run=True)
        av, kind, name, ns = _ref(obj)
        return self._journal("update", object_key(kind, ns, name), field_manager,
                             lambda: self.inner.update(obj, field_manager=field_manager))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background", dry_run: bool = False) -> Obj | None:
        if dry_run:
            return self.inner.delete(api_version, kind, name, namespace, propagation=propagation, dry_run=True)
        try:
            live = self.inner.get(api_version, kind, name, namespace)
        except ApiError:
            live = None
        md = (live or {}).get("metadata") or {}
        key = object_key(kind, md.get("namespace") or namespace, name)
        return self._journal("delete", key, "", lambda: self.inner.delete(
            api_version, kind, name, namespace, propagation=propagation),
            labels=dict(md.get("labels") or {}), annotations=dict(md.get("annotations") or {}),
            existed=live is not None)

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None, status: Obj, *,
                     field_manager: str) -> Obj:
        return self._journal("patch_status", object_key(kind, namespace, name), field_manager,
                             lambda: self.inner.patch_status(api_version, kind, name, namespace, status,
                                                             field_manager=field_manager))
