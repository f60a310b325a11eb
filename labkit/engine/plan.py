"""Plan: what applying the desired objects would do to the live cluster.

The plan stage is ``fluxcd/pkg/ssa``'s dry-run-and-compare, written against the
``Cluster`` seam only.  For every desired object it

1. honours the caller's per-object ``Policy`` (``labkit.engine.policy``): an
   object its ``skip`` selectors match, or its ``if_not_present`` selectors
   match and that already exists, becomes ``skipped`` (Flux's ``ssa: Ignore``,
   ``reconcile: disabled`` and ``ssa: IfNotPresent``; the engine itself knows
   no annotation names);
2. removes the fields the caller asked to ignore (``IgnoreRule``: JSON pointers
   with an optional target selector — Flux's ``spec.ignore``, the official fix for
   fields another controller owns such as ``/spec/replicas`` under an HPA);
3. server-side applies it as a **dry run** with ownership forced (Flux always
   forces), which runs the API server's own defaulting, merge and admission;
4. compares the dry-run result with the live object, ignoring server metadata
   and status: equal → ``unchanged`` (nothing will be written), different →
   ``configured`` with the drifted paths listed, absent → ``created``.

Every object is dry-run before anything is applied, and every failure is
collected: if any dry-run fails the plan raises ``DryRunFailed`` carrying all of
them in Flux's wording (``Deployment/default/web dry-run failed (Invalid):
Deployment.apps "web" is invalid: ...``) and nothing at all is applied.

``check_shape`` is the guard in front of all of this: an object whose
identity fields have the wrong JSON type (``metadata.labels`` as a list,
``metadata.name`` as a number — kustomize passes both through) is refused with
a ``LabkitError`` naming the object and the field, instead of crashing the
stages that build inventory ids, owner labels and apply order from them.

An object whose namespace is created by the same set (and does not exist yet)
cannot be dry-run before its namespace exists, on a real API server as here; the
plan marks it ``deferred`` and the apply stage dry-runs it right after the
namespaces are applied, before applying anything of its own stage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from labkit.core.cluster import Cluster, Obj
from labkit.engine.changeset import Action, ChangeSet, ChangeSetEntry, subject_of
from labkit.engine.normalize import IgnoreRule, apply_ignore, changed_paths
from labkit.engine.policy import Policy
from labkit.core.errors import ApiError, LabkitError

__all__ = ["PlanEntry", "Plan", "DryRunFailed", "dry_run_message", "comparable", "check_shape", "plan"]

NO_POLICY = Policy()


@dataclass
class PlanEntry:
    desired: Obj
    action: Action
    live: Obj | None = None
    dry_run: Obj | None = None
    drift: list[str] = field(default_factory=list)
    reason: str = ""
    deferred: bool = False

    @property
    def subject(self) -> str:
        return subject_of(self.desired)


@dataclass
class Plan:
    entries: list[PlanEntry]

    def changeset(self) -> ChangeSet:
        return ChangeSet([ChangeSetEntry.for_object(e.desired, e.action) for e in self.entries])

    def to_apply(self) -> list[PlanEntry]:
        return [e for e in self.entries if e.action in (Action.CREATED, Action.CONFIGURED) or e.deferred]

    def counts(self) -> dict[str, int]:
        return self.changeset().counts()


class DryRunFailed(Exception):
    """One or more objects failed the server-side dry-run; nothing was applied."""

    def __init__(self, failures: list[tuple[Obj, ApiError]]):
        self.failures = failures
        super().__init__("\n".join(dry_run_message(o, e) for o, e in failures))


def dry_run_message(obj: Obj, err: ApiError) -> str:
    return f"{subject_of(obj)} dry-run failed ({err.reason}): {err.message}"


def comparable(obj: Obj | None) -> Obj | None:
    """What drift detection compares: the object without server metadata and status."""
    if obj is None:
        return None
    md = obj.get("metadata") or {}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    out["metadata"] = {k: md[k] for k in ("labels", "annotations") if md.get(k)}
    return out


def check_shape(obj: Any, *, source: str | None = None) -> None:
    """Refuse an object whose identity fields have the wrong JSON type; ``LabkitError`` naming it and the field.

    kustomize passes such objects through (``labels: [a, b]``, ``name: 123``),
    and everything downstream — owner labels, inventory ids, apply ordering —
    assumes ``apiVersion``/``kind``/``metadata.name``/``metadata.namespace`` are
    strings and ``metadata.labels``/``annotations`` maps.  Checking here turns
    what would be a crash into one clear build error.  Value types inside those
    maps (an annotation ``3`` instead of ``"3"``) are left to the API server.
    """
    if not isinstance(obj, dict):
        raise LabkitError(f"an object must be a map, got {type(obj).__name__}", file=source)
    md = obj.get("metadata")
    kind = obj.get("kind")
    name = md.get("name") if isinstance(md, dict) else None
    ns = md.get("namespace") if isinstance(md, dict) else None
    ident = "/".join(str(x) for x in (kind, ns if isinstance(ns, str) else None, name) if x not in (None, ""))
    where = f"{ident}: " if ident else ""

    def fail(field_path: str, want: str, got: Any) -> LabkitError:
        err = LabkitError(f"{where}{field_path}: must be {want}, got {type(got).__name__}", file=source)
        err.field = field_path
        return err

    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str):
            raise fail(key, "a string", obj.get(key))
    if not isinstance(md, dict):
        raise fail("metadata", "a map", md)
    if not isinstance(name, str) or not name:
        raise fail("metadata.name", "a non-empty string", name)
    if ns is not None and not isinstance(ns, str):
        raise fail("metadata.namespace", "a string", ns)
    for key in ("labels", "annotations"):
        if md.get(key) is not None and not isinstance(md[key], dict):
            raise fail(f"metadata.{key}", "a map", md[key])


def plan(
    cluster: Cluster,
    objects: Iterable[Obj],
    *,
    field_manager: str,
    ignore: Iterable[IgnoreRule] = (),
    new_namespaces: Iterable[str] = (),
    policy: Policy = NO_POLICY,
) -> Plan:
    """Dry-run every object and classify it (see module docstring). Raises DryRunFailed."""
    ignore = list(ignore)
    creating = set(new_namespaces)
    entries: list[PlanEntry] = []
    failures: list[tuple[Obj, ApiError]] = []
    for obj in objects:
        skip = policy.skip_reason(obj)
        if skip is not None:
            entries.append(PlanEntry(obj, Action.SKIPPED, reason=skip))
            continue
        desired = apply_ignore(obj, ignore) if ignore else obj
        md = desired.get("metadata") or {}
        try:
            live = cluster.get(desired["apiVersion"], desired["kind"], md.get("name", ""), md.get("namespace"))
        except ApiError as err:
            if err.reason == "NotFound" and md.get("namespace") in creating:
                entries.append(PlanEntry(desired, Action.CREATED, deferred=True))
            else:
                failures.append((obj, err))
            continue
        if live is None and md.get("namespace") in creating:
            entries.append(PlanEntry(desired, Action.CREATED, deferred=True))
            continue
        create_only = policy.create_only(obj) if live is not None else None
        if create_only is not None:
            entries.append(PlanEntry(desired, Action.SKIPPED, live=live, reason=create_only))
            continue
        try:
            dry = cluster.apply(desired, field_manager=field_manager, force=True, dry_run=True)
        except ApiError as err:
            failures.append((obj, err))
            continue
        if live is None:
            entries.append(PlanEntry(desired, Action.CREATED, dry_run=dry))
            continue
        a, b = comparable(dry), comparable(live)
        if ignore:
            a, b = apply_ignore(a, ignore), apply_ignore(b, ignore)
        if a == b:
            entries.append(PlanEntry(desired, Action.UNCHANGED, live=live, dry_run=dry))
        else:
            entries.append(PlanEntry(desired, Action.CONFIGURED, live=live, dry_run=dry, drift=changed_paths(a, b)))
    if failures:
        raise DryRunFailed(failures)
    return Plan(entries)
