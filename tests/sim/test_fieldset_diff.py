"""``fieldset.diff`` gives exactly what the path-by-path definition gives.

An Update's field ownership (``ApiStore._take_changed``) needs the paths whose value changed
and the paths that disappeared.  The definition walks every path of both versions; ``diff``
skips what the two versions share.  These properties compare the two on random objects built
from the shapes ownership cares about: nested maps, associative lists (containers by name,
ports by containerPort + protocol, duplicate keys included), set lists (finalizers), atomic
lists and empty maps, each version derived from the other by a few random edits.
"""
from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.sim import fieldset
from labkit.sim.store import IDENTITY_PATHS, ApiStore

SCALARS = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "web", ""]), st.booleans(), st.none())
NAMES = st.sampled_from(["web", "side", "init"])


def containers():
    item = st.fixed_dictionaries({"name": NAMES}, optional={
        "image": st.sampled_from(["nginx:1", "nginx:2"]),
        "env": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["A", "B"])}, optional={"value": SCALARS}),
                        max_size=3),
        "ports": st.lists(st.fixed_dictionaries({"containerPort": st.sampled_from([80, 8080])},
                                                optional={"protocol": st.sampled_from(["TCP", "UDP"])}), max_size=2),
        "args": st.lists(SCALARS, max_size=3),
    })
    return st.lists(item, max_size=3)


def maps(depth: int = 2):
    leaf = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.just({}))
    if depth == 0:
        return leaf
    return st.one_of(leaf, st.dictionaries(st.sampled_from(["x", "y", "z", "replicas"]), maps(depth - 1), max_size=3))


OBJECTS = st.fixed_dictionaries({
    "apiVersion": st.just("apps/v1"),
    "kind": st.just("Deployment"),
    "metadata": st.fixed_dictionaries({"name": st.just("web")}, optional={
        "namespace": st.just("default"),
        "labels": st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["a", "b"]), max_size=2),
        "finalizers": st.lists(st.sampled_from(["f1", "f2", "f3"]), max_size=3),
    }),
}, optional={
    "spec": st.fixed_dictionaries({}, optional={"template": st.fixed_dictionaries({}, optional={
        "spec": st.fixed_dictionaries({}, optional={"containers": containers()})}), "other": maps()}),
    "status": maps(1),
    "data": maps(),
})


def naive(live: dict, new: dict) -> tuple[set, set]:
    """The definition: every path of both versions, compared one by one (status left out)."""
    new_fields = fieldset.fields_of(new) - IDENTITY_PATHS
    old_fields = fieldset.fields_of(live) - IDENTITY_PATHS
    changed = {p for p in new_fields if p[0] != "status" and fieldset.get_path(live, p) != fieldset.get_path(new, p)}
    removed = {p for p in old_fields - new_fields if p[0] != "status"}
    return changed, removed


def _maps(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _maps(v)
    elif isinstance(node, list):
        for v in node:
            yield from _maps(v)


@st.composite
def pairs(draw):
    live = draw(OBJECTS)
    new = copy.deepcopy(live)
    other = draw(OBJECTS)
    for _ in range(draw(st.integers(1, 4))):
        # graft a random top-level or second-level section of another object, or drop one
        top = draw(st.sampled_from(sorted(set(new) | set(other))))
        action = draw(st.sampled_from(["graft", "drop", "deep", "edit", "edit"]))
        if action == "edit":
            # set or delete one key of a map anywhere in the object (list elements included)
            nodes = list(_maps(new))
            node = draw(st.sampled_from(nodes))
            key = draw(st.sampled_from(["name", "image", "value", "protocol", "x", "replicas"]))
            if draw(st.booleans()) and key in node and node is not new:
                del node[key]
            elif node is not new:
                node[key] = draw(SCALARS)
        elif action == "drop" and top not in ("apiVersion", "kind", "metadata"):
            new.pop(top, None)
        elif action == "deep" and isinstance(new.get(top), dict) and isinstance(other.get(top), dict) and other[top]:
            k = draw(st.sampled_from(sorted(other[top])))
            new[top][k] = copy.deepcopy(other[top][k])
        elif top in other:
            new[top] = copy.deepcopy(other[top])
    return live, new


@settings(max_examples=400, deadline=None)
@given(pairs())
def test_diff_equals_the_path_by_path_definition(pair):
    live, new = pair
    changed, removed = fieldset.diff(live, new, {"status"})
    assert (changed - IDENTITY_PATHS, removed - IDENTITY_PATHS) == naive(live, new)


@settings(max_examples=200, deadline=None)
@given(OBJECTS)
def test_diff_of_an_object_with_itself_is_empty(obj):
    assert fieldset.diff(obj, copy.deepcopy(obj)) == (set(), set())


def test_an_update_owns_only_the_fields_it_changed():
    """Through the store: kubectl-edit of one container's image takes that leaf (and the element's
    marker, whose value, the element, changed with it) and nothing of the other container."""
    import simpy

    store = ApiStore(simpy.Environment())
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1"},
                                                         {"name": "side", "image": "busybox:1"}]}}}}
    store.apply(dep, field_manager="gitops")
    live = store.get("apps/v1", "Deployment", "web", "default")
    live["metadata"].pop("managedFields")
    live["spec"]["template"]["spec"]["containers"][1]["image"] = "busybox:2"
    store.update(live, field_manager="kubectl-edit")
    side = ("spec", "template", "spec", "containers", ("k", (("name", "side"),)))
    assert store.owners_of("apps", "Deployment", "default", "web", side + ("image",)) == ["kubectl-edit"]
    edit = [e for e in store.managed_fields("apps", "Deployment", "default", "web") if e.manager == "kubectl-edit"]
    assert edit[0].fields == {side, side + ("image",)}
