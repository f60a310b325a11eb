"""``kinds.type_errors`` reports what checking each typed pattern on its own reports, in that order.

The store checks every write against the kind's typed patterns (``spec.replicas: int``,
``spec.template.spec.containers[].image: str`` ...) in one walk of a compiled trie.  The reference
here is the definition: each pattern in turn, every value it names (every element of a ``[]``
list, in order), its path spelled the API server's way.  Random Deployments and Services with
wrongly typed values anywhere the patterns look must give the same errors in the same order.
"""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.sim.kinds import _META_TYPES, KindRegistry, _ok, type_errors

REGISTRY = KindRegistry()
ANY = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.floats(0, 2, allow_nan=False),
                st.sampled_from(["x", "80"]), st.just({}), st.just([]), st.just({"name": "n"}))


def _values(obj: Any, parts: list[str], trail: str) -> list[tuple[str, Any]]:
    if not parts:
        return [(trail, obj)]
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        name = head[:-2]
        if not isinstance(obj, dict) or not isinstance(obj.get(name), list):
            return []
        out = []
        for i, item in enumerate(obj[name]):
            label = f'{trail}.{name}[{i}]'
            if isinstance(item, dict) and "name" in item:
                label = f'{trail}.{name}[name="{item["name"]}"]'
            out.extend(_values(item, rest, label))
        return out
    if not isinstance(obj, dict) or head not in obj:
        return []
    return _values(obj[head], rest, f"{trail}.{head}")


def reference(info, obj: dict) -> list:
    errs = []
    if info.top_level is not None:
        errs += [(f".{k}", "undeclared", obj[k]) for k in obj if k not in info.top_level]
    for pattern, want in {**_META_TYPES, **info.typed}.items():
        errs += [(path, want, v) for path, v in _values(obj, pattern.split("."), "") if not _ok(want, v)]
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    for section in ("labels", "annotations"):
        if isinstance(md.get(section), dict):
            errs += [(f".metadata.{section}.{k}", "str", v) for k, v in md[section].items() if not isinstance(v, str)]
    return errs


def maybe(value):
    return st.one_of(value, ANY)


CONTAINER = st.fixed_dictionaries({"name": maybe(st.sampled_from(["web", "side"])),
                                   "image": maybe(st.just("nginx:1"))}, optional={
    "ports": maybe(st.lists(st.fixed_dictionaries({"containerPort": maybe(st.just(80))}), max_size=2)),
    "env": maybe(st.lists(st.just({"name": "A"}), max_size=1))})
SKELETON = st.fixed_dictionaries({
    "apiVersion": st.just("apps/v1"), "kind": st.just("Deployment"),
    "metadata": st.fixed_dictionaries({"name": maybe(st.just("web"))},
                                      optional={"labels": maybe(st.dictionaries(st.just("app"), ANY, max_size=1))}),
    "spec": st.fixed_dictionaries({"template": st.fixed_dictionaries({"spec": st.fixed_dictionaries({
        "containers": st.lists(maybe(CONTAINER), max_size=3)}, optional={"terminationGracePeriodSeconds": ANY})},
        optional={"metadata": maybe(st.fixed_dictionaries({}, optional={"labels": ANY}))})},
        optional={"replicas": ANY, "selector": ANY, "strategy": ANY})}, optional={"extra": ANY})


@st.composite
def deployments(draw):
    """A Deployment skeleton with wrong types at the leaves, and now and then one level knocked out."""
    obj = draw(SKELETON)
    if draw(st.integers(0, 3)) == 0:
        path = draw(st.sampled_from([("metadata",), ("spec",), ("spec", "template"), ("spec", "template", "spec"),
                                     ("spec", "template", "spec", "containers")]))
        node = obj
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = draw(ANY)
    return obj


SERVICE = st.fixed_dictionaries({"apiVersion": st.just("v1"), "kind": st.just("Service"),
                                 "metadata": st.just({"name": "s"})},
                                optional={"spec": maybe(st.fixed_dictionaries({}, optional={
                                    "ports": maybe(st.lists(maybe(st.fixed_dictionaries({}, optional={
                                        "port": ANY, "name": ANY})), max_size=3))}))})


@settings(max_examples=300, deadline=None)
@given(st.one_of(deployments(), SERVICE))
def test_type_errors_match_checking_pattern_by_pattern(obj):
    info = REGISTRY.lookup(obj["apiVersion"], obj["kind"])
    assert type_errors(info, obj) == reference(info, obj)


def test_errors_come_in_pattern_order_then_list_order():
    info = REGISTRY.lookup("apps/v1", "Deployment")
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": "3", "template": {"spec": {"containers": [
               {"name": 1, "image": 2}, {"name": 4, "image": 3}]}}}}
    assert [(p, w) for p, w, _v in type_errors(info, obj)] == [
        (".spec.replicas", "int"),
        (".spec.template.spec.containers[name=\"1\"].name", "str"),
        (".spec.template.spec.containers[name=\"4\"].name", "str"),
        (".spec.template.spec.containers[name=\"1\"].image", "str"),
        (".spec.template.spec.containers[name=\"4\"].image", "str"),
    ]
