"""The CustomResourceDefinitions Argo CD installs, in the minimal form labkit needs.

``ArgoSystem.install()`` applies these (plus the ``argocd`` namespace and an
empty ``argocd-cm``) to the management cluster, so Applications and
ApplicationSets live there exactly as Argo's docs write them, with a ``status``
subresource the controllers report through.  Schemas are left open
(``x-kubernetes-preserve-unknown-fields``): the specs are validated by
``labkit.argo.api`` with file-and-field messages, as ``argocd app create``
would reject them.
"""
from __future__ import annotations

from typing import Any

from labkit.argo.api import GROUP

__all__ = ["argo_crds"]


def _crd(kind: str, plural: str, short: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "argocd"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": short},
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


def argo_crds() -> list[dict[str, Any]]:
    return [
        _crd("Application", "applications", ["app", "apps"]),
        _crd("ApplicationSet", "applicationsets", ["appset", "appsets"]),
        _crd("AppProject", "appprojects", ["appproj", "appprojs"]),
    ]
