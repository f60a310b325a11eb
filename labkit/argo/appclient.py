"""The Application objects in the management cluster, as the application controller reads and writes them.

Argo CD's application controller talks to its own Applications through a
generated clientset: it gets them, patches their status, drops the
``argocd.argoproj.io/refresh`` annotation once it has honoured it, and removes
the resources finalizer when a cascading deletion is done.  ``AppClient`` is
that clientset over the management cluster's ``Cluster`` seam — the four calls
and nothing else, so the controller needs no back-reference to the assembly
that built it.

Field managers matter: every write is made as ``argocd-application-controller``
so the field ownership a test or a notebook inspects is Argo's.  A status patch
of an Application that has just gone (``NotFound``) is not an error — the
controller notices the deletion on its next read; any other API error reaches
the caller, which logs it and keeps the status in memory.
"""
from __future__ import annotations

from typing import Any

from labkit.argo.api import API_VERSION, APPLICATION_KIND
from labkit.core.cluster import Cluster
from labkit.core.errors import ApiError

__all__ = ["AppClient", "STATUS_MANAGER"]

STATUS_MANAGER = "argocd-application-controller"


class AppClient:
    """Reads and writes of Applications in the management cluster (see module docstring)."""

    def __init__(self, mgmt: Cluster):
        self.mgmt = mgmt

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The live Application, or None when it does not exist (ApiError on a failed read)."""
        return self.mgmt.get(API_VERSION, APPLICATION_KIND, name, namespace)

    def write_status(self, namespace: str, name: str, status: dict) -> None:
        """Patch the status subresource; an Application that has gone is not an error."""
        try:
            self.mgmt.patch_status(API_VERSION, APPLICATION_KIND, name, namespace, status, field_manager=STATUS_MANAGER)
        except ApiError as err:
            if err.reason != "NotFound":
                raise

    def clear_annotation(self, obj: dict, key: str) -> None:
        """Remove annotation ``key`` from the live object (best effort: a failed update is ignored)."""
        md = obj.get("metadata") or {}
        live = self.mgmt.get(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"))
        if live is None:
            return
        ann = (live["metadata"].get("annotations") or {})
        if key not in ann:
            return
        live["metadata"]["annotations"] = {k: v for k, v in ann.items() if k != key}
        live["metadata"].pop("managedFields", None)
        live.pop("status", None)
        try:
            self.mgmt.update(live, field_manager=STATUS_MANAGER)
        except ApiError:
            pass

    def remove_finalizers(self, obj: dict, finalizers: list[str]) -> None:
        """Remove ``finalizers`` from the live object (ApiError reaches the caller)."""
        md = obj.get("metadata") or {}
        live = self.mgmt.get(obj["apiVersion"], obj["kind"], md["name"], md.get("namespace"))
        if live is None:
            return
        live["metadata"]["finalizers"] = [f for f in live["metadata"].get("finalizers") or [] if f not in finalizers]
        live["metadata"].pop("managedFields", None)
        self.mgmt.update(live, field_manager=STATUS_MANAGER)
