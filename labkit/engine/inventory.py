"""Flux's inventory: the record of what a reconcile applied, and what to prune.

Pruning is "delete what I applied last time and did not apply this time".  For
that the engine must remember what it applied.  Flux keeps this record in the
Kustomization's ``status.inventory`` (kustomize-controller
``internal/inventory/inventory.go``)::

    status:
      inventory:
        entries:
          - id: default_web_apps_Deployment
            v: v1
          - id: _team-a__Namespace
            v: v1

Object ids
----------
An id is cli-utils' ``ObjMetadata.String()``, ``<namespace>_<name>_<group>_<kind>``
(``default_web_apps_Deployment``); writing and parsing ids lives in
``labkit.engine.objectid`` (re-exported here) because the change set needs it
too.  The version is not part of the id and is kept next to it as ``v`` (only
the version part, ``v1``, as Flux stores it), so ``InventoryEntry.api_version``
rebuilds ``apps/v1`` from the id's group.

Diff
----
``diff(old, new)`` (or ``old.diff(new)``) returns the entries of the old
inventory whose id is not in the new one — the prune candidates — sorted in
Flux's apply order (``labkit.engine.ordering.flux_sort_key``), so a prune is
deterministic whatever order the inventories were written in.  Whether a stale
object is then actually deleted (owner labels, ``prune: disabled``, Argo's
``Prune=false``) is the prune stage's decision, not the inventory's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from labkit.engine.changeset import ChangeSet
from labkit.engine.objectid import ObjectId, object_id, parse_object_id, split_api_version
from labkit.engine.ordering import flux_sort_key
from labkit.core.errors import LabkitError

__all__ = [
    "ObjectId",
    "object_id",
    "parse_object_id",
    "InventoryEntry",
    "Inventory",
    "diff",
]


@dataclass(frozen=True)
class InventoryEntry:
    """One ``status.inventory.entries`` item: ``id`` and ``v`` (the version, e.g. ``v1``)."""

    id: str
    v: str = ""

    @property
    def object_id(self) -> ObjectId:
        return parse_object_id(self.id)

    @property
    def api_version(self) -> str:
        """``group/version``, or just the version for the core group."""
        group = self.object_id.group
        return f"{group}/{self.v}" if group else self.v

    def to_ref(self) -> dict[str, Any]:
        """A minimal object dict (apiVersion, kind, metadata name/namespace) for get/delete."""
        oid = self.object_id
        md: dict[str, Any] = {"name": oid.name}
        if oid.namespace:
            md["namespace"] = oid.namespace
        return {"apiVersion": self.api_version, "kind": oid.kind, "metadata": md}

    def to_status(self) -> dict[str, str]:
        return {"id": self.id, "v": self.v}

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> "InventoryEntry":
        _, version = split_api_version(obj.get("apiVersion") or "")
        return cls(object_id(obj), version)


def _sort_key(entry: InventoryEntry) -> tuple[Any, ...]:
    return flux_sort_key(entry.to_ref())


@dataclass
class Inventory:
    """The set of objects a reconcile applied (Flux ``ResourceInventory``)."""

    entries: list[InventoryEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index: dict[str, int] = {}
        for i, e in enumerate(self.entries):
            parse_object_id(e.id)
            self._index[e.id] = i

    @classmethod
    def from_objects(cls, objs: Iterable[Mapping[str, Any]]) -> "Inventory":
        inv = cls()
        for o in objs:
            inv.add(InventoryEntry.of(o))
        return inv

    @classmethod
    def from_change_set(cls, change_set: ChangeSet) -> "Inventory":
        """Flux ``AddChangeSet``: every entry of the change set, with its version."""
        inv = cls()
        for e in change_set:
            inv.add(InventoryEntry(e.object_id, e.version))
        return inv

    @classmethod
    def from_status(cls, status_inventory: Mapping[str, Any] | None, *, file: str | None = None) -> "Inventory":
        """Read ``status.inventory`` (``{"entries": [{"id": ..., "v": ...}]}``); None is empty."""
        if not status_inventory:
            return cls()
        entries = status_inventory.get("entries") or []
        if not isinstance(entries, list):
            raise LabkitError("must be a list", file=file, field="status.inventory.entries")
        out = cls()
        for i, e in enumerate(entries):
            where = f"status.inventory.entries[{i}]"
            if not isinstance(e, Mapping) or not isinstance(e.get("id"), str):
                raise LabkitError("must be an object with a string id", file=file, field=where)
            try:
                parse_object_id(e["id"])
            except LabkitError as err:
                raise LabkitError(err.detail, file=file, field=f"{where}.id") from None
            out.add(InventoryEntry(e["id"], str(e.get("v") or "")))
        return out

    def add(self, entry: InventoryEntry) -> None:
        """Add an entry, replacing one with the same id (its version may have changed)."""
        parse_object_id(entry.id)
        i = self._index.get(entry.id)
        if i is not None and i < len(self.entries) and self.entries[i].id == entry.id:
            self.entries[i] = entry
            return
        self._index[entry.id] = len(self.entries)
        self.entries.append(entry)

    def remove(self, entry_id: str) -> None:
        self.entries = [e for e in self.entries if e.id != entry_id]
        self._index = {e.id: i for i, e in enumerate(self.entries)}

    def ids(self) -> set[str]:
        return {e.id for e in self.entries}

    def __contains__(self, item: object) -> bool:
        if isinstance(item, InventoryEntry):
            item = item.id
        elif isinstance(item, Mapping):
            item = object_id(item)
        return item in self.ids()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[InventoryEntry]:
        return iter(self.entries)

    def sorted(self) -> list[InventoryEntry]:
        """Entries in Flux's apply order (deterministic)."""
        return sorted(self.entries, key=_sort_key)

    def diff(self, new: "Inventory") -> list[InventoryEntry]:
        """Stale entries: in this (old) inventory, not in ``new``; sorted in Flux's order."""
        keep = new.ids()
        return sorted((e for e in self.entries if e.id not in keep), key=_sort_key)

    def to_status(self) -> dict[str, list[dict[str, str]]]:
        """The ``status.inventory`` value, entries in the order added (Flux appends the
        change set's entries, i.e. apply order)."""
        return {"entries": [e.to_status() for e in self.entries]}


def diff(old: Inventory, new: Inventory) -> list[InventoryEntry]:
    """Entries of ``old`` missing from ``new`` (the prune candidates), in Flux's apply order."""
    return old.diff(new)
