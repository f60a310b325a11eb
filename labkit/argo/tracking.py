"""Resource tracking: how Argo CD knows which live objects belong to which Application.

Argo CD 3.x tracks by annotation by default (``application.resourceTrackingMethod:
annotation``): every object it applies carries

    argocd.argoproj.io/tracking-id: <app-name>:<group>/<kind>:<namespace>/<name>

(``util/argo/resource_tracking.go``, ``BuildAppInstanceValue``; the namespace of
an object without one — a cluster-scoped object — is the Application's
destination namespace).  Unlike the older ``app.kubernetes.io/instance`` label,
the value names the object itself, so an object that merely *copied* the
annotation from another (an operator cloning metadata, argo-cd #15472) is not
mistaken for a managed one: ``owns`` checks the whole id against the object's
own identity, and only a matching object can be pruned.

``parse_tracking_id`` refuses anything that is not in the
``<app>:<group>/<kind>:<namespace>/<name>`` form with Argo's message
``wrong resource tracking format, should be <application-name>:<group>/<kind>:<namespace>/<name>``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from labkit.core.errors import LabkitError

__all__ = ["TRACKING_ANNOTATION", "TrackingId", "tracking_id", "parse_tracking_id", "app_of", "owns", "set_tracking"]

TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"


@dataclass(frozen=True)
class TrackingId:
    app: str
    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.app}:{self.group}/{self.kind}:{self.namespace}/{self.name}"


def _group(obj: Mapping[str, Any]) -> str:
    av = obj.get("apiVersion") or ""
    return av.split("/")[0] if "/" in av else ""


def tracking_id(app: str, obj: Mapping[str, Any], default_namespace: str = "") -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace") or default_namespace
    return str(TrackingId(app, _group(obj), obj.get("kind") or "", ns, md.get("name") or ""))


def parse_tracking_id(value: str) -> TrackingId:
    parts = value.split(":", 2)
    if len(parts) != 3:
        raise LabkitError("wrong resource tracking format, should be <application-name>:<group>/<kind>:<namespace>/<name>")
    gk, nn = parts[1].split("/"), parts[2].split("/")
    if len(gk) != 2 or len(nn) != 2:
        raise LabkitError("wrong resource tracking format, should be <application-name>:<group>/<kind>:<namespace>/<name>")
    return TrackingId(parts[0], gk[0], gk[1], nn[0], nn[1])


def app_of(obj: Mapping[str, Any] | None) -> str | None:
    """The Application named by an object's tracking annotation (None if absent or malformed)."""
    if not obj:
        return None
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    value = ann.get(TRACKING_ANNOTATION)
    if not value:
        return None
    head, sep, _ = value.partition(":")
    return head if sep else None


def owns(app: str, obj: Mapping[str, Any], namespaced: bool = True) -> bool:
    """Whether ``obj`` carries *its own* tracking id for ``app`` (not one copied from another object)."""
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    value = ann.get(TRACKING_ANNOTATION)
    if not value:
        return False
    try:
        tid = parse_tracking_id(value)
    except LabkitError:
        return False
    md = obj.get("metadata") or {}
    if tid.app != app or tid.kind != obj.get("kind") or tid.group != _group(obj) or tid.name != md.get("name"):
        return False
    return not namespaced or tid.namespace == (md.get("namespace") or "")


def set_tracking(obj: dict[str, Any], app: str, default_namespace: str) -> None:
    """Add the tracking annotation in place (the object's metadata dicts are replaced, not mutated)."""
    md = dict(obj.get("metadata") or {})
    ann = dict(md.get("annotations") or {})
    ann[TRACKING_ANNOTATION] = tracking_id(app, obj, default_namespace)
    md["annotations"] = ann
    obj["metadata"] = md
