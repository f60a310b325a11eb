"""The CustomResourceDefinitions Flux installs, in the minimal form labkit needs.

``flux bootstrap`` installs the toolkit's CRDs before anything else; labkit's
``FluxSystem.install()`` applies these so GitRepository and Kustomization objects
can live in the (simulated or real) cluster exactly as Flux's docs write them,
with a ``status`` subresource the controllers report through.  The schemas are
left open (``x-kubernetes-preserve-unknown-fields``): validation of the specs is
done by ``labkit.flux.api`` with clear, file-and-field error messages.
"""
from __future__ import annotations

from typing import Any


def _crd(group: str, kind: str, plural: str, short: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {"app.kubernetes.io/part-of": "flux"}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "shortNames": short},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


def flux_crds() -> list[dict[str, Any]]:
    return [
        _crd("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories", ["gitrepo"]),
        _crd("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", ["ks"]),
    ]
