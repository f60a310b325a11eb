"""Flux's words for the engine's policies: kustomize-controller's owner and annotations.

The engine (``labkit.engine``) applies, skips, recreates and prunes without
knowing any GitOps tool's vocabulary; the caller says which annotation means
what (``labkit.engine.policy``).  This module is Flux's side of that contract,
the values kustomize-controller hands ``fluxcd/pkg/ssa`` in
``internal/controller/kustomization_controller.go``:

* ``OWNER``: field manager ``kustomize-controller``; owner labels
  ``kustomize.toolkit.fluxcd.io/name`` and ``.../namespace`` (``owner_labels``);
* ``ExclusionSelector`` — ``kustomize.toolkit.fluxcd.io/ssa: Ignore`` and
  ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` skip the object;
* ``IfNotPresentSelector`` — ``ssa: IfNotPresent`` creates it once, never
  corrects it afterwards;
* ``ForceSelector`` — ``kustomize.toolkit.fluxcd.io/force: Enabled`` recreates
  it when an immutable field changes;
* ``DeleteOptions.Exclusions`` — ``kustomize.toolkit.fluxcd.io/prune: disabled``
  spares it from garbage collection; when the Kustomization itself is deleted,
  ``reconcile: disabled`` spares it too (``FINALIZE_PRUNE_EXCLUSIONS``).

It imports nothing but the engine's policy types, so the scenarios, fault
soaks and repository checks that need one of these names do not load the
Flux controllers.
"""
from __future__ import annotations

from labkit.engine.policy import Policy, Selector

GROUP = "kustomize.toolkit.fluxcd.io"
FIELD_MANAGER = "kustomize-controller"
NAME_LABEL = f"{GROUP}/name"
NAMESPACE_LABEL = f"{GROUP}/namespace"
SSA_ANNOTATION = f"{GROUP}/ssa"
RECONCILE_ANNOTATION = f"{GROUP}/reconcile"
FORCE_ANNOTATION = f"{GROUP}/force"
PRUNE_ANNOTATION = f"{GROUP}/prune"

FLUX_POLICY = Policy(
    skip=(Selector(SSA_ANNOTATION, "Ignore", "ssa: Ignore"),
          Selector(RECONCILE_ANNOTATION, "disabled", "reconcile disabled")),
    if_not_present=(Selector(SSA_ANNOTATION, "IfNotPresent", "ssa: IfNotPresent"),),
    force=(Selector(FORCE_ANNOTATION, "Enabled"),),
    prune_exclusions={PRUNE_ANNOTATION: "disabled"},
)

FINALIZE_PRUNE_EXCLUSIONS = {**FLUX_POLICY.prune_exclusions, RECONCILE_ANNOTATION: "disabled"}


def owner_labels(name: str, namespace: str) -> dict[str, str]:
    """The labels marking an object as applied by Kustomization ``namespace/name``."""
    return {NAME_LABEL: name, NAMESPACE_LABEL: namespace}
