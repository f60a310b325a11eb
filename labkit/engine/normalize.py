"""Diff helpers for the plan stage: "would applying ``desired`` change ``live``?"

The plan stage compares each rendered object (``desired``) with what the cluster
holds (``live``) and decides *created / configured / unchanged*.  Flux does this
with a server-side-apply dry-run and a JSON diff of the result against the live
object (``fluxcd/pkg/ssa`` ``hasDrifted`` / ``jsondiff``); Argo CD with its own
normaliser and diff.  labkit's engine still applies with SSA, but to *explain*
a plan — which fields drifted, which an ignore rule hides — it needs a few
dialect-free helpers, gathered here.

Stripping server-owned fields
-----------------------------
``strip_server_fields`` returns a copy without what the API server writes and no
manifest ever carries: ``status`` and ``metadata.managedFields``,
``resourceVersion``, ``uid``, ``creationTimestamp``, ``generation``, ``selfLink``,
``deletionTimestamp``, ``deletionGracePeriodSeconds``.

Subset semantics
----------------
``changed_paths(desired, live)`` lists the fields of ``desired`` that applying it
would change, in a readable path syntax
(``spec.template.spec.containers[name=web].image``, keys with dots quoted:
``metadata.labels["app.kubernetes.io/name"]``).  The rule is *subset*, the way
server-side apply merges an applied configuration into a live object:

* a field present in ``desired`` and absent (or different) in ``live`` is a
  change; fields present only in ``live`` (defaults, other managers' fields,
  status) are not — removals are a matter of field *ownership* and are decided
  by the apply itself, not by this comparison;
* maps recurse key by key; a ``null`` in ``desired`` means "unset" and only
  counts when ``live`` has a non-null value there;
* lists follow the Kubernetes list types (``+listType=map`` /
  ``patchMergeKey``): ``containers``, ``initContainers``, ``ephemeralContainers``,
  ``volumes``, ``env``, ``imagePullSecrets``, ``resourceClaims`` are keyed by
  ``name``; ``volumeMounts`` by ``mountPath`` (not ``name``: two mounts may use
  the same volume); ``volumeDevices`` by ``devicePath``; container ``ports`` by
  ``(containerPort, protocol)`` and Service ``ports`` by ``(port, protocol)``,
  with the protocol defaulting to ``TCP``; ``hostAliases`` by ``ip``;
  ``conditions`` by ``type``; ``topologySpreadConstraints`` by ``(topologyKey,
  whenUnsatisfiable)``; ``ownerReferences`` by ``uid``.  Keyed items are matched
  by key and compared recursively (item order is not a change); ``finalizers``
  is a set.  Every other list is *atomic*: it changes unless it has the same
  length and each element is a subset of the live element at the same index
  (elementwise subset tolerates server defaulting inside list items);
* scalars compare by value and type (``True`` is not ``1``; ``80`` equals
  ``80.0``), except resource *quantities*: under ``requests`` / ``limits`` /
  ``hard`` / ``capacity`` / ``allocatable`` / ``overhead`` (and LimitRange
  ``max`` / ``min`` / ``default`` / ``defaultRequest``), and ``sizeLimit``,
  values are compared as quantities, so ``"100m"`` equals ``"0.1"`` and ``1``
  equals ``"1000m"`` — exactly the normalisation the API server applies, which
  would otherwise show as a permanent false drift.

``parse_quantity`` implements the Kubernetes quantity grammar
(``k8s.io/apimachinery/pkg/api/resource``): a signed decimal number followed by
a binary-SI suffix (``Ki Mi Gi Ti Pi Ei``), a decimal-SI suffix (``n u m k M G
T P E`` or none) or a decimal exponent (``e3``, ``E-2``); it returns an exact
``fractions.Fraction``.

JSON pointers and ignore rules
------------------------------
Flux's ``spec.ignore`` rules and Argo CD's ``ignoreDifferences.jsonPointers``
name fields with RFC 6901 JSON pointers: ``/spec/replicas``,
``/metadata/annotations/example.com~1owner`` (``~1`` is ``/``, ``~0`` is ``~``),
``/spec/template/spec/containers/0/image`` (array indices).
``get_pointer`` / ``remove_pointer`` read and delete one path,
``apply_ignore_rules`` returns a copy without a list of paths (missing paths are
skipped, as both tools do).  ``Selector`` mirrors ``fluxcd/pkg/ssa/jsondiff``'s
selector (anchored regular expressions on group, version, kind, name, namespace;
label and annotation selectors) and ``IgnoreRule`` pairs paths with an optional
selector; ``apply_ignore`` applies the rules whose selector matches an object.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from labkit.core.errors import LabkitError

__all__ = [
    "SERVER_METADATA_FIELDS",
    "strip_server_fields",
    "parse_quantity",
    "quantities_equal",
    "changed_paths",
    "is_subset",
    "parse_pointer",
    "escape_pointer_token",
    "make_pointer",
    "get_pointer",
    "remove_pointer",
    "apply_ignore_rules",
    "Selector",
    "IgnoreRule",
    "apply_ignore",
    "parse_label_selector",
    "match_label_selector",
]

Obj = dict[str, Any]

SERVER_METADATA_FIELDS = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def strip_server_fields(obj: Mapping[str, Any]) -> Obj:
    """A deep copy of ``obj`` without ``status`` and the server-written metadata fields."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    md = out.get("metadata")
    if isinstance(md, dict):
        for key in SERVER_METADATA_FIELDS:
            md.pop(key, None)
    return out


# ------------------------------------------------------------------ quantities

_QUANTITY_RE = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([a-zA-Z]*(?:[+-]?[0-9]+)?)$")
_BINARY_SI = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SI = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def parse_quantity(value: str | int | float, *, field: str | None = None) -> Fraction:
    """A Kubernetes resource quantity (``"100m"``, ``"1Gi"``, ``"1e3"``, ``2``) as an exact Fraction."""
    if isinstance(value, bool):
        raise LabkitError(_QUANTITY_ERROR, field=field)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if not isinstance(value, str):
        raise LabkitError(_QUANTITY_ERROR, field=field)
    m = _QUANTITY_RE.match(value.strip())
    if not m:
        raise LabkitError(_QUANTITY_ERROR, field=field)
    sign, number, suffix = m.groups()
    num = Fraction(number if not number.endswith(".") else number[:-1] or "0")
    if suffix in _BINARY_SI:
        scale: Fraction = Fraction(_BINARY_SI[suffix])
    elif suffix in _DECIMAL_SI:
        scale = _DECIMAL_SI[suffix]
    elif suffix[:1] in ("e", "E") and re.fullmatch(r"[+-]?[0-9]+", suffix[1:]):
        scale = Fraction(10) ** int(suffix[1:])
    else:
        raise LabkitError(f"unable to parse quantity's suffix in {value!r}", field=field)
    q = num * scale
    return -q if sign == "-" else q


def quantities_equal(a: Any, b: Any) -> bool:
    """True when both parse as quantities of the same value (``"100m"`` vs ``"0.1"``)."""
    try:
        return parse_quantity(a) == parse_quantity(b)
    except LabkitError:
        return False


# ------------------------------------------------------------------ subset diff

_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "resourceClaims": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "hostAliases": ("ip",),
    "conditions": ("type",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
    "ownerReferences": ("uid",),
}
_SET_LISTS = {"finalizers"}
_QUANTITY_MAPS = {"requests", "limits", "hard", "capacity", "allocatable", "overhead"}
_LIMITRANGE_MAPS = {"max", "min", "default", "defaultRequest"}
_DEFAULTS = {"protocol": "TCP"}


def _render_key(key: str) -> str:
    return f'["{key}"]' if re.search(r"[.\[\]\"\s]", key) else key


def _join(path: str, key: str) -> str:
    rendered = _render_key(key)
    if not path or rendered.startswith("["):
        return path + rendered
    return f"{path}.{rendered}"


def _list_keys(name: str, items: Sequence[Any]) -> tuple[str, ...] | None:
    if name == "ports":
        if any(isinstance(i, Mapping) and "containerPort" in i for i in items):
            return ("containerPort", "protocol")
        if all(isinstance(i, Mapping) and "port" in i for i in items):
            return ("port", "protocol")
        return None
    return _LIST_KEYS.get(name)


def _item_key(item: Any, keys: tuple[str, ...]) -> tuple[Any, ...] | None:
    if not isinstance(item, Mapping):
        return None
    out = []
    for k in keys:
        v = item.get(k, _DEFAULTS.get(k))
        if v is None:
            return None
        out.append(v)
    return tuple(out)


def _is_quantity_context(names: list[str]) -> bool:
    if not names:
        return False
    if names[-1] == "sizeLimit":
        return True
    if len(names) >= 2:
        parent = names[-2]
        if parent in _QUANTITY_MAPS:
            return True
        if parent in _LIMITRANGE_MAPS and "limits" in names[:-2]:
            return True
    return False


def _leaf_equal(d: Any, l: Any, names: list[str]) -> bool:
    if _is_quantity_context(names) and not isinstance(d, (dict, list)) and not isinstance(l, (dict, list)):
        try:
            return parse_quantity(d) == parse_quantity(l)
        except LabkitError:
            pass
    if isinstance(d, bool) or isinstance(l, bool):
        return type(d) is type(l) and d == l
    if isinstance(d, (int, float)) and isinstance(l, (int, float)):
        return d == l
    return type(d) is type(l) and d == l


def _diff(d: Any, l: Any, path: str, names: list[str], out: list[str]) -> None:
    if d is None:
        if l is not None:
            out.append(path)
        return
    if isinstance(d, Mapping):
        if not isinstance(l, Mapping):
            out.append(path)
            return
        for key, dv in d.items():
            sub = _join(path, str(key))
            if key not in l:
                if dv is not None:
                    out.append(sub)
                continue
            _diff(dv, l[key], sub, names + [str(key)], out)
        return
    if isinstance(d, list):
        if not isinstance(l, list):
            out.append(path)
            return
        name = names[-1] if names else ""
        if name in _SET_LISTS:
            if any(item not in l for item in d):
                out.append(path)
            return
        keys = _list_keys(name, d)
        if keys is not None and all(_item_key(i, keys) is not None for i in d):
            live_by_key = {}
            for li in l:
                k = _item_key(li, keys)
                if k is not None and k not in live_by_key:
                    live_by_key[k] = li
            for di in d:
                k = _item_key(di, keys)
                label = ",".join(f"{kn}={kv}" for kn, kv in zip(keys, k or ()))
                sub = f"{path}[{label}]"
                if k not in live_by_key:
                    out.append(sub)
                    continue
                _diff(di, live_by_key[k], sub, names + [f"{name}[]"], out)
            return
        if len(d) != len(l):
            out.append(path)
            return
        for i, (di, li) in enumerate(zip(d, l)):
            probe: list[str] = []
            _diff(di, li, f"{path}[{i}]", names + [f"{name}[]"], probe)
            if probe:
                out.append(path)
                return
        return
    if not _leaf_equal(d, l, names):
        out.append(path)


def changed_paths(desired: Any, live: Any) -> list[str]:
    """Paths of the fields in ``desired`` whose application would change ``live`` (see module docstring)."""
    out: list[str] = []
    if live is None:
        return [""] if desired is not None else []
    _diff(desired, live, "", [], out)
    return out


def is_subset(desired: Any, live: Any) -> bool:
    """True when applying ``desired`` would not change ``live`` (no ``changed_paths``)."""
    return not changed_paths(desired, live)


# ------------------------------------------------------------------ JSON pointers

_MISSING: Any = object()


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901: ``"/a/b~1c"`` -> ``["a", "b/c"]``; ``""`` is the whole document."""
    if not isinstance(pointer, str):
        raise LabkitError(f"invalid JSON pointer {pointer!r}: must be a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise LabkitError(f'invalid JSON pointer "{pointer}": must start with "/"')
    tokens = pointer[1:].split("/")
    for t in tokens:
        if re.search(r"~(?![01])", t):
            raise LabkitError(f'invalid JSON pointer "{pointer}": "~" must be followed by 0 or 1')
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def escape_pointer_token(token: str) -> str:
    """Escape one reference token: ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def make_pointer(tokens: Iterable[str | int]) -> str:
    """The JSON pointer for ``tokens`` (``["metadata", "annotations", "a/b"]`` -> ``/metadata/annotations/a~1b``)."""
    return "".join("/" + escape_pointer_token(str(t)) for t in tokens)


def _index(token: str, size: int) -> int | None:
    if not re.fullmatch(r"0|[1-9][0-9]*", token):
        return None
    i = int(token)
    return i if i < size else None


def get_pointer(obj: Any, pointer: str, default: Any = _MISSING) -> Any:
    """The value at ``pointer``; ``default`` (or KeyError when none is given) if absent."""
    cur = obj
    for token in parse_pointer(pointer):
        if isinstance(cur, Mapping) and token in cur:
            cur = cur[token]
        elif isinstance(cur, list) and (i := _index(token, len(cur))) is not None:
            cur = cur[i]
        else:
            if default is _MISSING:
                raise KeyError(pointer)
            return default
    return cur


def remove_pointer(obj: Any, pointer: str) -> bool:
    """Delete the value at ``pointer`` in place; False when it was not there."""
    tokens = parse_pointer(pointer)
    if not tokens:
        raise LabkitError('invalid JSON pointer "": cannot remove the whole document')
    parent = get_pointer(obj, make_pointer(tokens[:-1]), None)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and (i := _index(last, len(parent))) is not None:
        del parent[i]
        return True
    return False


def apply_ignore_rules(obj: Mapping[str, Any], pointers: Iterable[str]) -> Obj:
    """A deep copy of ``obj`` without the fields at ``pointers`` (missing ones are skipped).

    Pointers are applied in the order given; remove array elements from the
    highest index down if several refer to the same list.
    """
    out = copy.deepcopy(dict(obj))
    for p in pointers:
        remove_pointer(out, p)
    return out


# ------------------------------------------------------------------ selectors and ignore rules

_REQ_RE = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|!=|=|>|<|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$"
)


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str, *, field: str | None = None) -> list[_Requirement]:
    """Parse a label selector expression (``app=web,tier!=db,env in (a,b),!legacy``)."""
    reqs = []
    for part in _split_selector(text or ""):
        m = _REQ_RE.match(part)
        if not m:
            raise LabkitError(f"invalid label selector {text!r}: cannot parse {part.strip()!r}", field=field)
        key, op, val, neg = m.group("key"), m.group("op"), m.group("val"), m.group("neg")
        if neg:
            if op:
                raise LabkitError(f"invalid label selector {text!r}: cannot parse {part.strip()!r}", field=field)
            reqs.append(_Requirement(key, "!exists"))
            continue
        if op is None:
            reqs.append(_Requirement(key, "exists"))
            continue
        op = op.strip()
        if op in ("in", "notin"):
            if not (val and val.startswith("(")):
                raise LabkitError(f"invalid label selector {text!r}: {op} needs a (value, ...) list", field=field)
            values = tuple(v.strip() for v in val[1:-1].split(",") if v.strip())
            reqs.append(_Requirement(key, op, values))
        elif op in (">", "<"):
            if not re.fullmatch(r"-?[0-9]+", val or ""):
                raise LabkitError(f"invalid label selector {text!r}: {op} needs an integer", field=field)
            reqs.append(_Requirement(key, "gt" if op == ">" else "lt", (val,)))
        else:
            reqs.append(_Requirement(key, "!=" if op == "!=" else "=", (val or "",)))
    return reqs


def match_label_selector(selector: str | list[_Requirement], labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy the selector expression (empty selector matches everything)."""
    reqs = parse_label_selector(selector) if isinstance(selector, str) else selector
    labels = labels or {}
    for r in reqs:
        present = r.key in labels
        v = labels.get(r.key)
        if r.op == "exists" and not present:
            return False
        if r.op == "!exists" and present:
            return False
        if r.op == "=" and v != r.values[0]:
            return False
        if r.op == "!=" and v == r.values[0]:
            return False
        if r.op == "in" and v not in r.values:
            return False
        if r.op == "notin" and present and v in r.values:
            return False
        if r.op in ("gt", "lt"):
            try:
                n = int(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return False
            if r.op == "gt" and not n > int(r.values[0]):
                return False
            if r.op == "lt" and not n < int(r.values[0]):
                return False
    return True


def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{pattern})$")


@dataclass(frozen=True)
class Selector:
    """Object selector (fluxcd/pkg ssa/jsondiff ``Selector``): empty fields match anything.

    ``group``, ``version``, ``kind``, ``name``, ``namespace`` are regular
    expressions anchored at both ends; ``label_selector`` and
    ``annotation_selector`` are label-selector expressions.
    """

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    def __post_init__(self) -> None:
        for attr in ("group", "version", "kind", "name", "namespace"):
            pattern = getattr(self, attr)
            if pattern:
                try:
                    _anchored(pattern)
                except re.error as err:
                    raise LabkitError(f"invalid regular expression {pattern!r}: {err}", field=attr) from None
        parse_label_selector(self.label_selector, field="labelSelector")
        parse_label_selector(self.annotation_selector, field="annotationSelector")

    def matches(self, obj: Mapping[str, Any]) -> bool:
        api_version = obj.get("apiVersion") or ""
        group, _, version = api_version.rpartition("/")
        md = obj.get("metadata") or {}
        checks = (
            (self.group, group),
            (self.version, version),
            (self.kind, obj.get("kind") or ""),
            (self.name, md.get("name") or ""),
            (self.namespace, md.get("namespace") or ""),
        )
        for pattern, value in checks:
            if pattern and not _anchored(pattern).match(value):
                return False
        if self.label_selector and not match_label_selector(self.label_selector, md.get("labels")):
            return False
        if self.annotation_selector and not match_label_selector(self.annotation_selector, md.get("annotations")):
            return False
        return True


@dataclass(frozen=True)
class IgnoreRule:
    """JSON pointers to leave alone on the objects matching ``target`` (all objects if None)."""

    paths: tuple[str, ...]
    target: Selector | None = None

    def __post_init__(self) -> None:
        for p in self.paths:
            parse_pointer(p)

    def applies_to(self, obj: Mapping[str, Any]) -> bool:
        return self.target is None or self.target.matches(obj)


def apply_ignore(obj: Mapping[str, Any], rules: Iterable[IgnoreRule]) -> Obj:
    """A copy of ``obj`` without the paths of every rule whose target matches it."""
    pointers: list[str] = []
    for rule in rules:
        if rule.applies_to(obj):
            pointers.extend(rule.paths)
    return apply_ignore_rules(obj, pointers)
