"""Small helpers the controllers share: API times, quantities, hashes, selectors, conditions.

Kubernetes serialises ``metav1.Time`` with one-second resolution, so every
time a controller reads back from an object (``lastTransitionTime``,
``lastUpdateTime``, ``startTime``) is the virtual time truncated to the second;
``parse_time`` turns the store's RFC 3339 strings back into virtual seconds and
the controllers compare *those*, as the real ones compare what their informers
decoded.

Virtual time has no millisecond skew: a controller that asked to be woken
"after 10 s" runs exactly 10 s later.  Where upstream compares a duration that
has just elapsed with a strict inequality that real clocks (always a little
late) satisfy, the simulator treats "exactly elapsed" as elapsed — a
stabilization window of 300 s no longer contains a recommendation made exactly
300 s ago, a pod ready for exactly ``minReadySeconds`` is available, a back-off
of 10 s has passed 10 s after the failure.  Each place this matters says so.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Iterable

from labkit.core.clock import EPOCH_UNIX, parse_time  # noqa: F401 - re-exported (the controllers import it from here)

FIELD_MANAGER = "kube-controller-manager"

__all__ = ["FIELD_MANAGER", "iso", "parse_time", "cpu_millicores", "format_millicores", "go_duration",
           "compute_hash", "selector_matches", "controller_ref", "new_controller_ref", "find_condition",
           "set_condition", "SAFE_ALPHABET"]

_formatted: dict[int, str] = {}


def iso(t: float) -> str:
    """Virtual seconds as the API's RFC 3339 timestamp (``labkit.core.clock.timestamp``, memoised per second)."""
    s = math.floor(t)
    out = _formatted.get(s)
    if out is None:
        if len(_formatted) > 200_000:
            _formatted.clear()
        out = _formatted[s] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH_UNIX + s))
    return out


def cpu_millicores(q: Any) -> int | None:
    """``"250m"`` → 250, ``"0.5"`` → 500, ``1`` → 1000; None when absent or malformed."""
    if q is None or isinstance(q, bool):
        return None
    if isinstance(q, (int, float)):
        return int(round(q * 1000))
    s = str(q).strip()
    try:
        if s.endswith("m"):
            return int(round(float(s[:-1])))
        return int(round(float(s) * 1000))
    except ValueError:
        return None


def format_millicores(m: int) -> str:
    """A millicore quantity as the API prints it (``resource.NewMilliQuantity(m, DecimalSI)``)."""
    m = int(m)
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` to the millisecond: ``500ms``, ``2.5s``, ``1m20s``, ``5m0s``."""
    ms = int(round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = f"{rem / 1000:.3f}".rstrip("0").rstrip(".")
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand.SafeEncodeString


def compute_hash(template: Any, collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-1a 32 of the template, its decimal digits safe-encoded.

    Upstream hashes a spew dump of the Go struct; labkit hashes canonical JSON, so the
    values differ from a real cluster's but have the same form (``web-5d9c8f7b4``) and the
    same stability: one template, one hash; a collision count perturbs it.
    """
    data = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str).encode()
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    if collision_count:
        for b in int(collision_count).to_bytes(4, "little"):
            h ^= b
            h = (h * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[c % len(SAFE_ALPHABET)] for c in str(h).encode())


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str] | None) -> bool:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) against labels; empty matches nothing."""
    if not selector:
        return False
    labels = labels or {}
    ml = selector.get("matchLabels") or {}
    me = selector.get("matchExpressions") or []
    if not ml and not me:
        return True  # the empty selector {} selects everything
    for k, v in ml.items():
        if labels.get(k) != v:
            return False
    for req in me:
        key, op, vals = req.get("key"), req.get("operator"), req.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    """``metav1.GetControllerOf``: the owner reference with ``controller: true``."""
    for r in obj["metadata"].get("ownerReferences") or ():
        if r.get("controller"):
            return r
    return None


def new_controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    """``metav1.NewControllerRef``: controller and blockOwnerDeletion both true."""
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def find_condition(conditions: Iterable[dict[str, Any]] | None, ctype: str) -> dict[str, Any] | None:
    for c in conditions or ():
        if c.get("type") == ctype:
            return c
    return None


def set_condition(conditions: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str,
                  now: float, *, probe_time: bool = False, update_time: bool = False) -> list[dict[str, Any]]:
    """Set one condition in place, keeping its lastTransitionTime when the status did not change."""
    ts = iso(now)
    for i, c in enumerate(conditions):
        if c.get("type") == ctype:
            new = dict(c)
            if c.get("status") != status:
                new["lastTransitionTime"] = ts
            new.update(status=status, reason=reason, message=message)
            if probe_time:
                new["lastProbeTime"] = ts
            if update_time:
                new["lastUpdateTime"] = ts
            conditions[i] = new
            return conditions
    new = {"type": ctype, "status": status}
    if probe_time:
        new["lastProbeTime"] = ts
    if update_time:
        new["lastUpdateTime"] = ts
    new.update(lastTransitionTime=ts, reason=reason, message=message)
    conditions.append(new)
    return conditions
