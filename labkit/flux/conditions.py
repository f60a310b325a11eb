"""Flux status conditions: ``Ready``, ``Reconciling``, ``Stalled`` and their reasons.

Flux reports through standard Kubernetes conditions (fluxcd/pkg/apis/meta):
``Ready=True`` with reason ``ReconciliationSucceeded``; ``Ready=False`` with the
reason of the stage that failed (``ArtifactFailed``, ``BuildFailed``,
``HealthCheckFailed``, ``DependencyNotReady``, ``PruneFailed``,
``ReconciliationFailed``); ``Reconciling=True`` while work is in progress.  A
condition's ``lastTransitionTime`` only moves when its status changes, so a
reconcile that changes nothing leaves the status byte-for-byte as it was.
"""
from __future__ import annotations

from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
HEALTHY = "Healthy"

SUCCEEDED = "ReconciliationSucceeded"
FAILED = "ReconciliationFailed"
PROGRESSING = "Progressing"
ARTIFACT_FAILED = "ArtifactFailed"
BUILD_FAILED = "BuildFailed"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
DEPENDENCY_NOT_READY = "DependencyNotReady"
PRUNE_FAILED = "PruneFailed"
GIT_OPERATION_FAILED = "GitOperationFailed"


def set_condition(status: dict[str, Any], ctype: str, value: bool | str, reason: str, message: str,
                  now: str, generation: int | None = None) -> None:
    conds: list[dict[str, Any]] = status.setdefault("conditions", [])
    value_s = value if isinstance(value, str) else ("True" if value else "False")
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") != value_s:
                c["lastTransitionTime"] = now
            c.update({"status": value_s, "reason": reason, "message": message})
            if generation is not None:
                c["observedGeneration"] = generation
            return
    new = {"type": ctype, "status": value_s, "reason": reason, "message": message, "lastTransitionTime": now}
    if generation is not None:
        new["observedGeneration"] = generation
    conds.append(new)
    conds.sort(key=lambda c: {READY: 0, RECONCILING: 1, STALLED: 2}.get(c["type"], 3))


def remove_condition(status: dict[str, Any], ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def get_condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    if not obj:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_ready(obj: dict[str, Any] | None) -> bool:
    c = get_condition(obj, READY)
    return bool(c and c.get("status") == "True")
