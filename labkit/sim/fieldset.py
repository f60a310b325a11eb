"""Field sets for server-side apply: which manager owns which field.

Server-side apply (structured-merge-diff in the real API server) tracks, per field
manager, the *set of fields* that manager last expressed an opinion about.  This
module is labkit's model of those sets, small enough to run at thousands of applies
per second and faithful in the behaviour GitOps depends on:

* A **path** is a tuple of steps from the object root.  A map key is a plain
  ``str``.  An element of an *associative list* (a list whose items are identified
  by key fields, e.g. ``containers`` by ``name``) is the step
  ``("k", (("name", "web"),))``.  An element of a *set* list (``finalizers``) is
  ``("v", value)``.  Every other list is *atomic*: it is one leaf, owned whole.
* ``fields_of(obj)`` is the set of leaf paths in an object, plus one marker path
  per associative-list element (its existence is owned too, as the ``"."`` entry
  of a real ``fieldsV1`` document).
* ``merge(live, applied)`` is the apply merge: maps merge key by key, associative
  lists merge element by element (by key), set lists union, atomic values are
  replaced.
* ``remove(obj, path)`` deletes one leaf or one list element.
* ``diff(live, new)`` is what an Update takes ownership of: the paths of ``new``
  whose value changed and the paths ``new`` no longer has, found by descending
  only where the two versions differ.

Which lists are associative and by which keys follows the Kubernetes OpenAPI
``x-kubernetes-list-map-keys`` for the types the simulator models (containers,
env, volumes, ports, conditions, ...), chosen by field name — an approximation
that matches every built-in type labkit models.  ``format_path`` renders a path the
way conflict messages do (``.spec.template.spec.containers[name="web"].image``) and
``to_fields_v1`` renders a set as a ``managedFields[].fieldsV1`` document.
"""
from __future__ import annotations

import functools
import json
import marshal
from typing import Any, Iterable

Path = tuple
Step = Any

# field name -> (key fields, defaults for missing key fields)
ASSOCIATIVE: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "containers": (("name",), {}),
    "initContainers": (("name",), {}),
    "ephemeralContainers": (("name",), {}),
    "env": (("name",), {}),
    "volumes": (("name",), {}),
    "volumeMounts": (("mountPath",), {}),
    "volumeDevices": (("devicePath",), {}),
    "imagePullSecrets": (("name",), {}),
    "conditions": (("type",), {}),
    "ownerReferences": (("uid",), {}),
    "hostAliases": (("ip",), {}),
    "topologySpreadConstraints": (("topologyKey", "whenUnsatisfiable"), {}),
    "resourceClaims": (("name",), {}),
}
# "ports" depends on the parent: container ports key on containerPort+protocol,
# service ports on port+protocol.
PORTS_CONTAINER = (("containerPort", "protocol"), {"protocol": "TCP"})
PORTS_SERVICE = (("port", "protocol"), {"protocol": "TCP"})
SET_LISTS = {"finalizers"}


def _list_kind(name: str, items: list) -> tuple[str, tuple[tuple[str, ...], dict[str, Any]] | None]:
    if name in SET_LISTS:
        return "set", None
    if name == "ports":
        first = next((i for i in items if isinstance(i, dict)), None)
        if first is not None and "containerPort" in first:
            return "map", PORTS_CONTAINER
        if first is not None and "port" in first:
            return "map", PORTS_SERVICE
        return "atomic", None
    spec = ASSOCIATIVE.get(name)
    if spec is not None and all(isinstance(i, dict) for i in items):
        return "map", spec
    return "atomic", None


def element_key(item: dict, spec: tuple[tuple[str, ...], dict[str, Any]]) -> tuple:
    keys, defaults = spec
    return ("k", tuple((k, item.get(k, defaults.get(k))) for k in keys))


def fields_of(obj: dict, prefix: Path = ()) -> set[Path]:
    """All leaf paths (and associative element markers) of ``obj``."""
    out: set[Path] = set()
    _walk(obj, prefix, out)
    return out


def _walk(node: dict, prefix: Path, out: set[Path]) -> None:
    for k, v in node.items():
        p = prefix + (k,)
        if isinstance(v, dict):
            if v:
                _walk(v, p, out)
            else:
                out.add(p)
        elif isinstance(v, list):
            kind, spec = _list_kind(k, v)
            if kind == "map":
                for item in v:
                    ep = p + (element_key(item, spec),)
                    out.add(ep)
                    _walk(item, ep, out)
            elif kind == "set":
                for item in v:
                    out.add(p + (("v", _hashable(item)),))
            else:
                out.add(p)
        else:
            out.add(p)


def diff(live: dict, new: dict, skip: Iterable[str] = ()) -> tuple[set[Path], set[Path]]:
    """``(changed, removed)`` between two versions of an object, without walking what they share.

    ``changed`` is every path of ``fields_of(new)`` whose value differs from ``live``'s (by
    ``get_path``), ``removed`` is ``fields_of(live) - fields_of(new)``; top-level keys in ``skip``
    are left out.  It is what an Update needs to decide who owns what, and is computed the cheap
    way: a map key whose two values are equal (one C-level ``==``) holds no changed and no removed
    path, so the walk descends only along the keys that differ and compares field by field only
    below the first value that is not a map on both sides.  A controller's Update usually changes
    one or two leaves of an object of a hundred, so this is the difference between touching two
    paths and touching two hundred.  (Equal values have equal field sets: the one exception, a set
    list of maps equal under ``==`` but printed differently, ``1`` against ``1.0``, is not an object
    the API server would store.)
    """
    changed: set[Path] = set()
    removed: set[Path] = set()
    _diff(live, new, (), changed, removed, skip)
    return changed, removed


def _diff(live: dict, new: dict, prefix: Path, changed: set[Path], removed: set[Path],
          skip: Iterable[str] = ()) -> None:
    n = len(prefix)
    for k, v in new.items():
        if k in skip:
            continue
        lv = live.get(k, _MISSING)
        if lv is not _MISSING:
            if lv is v or lv == v:
                continue
            if isinstance(v, dict) and isinstance(lv, dict) and v and lv:
                _diff(lv, v, prefix + (k,), changed, removed)
                continue
        # below here the field sets are compared path by path, from the parent maps (the steps
        # above are plain keys, so a path relative to them resolves exactly as from the root)
        nf: set[Path] = set()
        _walk({k: v}, prefix, nf)
        for q in nf:
            rel = q[n:]
            if get_path(live, rel) != get_path(new, rel):
                changed.add(q)
        if lv is not _MISSING:
            lf: set[Path] = set()
            _walk({k: lv}, prefix, lf)
            removed.update(lf - nf)
    for k, lv in live.items():
        if k not in new and k not in skip:
            _walk({k: lv}, prefix, removed)


def _hashable(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return v


def _find_element(lst: list, step: tuple, field: str) -> int:
    kind, spec = _list_kind(field, lst)
    if step[0] == "k":
        if spec is None:
            spec = ASSOCIATIVE.get(field) or (tuple(k for k, _ in step[1]), {})
        for i, item in enumerate(lst):
            if isinstance(item, dict) and element_key(item, spec) == step:
                return i
    else:
        for i, item in enumerate(lst):
            if _hashable(item) == step[1]:
                return i
    return -1


_MISSING = object()


def get_path(obj: Any, path: Path) -> Any:
    """The value at ``path`` or the sentinel ``MISSING``."""
    node = obj
    field = ""
    for step in path:
        if isinstance(step, tuple):
            if not isinstance(node, list):
                return _MISSING
            i = _find_element(node, step, field)
            if i < 0:
                return _MISSING
            node = node[i] if step[0] == "k" else step[1]
        else:
            if not isinstance(node, dict) or step not in node:
                return _MISSING
            node = node[step]
            field = step
    return node


MISSING = _MISSING


def remove(obj: dict, path: Path) -> bool:
    """Delete the leaf or list element at ``path``; prune maps left empty. True if removed."""
    stack: list[tuple[Any, Any]] = []
    node: Any = obj
    field = ""
    for step in path[:-1]:
        if isinstance(step, tuple):
            if not isinstance(node, list):
                return False
            i = _find_element(node, step, field)
            if i < 0:
                return False
            stack.append((node, i))
            node = node[i]
        else:
            if not isinstance(node, dict) or step not in node:
                return False
            stack.append((node, step))
            node = node[step]
            field = step
    last = path[-1]
    if isinstance(last, tuple):
        if not isinstance(node, list):
            return False
        i = _find_element(node, last, field)
        if i < 0:
            return False
        del node[i]
    else:
        if not isinstance(node, dict) or last not in node:
            return False
        del node[last]
    # prune containers emptied by the removal (never the top-level sections)
    while stack and len(stack) > 1:
        parent, key = stack.pop()
        child = parent[key]
        if (isinstance(child, dict) and not child) or (isinstance(child, list) and not child):
            del parent[key]
        else:
            break
    return True


def copy(v: Any) -> Any:
    """A fast deep copy of JSON-like data (``marshal`` round trip; plain recursion for anything else)."""
    if isinstance(v, (dict, list)):
        try:
            return marshal.loads(marshal.dumps(v))
        except ValueError:  # a value marshal does not know (never in API objects, but be safe)
            return _copy(v)
    return v


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) if isinstance(x, (dict, list)) else x for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) if isinstance(x, (dict, list)) else x for x in v]
    return v


def merge(live: dict, applied: dict) -> dict:
    """The apply merge of ``applied`` onto a copy of ``live``."""
    out = copy(live)
    _merge_into(out, applied)
    return out


def _merge_into(dst: dict, src: dict) -> None:
    for k, v in src.items():
        cur = dst.get(k, _MISSING)
        if isinstance(v, dict) and isinstance(cur, dict):
            _merge_into(cur, v)
        elif isinstance(v, list) and isinstance(cur, list):
            kind, spec = _list_kind(k, v if v else cur)
            if kind == "map":
                index = {element_key(item, spec): i for i, item in enumerate(cur) if isinstance(item, dict)}
                for item in v:
                    ek = element_key(item, spec)
                    i = index.get(ek)
                    if i is None:
                        cur.append(copy(item))
                        index[ek] = len(cur) - 1
                    else:
                        _merge_into(cur[i], item)
            elif kind == "set":
                seen = {_hashable(x) for x in cur}
                for item in v:
                    if _hashable(item) not in seen:
                        cur.append(copy(item))
                        seen.add(_hashable(item))
            else:
                dst[k] = copy(v)
        else:
            dst[k] = copy(v) if isinstance(v, (dict, list)) else v


def is_prefix(prefix: Path, path: Path) -> bool:
    return len(prefix) <= len(path) and path[: len(prefix)] == prefix


def format_path(path: Path) -> str:
    """``.spec.template.spec.containers[name="web"].image`` as conflict messages print it."""
    out = []
    for step in path:
        if isinstance(step, tuple):
            if step[0] == "k":
                inner = ",".join(f"{k}={json.dumps(v)}" for k, v in step[1])
                out.append(f"[{inner}]")
            else:
                out.append(f"[{step[1]}]")
        else:
            out.append("." + step)
    return "".join(out)


def to_fields_v1(paths: Iterable[Path]) -> dict:
    """Render a field set as a ``fieldsV1`` document (``f:`` / ``k:`` / ``v:`` keys).

    Siblings come out in the order of ``str(step)`` (associative-list elements before
    named fields), with a ``"."`` marker first under a list element that is itself
    owned — the order a sort of the whole paths would give, built as a tree first so
    only siblings are ever sorted.
    """
    tree: dict = {}
    for path in paths:
        node = tree
        for step in path:
            child = node.get(step)
            if child is None:
                child = node[step] = {}
            node = child
        if path and isinstance(path[-1], tuple) and path[-1][0] == "k":
            node[_DOT] = None
    return _render_tree(tree)


_DOT = object()


def _render_tree(tree: dict) -> dict:
    out: dict = {}
    if _DOT in tree:
        out["."] = {}
    steps = [s for s in tree if s is not _DOT]
    if len(steps) > 1:
        steps.sort(key=str)
    for step in steps:
        out[_step_key(step)] = _render_tree(tree[step])
    return out


@functools.lru_cache(maxsize=65536)
def _step_key(step: Any) -> str:
    if isinstance(step, tuple):
        if step[0] == "k":
            return "k:" + json.dumps({k: v for k, v in step[1]}, separators=(",", ":"), sort_keys=True)
        return "v:" + json.dumps(step[1])
    return "f:" + step
