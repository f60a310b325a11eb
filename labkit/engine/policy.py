"""Per-object policy: which annotations tell the engine to skip, keep, force or spare an object.

A GitOps tool lets users steer it object by object with annotations: Flux reads
``kustomize.toolkit.fluxcd.io/ssa: Ignore`` (leave this object alone),
``.../ssa: IfNotPresent`` (create it once, never correct it), ``.../force:
Enabled`` (recreate it when an immutable field changes) and ``.../prune:
disabled`` (never garbage-collect it); Argo CD has its own spellings
(``argocd.argoproj.io/sync-options: Prune=false``...).  The mechanics behind
those words — skip, create-only, recreate, spare — are the same whoever names
them, so they belong to the engine; the *names* belong to the dialect.

``fluxcd/pkg/ssa`` draws the line the same way: its ``ResourceManager`` knows
nothing about Kustomizations, and kustomize-controller hands it the owner
(field manager and owner labels, plain arguments here) plus selector maps in ``ApplyOptions``
(``ExclusionSelector``, ``IfNotPresentSelector``, ``ForceSelector``) and
``DeleteOptions`` (``Exclusions``).  ``Policy`` is that bundle of selectors.  The engine's default
is ``Policy()``, which matches nothing: a caller that does not name a dialect
(a push pipeline, ``apply_manifests``) gets plain server-side apply semantics,
and Flux passes ``labkit.flux.policy.FLUX_POLICY``.

Matching is case-insensitive on the value, as in Flux (``Enabled`` and
``enabled`` both force).  Apply-side selectors look at annotations only (what
labkit has always honoured); prune exclusions look at labels and annotations,
like ``ssa.AnyInMetadata``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Selector", "Policy", "annotation"]


def annotation(obj: Mapping[str, Any], key: str) -> str:
    """The value of one annotation of ``obj``, ``""`` when absent."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(key, "")


@dataclass(frozen=True)
class Selector:
    """An annotation ``key`` whose value equals ``value`` (case-insensitive); ``reason`` names it in a plan."""

    key: str
    value: str
    reason: str = ""

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj``'s annotation ``key`` equals ``value``, ignoring case."""
        return str(annotation(obj, self.key)).lower() == self.value.lower()

    def describe(self) -> str:
        return self.reason or f"{self.key}: {self.value}"


def _first(selectors: tuple[Selector, ...], obj: Mapping[str, Any]) -> Selector | None:
    return next((s for s in selectors if s.matches(obj)), None)


@dataclass(frozen=True)
class Policy:
    """The annotations a dialect uses to steer the engine (see the module docstring).

    ``skip``: the object is excluded from the apply (``skipped``), first match names the reason.
    ``if_not_present``: created when absent, ``skipped`` when it exists.
    ``force``: an immutable-field refusal recreates the object (as ``ApplyOptions.force`` does for all).
    ``prune_exclusions``: label or annotation key → value that spares an object from prune.
    """

    skip: tuple[Selector, ...] = ()
    if_not_present: tuple[Selector, ...] = ()
    force: tuple[Selector, ...] = ()
    prune_exclusions: Mapping[str, str] = field(default_factory=dict)

    def skip_reason(self, obj: Mapping[str, Any]) -> str | None:
        """Why ``obj`` is excluded from the apply, or None when it is not."""
        s = _first(self.skip, obj)
        return s.describe() if s else None

    def create_only(self, obj: Mapping[str, Any]) -> str | None:
        """Why ``obj`` is only created, never updated, or None."""
        s = _first(self.if_not_present, obj)
        return s.describe() if s else None

    def forced(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` asks to be recreated on an immutable-field change."""
        return _first(self.force, obj) is not None
