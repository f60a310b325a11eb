"""Apply a manifest file to any cluster the way ``kubectl apply --server-side`` would — all or nothing.

Workshops and scenarios sometimes hand a cluster a file directly (the seed
objects of a scenario, a participant's experiment).  ``apply_manifests`` reads the
file (YAML errors name the file, line and column), dry-runs **every** object
first through the ``Cluster`` seam, and only when all of them pass applies them.
A refusal becomes one ``LabkitError`` naming the file and the field the API
server objected to — ``spec.replicas`` for a type error, ``kind`` for a kind the
cluster does not serve, the field of the first validation cause otherwise — and
nothing at all is written.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from labkit.core.cluster import Cluster
from labkit.engine.changeset import Action, ChangeSet, ChangeSetEntry
from labkit.engine.plan import DryRunFailed, plan
from labkit.core.errors import ApiError, LabkitError
from labkit.gitops.render import load_manifests, parse_manifests

_FIELD_IN_MESSAGE = re.compile(r"\): (\.[A-Za-z0-9_.\[\]=\"-]+): ")


def error_field(err: ApiError) -> str | None:
    """The object field an API error is about, when it names one."""
    causes = (err.details or {}).get("causes") or []
    if causes and causes[0].get("field"):
        return str(causes[0]["field"]).lstrip(".")
    if err.reason == "NotFound" and err.message.startswith("no matches for kind"):
        return "kind"
    m = _FIELD_IN_MESSAGE.search(err.message)
    if m:
        return m.group(1).lstrip(".")
    return None


def apply_manifests(
    cluster: Cluster,
    source: str | Path | Iterable[dict[str, Any]],
    *,
    field_manager: str = "kubectl",
    file: str | None = None,
) -> ChangeSet:
    """Dry-run every object, then apply them all (server-side apply, ownership forced)."""
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and Path(source).exists()):
        file = file or str(source)
        objects = load_manifests(source)
    elif isinstance(source, str):
        objects = parse_manifests(source, source=file or "<string>")
    else:
        objects = list(source)
    for i, obj in enumerate(objects):
        for key in ("apiVersion", "kind"):
            if not isinstance(obj.get(key), str) or not obj.get(key):
                raise LabkitError(f"document {i + 1}: required field missing", file=file, field=key)
    try:
        the_plan = plan(cluster, objects, field_manager=field_manager)
    except DryRunFailed as failed:
        obj, err = failed.failures[0]
        more = f" (and {len(failed.failures) - 1} more)" if len(failed.failures) > 1 else ""
        md = obj.get("metadata") or {}
        name = f"{obj.get('kind')}/{md.get('name', '')}"
        raise LabkitError(f"{name}: {err.message}{more}; nothing was applied", file=file, field=error_field(err)) from None
    cs = ChangeSet()
    for entry in the_plan.entries:
        if entry.action in (Action.CREATED, Action.CONFIGURED):
            cluster.apply(entry.desired, field_manager=field_manager, force=True)
        cs.add(ChangeSetEntry.for_object(entry.desired, entry.action))
    return cs
