"""The result of an apply or prune: one entry per object and what was done to it.

This mirrors ``fluxcd/pkg/ssa`` ``changeset.go``.  Every object the engine
handles in a reconcile ends up as a ``ChangeSetEntry``:

* ``object_id`` — the inventory id ``<namespace>_<name>_<group>_<kind>``
  (``labkit.engine.objectid.object_id``);
* ``subject`` — ``Kind/namespace/name`` (``Kind/name`` for cluster-scoped
  objects), Flux's ``FmtUnstructured`` and the same form as the event log's
  object keys;
* ``action`` — ``created``, ``configured``, ``unchanged``, ``deleted``,
  ``skipped`` (excluded from the reconcile, e.g. by the
  ``kustomize.toolkit.fluxcd.io/ssa: Ignore`` annotation or ``IfNotPresent`` on
  an existing object) or ``unknown``;
* ``version`` — the API version *without* the group (``v1`` for ``apps/v1``),
  which Flux stores as the inventory entry's ``v`` (its ``GroupVersion`` field
  actually holds only the version).

``ChangeSet.to_string()`` renders one ``"<subject> <action>"`` line per entry —
the text of Flux's Kubernetes events and logs::

    Deployment/default/web configured
    Service/default/web unchanged

``has_changed`` is kustomize-controller's ``HasChanged``: everything except
``unchanged`` and ``skipped`` counts as a change (only changed entries go into
the event Flux emits after an apply).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Iterator, Mapping

from labkit.engine.objectid import object_id

__all__ = ["Action", "ChangeSetEntry", "ChangeSet", "has_changed", "subject_of"]


class Action(StrEnum):
    """What the engine did to one object (Flux's ``ssa.Action`` values).

    Members are upper-case (``Action.CREATED``); the CamelCase spellings used in
    the design notes (``Action.Created``) are aliases of the same members.
    """

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"

    # aliases
    Created = "created"
    Configured = "configured"
    Unchanged = "unchanged"
    Deleted = "deleted"
    Skipped = "skipped"
    Unknown = "unknown"


def has_changed(action: Action | str) -> bool:
    """kustomize-controller ``HasChanged``: False for unchanged and skipped, True otherwise."""
    return Action(action) not in (Action.UNCHANGED, Action.SKIPPED)


def subject_of(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name``, or ``Kind/name`` when cluster-scoped (Flux ``FmtUnstructured``)."""
    md = obj.get("metadata") or {}
    kind = obj.get("kind") or ""
    ns = md.get("namespace") or ""
    name = md.get("name") or ""
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


@dataclass(frozen=True)
class ChangeSetEntry:
    """The action taken on one object."""

    object_id: str
    subject: str
    action: Action
    version: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.action, Action):
            object.__setattr__(self, "action", Action(self.action))

    @classmethod
    def for_object(cls, obj: Mapping[str, Any], action: Action | str) -> "ChangeSetEntry":
        """Build the entry for ``obj`` (id, subject and version from the object itself)."""
        api_version = obj.get("apiVersion") or ""
        return cls(object_id(obj), subject_of(obj), Action(action), api_version.rsplit("/", 1)[-1])

    def __str__(self) -> str:
        return f"{self.subject} {self.action.value}"


@dataclass
class ChangeSet:
    """An ordered list of ``ChangeSetEntry`` (Flux ``ssa.ChangeSet``)."""

    entries: list[ChangeSetEntry] = field(default_factory=list)

    def add(self, entry: ChangeSetEntry) -> None:
        """Append one entry (Flux ``Add``)."""
        self.entries.append(entry)

    append = add

    def extend(self, entries: Iterable[ChangeSetEntry] | "ChangeSet") -> None:
        """Append several entries, or all entries of another ChangeSet (Flux ``Append``)."""
        self.entries.extend(entries.entries if isinstance(entries, ChangeSet) else entries)

    def to_map(self) -> dict[str, str]:
        """``{subject: action}`` (Flux ``ToMap``, as logged by kustomize-controller)."""
        return {e.subject: e.action.value for e in self.entries}

    def to_string(self) -> str:
        """One ``"<subject> <action>"`` line per entry, no trailing newline (Flux ``String``)."""
        return "\n".join(str(e) for e in self.entries)

    __str__ = to_string

    def counts(self) -> dict[str, int]:
        """Number of entries per action value, e.g. ``{"created": 2, "unchanged": 5}``."""
        return dict(Counter(e.action.value for e in self.entries))

    def changed(self) -> "ChangeSet":
        """The entries whose action ``has_changed``."""
        return ChangeSet([e for e in self.entries if has_changed(e.action)])

    def object_ids(self) -> list[str]:
        return [e.object_id for e in self.entries]

    def by_action(self, action: Action | str) -> list[ChangeSetEntry]:
        a = Action(action)
        return [e for e in self.entries if e.action is a]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ChangeSetEntry]:
        return iter(self.entries)
