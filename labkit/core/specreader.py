"""Typed reading of user YAML with errors that name the file and the field path.

Both dialects accept the real YAML of their upstream projects (Flux's
GitRepository and Kustomization, Argo CD's Application and ApplicationSet) and
must refuse bad input with one clear ``LabkitError`` such as
``clusters/dev/apps.yaml: spec.prune: required field missing`` — never a
traceback.  ``SpecReader`` is the small shared vocabulary for that: read a
mapping, a string, a boolean, a list, refuse unknown fields, each failure naming
``<path>.<key>``.  The dialect modules subclass it for their own types
(durations, integers, enums).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from labkit.core.errors import LabkitError


def show(v: Any) -> str:
    """A value as an error message quotes it: ``"text"``, ``true``, ``an object``, ``a list``, ``null``."""
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, list):
        return "a list"
    if v is None:
        return "null"
    return repr(v)


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class SpecReader:
    """Typed access to a YAML map that reports errors with the field path and the file."""

    def __init__(self, file: str | None):
        self.file = file

    def fail(self, path: str, message: str) -> LabkitError:
        return LabkitError(message, file=self.file, field=path)

    def mapping(self, value: Any, path: str, *, required: bool = False) -> dict[str, Any] | None:
        if value is None:
            if required:
                raise self.fail(path, "required field missing")
            return None
        if not isinstance(value, Mapping):
            raise self.fail(path, f"must be an object, got {show(value)}")
        return dict(value)

    def known(self, m: Mapping[str, Any], path: str, known: Iterable[str]) -> None:
        """Refuse keys outside ``known`` (``<path>.<key>: unknown field``)."""
        allowed = set(known)
        for key in m:
            if key not in allowed:
                raise self.fail(_at(path, str(key)), "unknown field")

    check_fields = known

    def text(self, m: Mapping[str, Any], key: str, path: str, *, required: bool = False, default: str = "") -> str:
        v = m.get(key)
        where = _at(path, key)
        if v is None:
            if required:
                raise self.fail(where, "required field missing")
            return default
        if not isinstance(v, str):
            raise self.fail(where, f"must be a string, got {show(v)}")
        if required and v == "":
            raise self.fail(where, "must not be empty")
        return v

    def flag(self, m: Mapping[str, Any], key: str, path: str, default: bool = False, *, required: bool = False) -> bool:
        v = m.get(key)
        if v is None:
            if required:
                raise self.fail(_at(path, key), "required field missing")
            return default
        if not isinstance(v, bool):
            raise self.fail(_at(path, key), f"must be a boolean, got {show(v)}")
        return v

    def items(self, m: Mapping[str, Any], key: str, path: str) -> list[Any]:
        v = m.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise self.fail(_at(path, key), f"must be a list, got {show(v)}")
        return v
