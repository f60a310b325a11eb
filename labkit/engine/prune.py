"""Prune: delete what was applied before and is no longer desired — safely.

Flux's garbage collection works from the inventory, never from a label
selector: the stale set is ``old inventory − new inventory``, and each stale
object is deleted only if it still carries the caller's owner labels (for a
Kustomization ``kustomize.toolkit.fluxcd.io/name`` and ``.../namespace``) and
none of the caller's exclusions (Flux: ``kustomize.toolkit.fluxcd.io/prune:
disabled``; ``labkit.flux.policy``).  Both come from the caller, as
``fluxcd/pkg/ssa``'s ``DeleteOptions`` Inclusions / Exclusions do: the engine
knows no dialect's label or annotation names.  An object somebody else took
over (its labels changed) or protected is *skipped*, not deleted.
Objects whose deletion failed stay in the inventory so the next reconcile tries
again.  Deletion order is the reverse of the apply order, so workloads go before
the Namespaces and CRDs they live in.

The owner-label check is the safeguard against flux2 #1366 (pruning a namespace
Flux never created); the annotation is the per-object opt-out for things like
databases whose custom resource must outlive its manifest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generator, Iterable, Mapping

import simpy

from labkit.core.cluster import Cluster
from labkit.engine.apply import EngineTimings, seam_latency
from labkit.engine.changeset import Action, ChangeSet, ChangeSetEntry
from labkit.engine.inventory import InventoryEntry
from labkit.engine.ordering import flux_sort_key
from labkit.core.errors import ApiError


@dataclass
class PruneResult:
    changeset: ChangeSet
    failed: list[tuple[InventoryEntry, str]] = field(default_factory=list)
    kept: list[InventoryEntry] = field(default_factory=list)  # deletion failed: stays in the inventory


def prune(
    env: simpy.Environment,
    cluster: Cluster,
    stale: Iterable[InventoryEntry],
    *,
    owner_labels: Mapping[str, str],
    exclusions: Mapping[str, str] | None = None,
    propagation: str = "Background",
    timings: EngineTimings | None = None,
) -> Generator[simpy.Event, Any, PruneResult]:
    """Delete the ``stale`` entries that still carry ``owner_labels`` (see the module docstring).

    An object which carries any of the ``exclusions`` (label or annotation key →
    value, compared case-insensitively, like fluxcd/pkg/ssa's
    ``DeleteOptions.Exclusions``) is skipped.
    """
    timings = timings or EngineTimings()
    excluded = dict(exclusions or {})
    result = PruneResult(ChangeSet())
    entries = sorted(stale, key=lambda e: flux_sort_key(e.to_ref()), reverse=True)
    requests = 0
    for entry in entries:
        ref = entry.to_ref()
        oid = entry.object_id
        requests += 1
        try:
            live = cluster.get(ref["apiVersion"], oid.kind, oid.name, oid.namespace or None)
        except ApiError as err:
            if err.reason == "NotFound":  # the kind itself is gone (CRD deleted)
                continue
            result.failed.append((entry, err.message))
            result.kept.append(entry)
            continue
        if live is None:
            continue
        md = live.get("metadata") or {}
        labels = md.get("labels") or {}
        annotations = md.get("annotations") or {}
        if any(labels.get(k) != v for k, v in owner_labels.items()):
            result.changeset.add(ChangeSetEntry.for_object(live, Action.SKIPPED))
            continue
        if any(str(m.get(k) or "").lower() == v.lower() != "" for k, v in excluded.items() for m in (labels, annotations)):
            result.changeset.add(ChangeSetEntry.for_object(live, Action.SKIPPED))
            continue
        if md.get("deletionTimestamp"):
            result.changeset.add(ChangeSetEntry.for_object(live, Action.DELETED))
            continue
        try:
            cluster.delete(ref["apiVersion"], oid.kind, oid.name, oid.namespace or None, propagation=propagation)
            requests += 1
            result.changeset.add(ChangeSetEntry.for_object(live, Action.DELETED))
        except ApiError as err:
            result.failed.append((entry, f"{entry.object_id.subject} delete failed ({err.reason}): {err.message}"))
            result.kept.append(entry)
    yield env.timeout(requests * timings.api_call + seam_latency(cluster))
    return result
