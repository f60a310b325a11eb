"""Argo CD's diffing: ignoreDifferences, system-wide customizations, and "is this resource in sync?".

What Argo CD compares
=====================

For every resource of an Application, Argo CD compares the *target* (the
rendered manifest, with the tracking annotation and the destination namespace
set) with the *live* object, after normalising both: server-written metadata
and ``status`` are dropped, and the ``ignoreDifferences`` rules remove the
fields the user asked it not to look at.  Its default (client-side) diff is a
three-way comparison against ``kubectl.kubernetes.io/last-applied-configuration``:
a field present in git and different (or missing) in the cluster is a change;
a field that somebody else *added* in the cluster is not; a field that was
removed from git but is still set in the cluster *is* a change (the apply would
delete it).

labkit reproduces that with two cheap comparisons and one exact one:

* **subset** — ``labkit.engine.normalize.changed_paths(target, live)``: every
  field of the (normalised) target must be present and equal in the live object,
  with Kubernetes list semantics and quantity normalisation;
* **verified targets** — the removal case only arises when the target changed
  since it was last applied.  The controller remembers, per live object, a hash
  of the target it last applied (or last proved in sync); when the current
  target has that hash the subset comparison is the whole answer.  This is the
  role the last-applied annotation plays in Argo, kept in memory, and it is what
  makes a no-op refresh of thousands of objects cost a dictionary walk each;
* **dry-run** — otherwise the target is server-side applied as a dry run with
  Argo's field manager, and the *result* is compared with the live object (both
  normalised): exactly what a sync would change, removals included.

A Secret's ``stringData`` is write-only (the API server merges it into
``data``), so it is compared as base64 ``data``, as gitops-engine's
``normalizeSecret`` does.

Ignore rules
============

An ``IgnoreDifference`` (from ``spec.ignoreDifferences`` or from argocd-cm)
matches by group, kind (``*`` for all), name and namespace, and removes:

* ``jsonPointers`` — RFC 6901 pointers (``/spec/replicas``);
* ``jqPathExpressions`` — the jq path subset of ``labkit.argo.jqpath``;
* ``managedFieldsManagers`` — every field the named managers own in the *live*
  object's ``managedFields`` (``kube-controller-manager``, ``hpa`` ...), removed
  from both sides, as Argo's managed-fields normaliser does.

System-wide rules come from the ``argocd-cm`` ConfigMap, either as
``resource.customizations.ignoreDifferences.<group>_<kind>`` keys (``all`` for
every kind; a core kind is written ``Service`` or ``_Service``) or in the older
``resource.customizations`` block (``apps/Deployment: {ignoreDifferences: ...}``).

Hidden is not the same as kept (argo-cd #7820)
==============================================

Ignore rules only shape the *comparison*.  A sync still applies the whole
target, so a field ignored in the diff is overwritten with the git value by
every sync — which, with self-heal on, means every time anything else about the
object drifts.  ``RespectIgnoreDifferences=true`` changes the *apply*:
``respect_ignored`` copies the live values of the ignored fields into the target
before it is applied (and drops ignored fields the live object does not have),
so the sync leaves them alone.  That is the documented fix for the HPA-vs-git
``replicas`` fight.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from labkit.argo.api import IgnoreDifference
from labkit.argo.jqpath import compile_path, delete_paths, get_path, set_path
from labkit.engine.normalize import changed_paths, parse_pointer
from labkit.core.errors import LabkitError

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "DiffResult",
    "comparable",
    "target_hash",
    "ignored_paths",
    "apply_ignores",
    "respect_ignored",
    "managed_field_paths",
    "subset_diff",
    "exact_diff",
    "system_ignore_rules",
]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
_CM_PREFIX = "resource.customizations.ignoreDifferences."

Token = str | int


@dataclass
class DiffResult:
    """Whether a resource is modified (OutOfSync) and which fields differ."""

    modified: bool
    paths: list[str] = field(default_factory=list)
    exact: bool = False  # decided by a dry-run comparison


def group_of(obj: Mapping[str, Any]) -> str:
    av = obj.get("apiVersion") or ""
    return av.split("/")[0] if "/" in av else ""


def target_hash(obj: Mapping[str, Any]) -> str:
    """A stable digest of a target object (what "the same target" means for the verified cache)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def comparable(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The view Argo diffs: no status, metadata reduced to labels and annotations (minus last-applied).

    Shallow: nested values are shared with ``obj``; copy before mutating.
    """
    if obj is None:
        return None
    md = obj.get("metadata") or {}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    meta: dict[str, Any] = {}
    if md.get("labels"):
        meta["labels"] = md["labels"]
    ann = md.get("annotations")
    if ann:
        if LAST_APPLIED_ANNOTATION in ann:
            ann = {k: v for k, v in ann.items() if k != LAST_APPLIED_ANNOTATION}
        if ann:
            meta["annotations"] = ann
    out["metadata"] = meta
    if obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1" and isinstance(obj.get("stringData"), dict):
        # gitops-engine normalizeSecret: stringData is write-only, the API server merges it into data
        data = dict(out.get("data") or {})
        for k, v in out.pop("stringData").items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        out["data"] = data
    return out


# ------------------------------------------------------------------ managed fields

def _fields_v1_paths(node: Mapping[str, Any], obj: Any, prefix: tuple[Token, ...], out: list[tuple[Token, ...]],
                     key_fields: frozenset[str] = frozenset()) -> None:
    for raw, child in node.items():
        if raw == ".":
            continue
        kind, _, rest = raw.partition(":")
        if kind == "f":
            if rest in key_fields:
                continue  # a keyed element's key goes with the element
            if not isinstance(obj, dict) or rest not in obj:
                continue
            p = prefix + (rest,)
            if isinstance(child, Mapping) and any(k != "." for k in child):
                _fields_v1_paths(child, obj[rest], p, out)
            else:
                out.append(p)
        elif kind == "k" and isinstance(obj, list):
            try:
                want = json.loads(rest)
            except ValueError:
                continue
            for i, item in enumerate(obj):
                if isinstance(item, dict) and all(item.get(k) == v or (k == "protocol" and v == "TCP" and k not in item)
                                                  for k, v in want.items()):
                    if isinstance(child, Mapping) and any(k != "." for k in child):
                        _fields_v1_paths(child, item, prefix + (i,), out, frozenset(want))
                    break
        elif kind == "v" and isinstance(obj, list):
            try:
                want = json.loads(rest)
            except ValueError:
                continue
            for i, item in enumerate(obj):
                if item == want:
                    out.append(prefix + (i,))
                    break
        elif kind == "i" and isinstance(obj, list):
            try:
                i = int(rest)
            except ValueError:
                continue
            if 0 <= i < len(obj):
                out.append(prefix + (i,))


def managed_field_paths(obj: Mapping[str, Any], managed_fields: Iterable[Mapping[str, Any]],
                        managers: Iterable[str]) -> list[tuple[Token, ...]]:
    """Concrete paths in ``obj`` of the fields the given managers own according to ``managed_fields``."""
    wanted = set(managers)
    out: list[tuple[Token, ...]] = []
    for entry in managed_fields or ():
        if entry.get("manager") not in wanted:
            continue
        fv1 = entry.get("fieldsV1") or {}
        _fields_v1_paths(fv1, obj, (), out)
    return [p for p in out if p and p[0] not in ("status",)]


# ------------------------------------------------------------------ ignore rules

def _pointer_tokens(pointer: str, obj: Any) -> tuple[Token, ...] | None:
    tokens = parse_pointer(pointer)
    out: list[Token] = []
    cur = obj
    for t in tokens:
        if isinstance(cur, list):
            if not t.isdigit():
                return None
            i = int(t)
            if i >= len(cur):
                return None
            out.append(i)
            cur = cur[i]
        elif isinstance(cur, dict):
            if t not in cur:
                return None
            out.append(t)
            cur = cur[t]
        else:
            return None
    return tuple(out)


def matching_rules(rules: Iterable[IgnoreDifference], obj: Mapping[str, Any]) -> list[IgnoreDifference]:
    md = obj.get("metadata") or {}
    g, k = group_of(obj), obj.get("kind") or ""
    name, ns = md.get("name") or "", md.get("namespace") or ""
    return [r for r in rules if r.matches(g, k, name, ns)]


def ignored_paths(obj: Any, rules: Iterable[IgnoreDifference],
                  managed_fields: Iterable[Mapping[str, Any]] | None = None) -> list[tuple[Token, ...]]:
    """Concrete paths of ``obj`` the rules remove (pointers, jq paths, managed-field owners)."""
    out: list[tuple[Token, ...]] = []
    managers: list[str] = []
    for rule in rules:
        for ptr in rule.json_pointers:
            toks = _pointer_tokens(ptr, obj)
            if toks:
                out.append(toks)
        for expr in rule.jq_path_expressions:
            out.extend(compile_path(expr).paths(obj))
        managers.extend(rule.managed_fields_managers)
    if managers and managed_fields:
        out.extend(managed_field_paths(obj, managed_fields, managers))
    return out


def apply_ignores(view: dict[str, Any], rules: list[IgnoreDifference],
                  managed_fields: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A deep copy of a comparable view without the ignored fields (the view itself when nothing applies)."""
    if not rules:
        return view
    probe = ignored_paths(view, rules, managed_fields)
    if not probe:
        return view
    out = copy.deepcopy(view)
    delete_paths(out, probe)
    return out


def respect_ignored(target: dict[str, Any], live: Mapping[str, Any] | None, rules: list[IgnoreDifference]) -> dict[str, Any]:
    """``RespectIgnoreDifferences``: the target with the ignored fields taken from the live object."""
    if live is None or not rules:
        return target
    mf = (live.get("metadata") or {}).get("managedFields")
    live_paths = ignored_paths(live, rules, mf)
    target_paths = ignored_paths(target, rules, mf)
    if not live_paths and not target_paths:
        return target
    out = copy.deepcopy(target)
    live_set = set(live_paths)
    delete_paths(out, [p for p in target_paths if p not in live_set])
    for p in sorted(live_paths, key=len):
        value = get_path(live, p)
        _ensure_parents(out, p)
        set_path(out, p, copy.deepcopy(value))
    return out


def _ensure_parents(obj: dict, path: tuple[Token, ...]) -> None:
    cur: Any = obj
    for t in path[:-1]:
        if isinstance(cur, dict) and isinstance(t, str):
            if not isinstance(cur.get(t), (dict, list)):
                cur[t] = {}
            cur = cur[t]
        elif isinstance(cur, list) and isinstance(t, int) and 0 <= t < len(cur):
            cur = cur[t]
        else:
            return


# ------------------------------------------------------------------ comparisons

def _quick_subset(d: Any, lv: Any) -> bool:
    """A strict, cheap sufficient check: ``d`` is a positional subset of ``lv`` with equal scalars.

    When it holds, ``changed_paths`` would find nothing (keyed list items at the
    same positions match by key too); when it does not — reordered or extra list
    items, quantities written differently — the full comparison decides.
    """
    if isinstance(d, dict):
        if not isinstance(lv, dict):
            return False
        for k, v in d.items():
            if k not in lv:
                if v is not None:
                    return False
                continue
            if not _quick_subset(v, lv[k]):
                return False
        return True
    if isinstance(d, list):
        if not isinstance(lv, list) or len(d) != len(lv):
            return False
        return all(_quick_subset(a, b) for a, b in zip(d, lv))
    if d is None:
        return lv is None
    if type(d) is not type(lv):
        return False
    return d == lv


def subset_diff(target: Mapping[str, Any], live: Mapping[str, Any], rules: list[IgnoreDifference]) -> DiffResult:
    """Fields of the target that the live object lacks or holds differently (after ignore rules)."""
    mf = (live.get("metadata") or {}).get("managedFields") if rules else None
    t = apply_ignores(comparable(target) or {}, rules, mf)
    lv = apply_ignores(comparable(live) or {}, rules, mf)
    if _quick_subset(t, lv):
        return DiffResult(False, [])
    paths = changed_paths(t, lv)
    return DiffResult(bool(paths), paths)


def exact_diff(predicted: Mapping[str, Any], live: Mapping[str, Any], rules: list[IgnoreDifference]) -> DiffResult:
    """Compare a dry-run result with the live object: any difference either way counts."""
    mf = (live.get("metadata") or {}).get("managedFields") if rules else None
    a = apply_ignores(comparable(predicted) or {}, rules, mf)
    b = apply_ignores(comparable(live) or {}, rules, mf)
    if a == b:
        return DiffResult(False, [], True)
    paths = changed_paths(a, b)
    removed = [p for p in changed_paths(b, a) if p not in paths]
    return DiffResult(True, paths + [f"{p} (removed)" for p in removed] if (paths or removed) else ["(unknown)"], True)


# ------------------------------------------------------------------ argocd-cm

def _rule_from_yaml(text: Any, group: str, kind: str, where: str) -> IgnoreDifference:
    if isinstance(text, str):
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise LabkitError(f"invalid YAML: {err}", file="argocd-cm", field=where) from None
    else:
        data = text or {}
    if not isinstance(data, Mapping):
        raise LabkitError("must be a YAML object with jsonPointers / jqPathExpressions / managedFieldsManagers",
                          file="argocd-cm", field=where)
    unknown = set(data) - {"jsonPointers", "jqPathExpressions", "managedFieldsManagers"}
    if unknown:
        raise LabkitError(f"unknown field {sorted(unknown)[0]!r}", file="argocd-cm", field=where)

    def strings(key: str) -> tuple[str, ...]:
        v = data.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise LabkitError(f"{key} must be a list of strings", file="argocd-cm", field=where)
        return tuple(v)

    jq = strings("jqPathExpressions")
    for expr in jq:
        try:
            compile_path(expr)
        except LabkitError as err:
            raise LabkitError(err.detail, file="argocd-cm", field=where) from None
    return IgnoreDifference(kind=kind, group=group, json_pointers=strings("jsonPointers"), jq_path_expressions=jq,
                            managed_fields_managers=strings("managedFieldsManagers"), where=where)


def system_ignore_rules(cm: Mapping[str, Any] | None) -> list[IgnoreDifference]:
    """System-wide ignore rules from an ``argocd-cm`` ConfigMap (see module docstring)."""
    if not cm:
        return []
    data = cm.get("data") or {}
    rules: list[IgnoreDifference] = []
    for key in sorted(data):
        if key.startswith(_CM_PREFIX):
            gk = key[len(_CM_PREFIX):]
            if gk == "all":
                group, kind = "*", "*"
            elif "_" in gk:
                group, _, kind = gk.rpartition("_")
            else:
                group, kind = "", gk
            rules.append(_rule_from_yaml(data[key], group, kind, key))
    block = data.get("resource.customizations")
    if block:
        try:
            parsed = yaml.safe_load(block) or {}
        except yaml.YAMLError as err:
            raise LabkitError(f"invalid YAML: {err}", file="argocd-cm", field="resource.customizations") from None
        if isinstance(parsed, Mapping):
            for gk, conf in parsed.items():
                if not isinstance(conf, Mapping) or "ignoreDifferences" not in conf:
                    continue
                group, _, kind = str(gk).rpartition("/")
                rules.append(_rule_from_yaml(conf["ignoreDifferences"], group, kind,
                                             f"resource.customizations.{gk}.ignoreDifferences"))
    return rules
