"""Inventory ids and diff, following kubernetes-sigs/cli-utils ``pkg/object/objmetadata.go``
(``ObjMetadata.String`` / ``ParseObjMetadata``) and fluxcd/kustomize-controller
``internal/inventory/inventory.go`` (entries ``{id, v}``, ``Diff``)."""
from __future__ import annotations

import pytest

from labkit.engine.changeset import Action, ChangeSet, ChangeSetEntry
from labkit.engine.inventory import Inventory, InventoryEntry, ObjectId, diff, object_id, parse_object_id
from labkit.core.errors import LabkitError


def o(api_version, kind, name, ns=None):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": api_version, "kind": kind, "metadata": md}


@pytest.mark.parametrize(
    "obj, expected",
    [
        (o("apps/v1", "Deployment", "web", "default"), "default_web_apps_Deployment"),
        (o("v1", "ConfigMap", "web-config", "default"), "default_web-config__ConfigMap"),
        (o("v1", "Namespace", "team-a"), "_team-a__Namespace"),
        (
            o("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
            "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        ),
        (o("rbac.authorization.k8s.io/v1", "ClusterRole", "system:aggregate-to-view"), "_system__aggregate-to-view_rbac.authorization.k8s.io_ClusterRole"),
        (o("rbac.authorization.k8s.io/v1", "RoleBinding", "a:b", "default"), "default_a__b_rbac.authorization.k8s.io_RoleBinding"),
        (o("networking.k8s.io/v1", "Ingress", "web", "prod"), "prod_web_networking.k8s.io_Ingress"),
    ],
)
def test_object_id_format(obj, expected):
    assert object_id(obj) == expected


def test_parse_round_trip():
    for text in [
        "default_web_apps_Deployment",
        "default_web-config__ConfigMap",
        "_team-a__Namespace",
        "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        "_system__aggregate-to-view_rbac.authorization.k8s.io_ClusterRole",
    ]:
        assert str(parse_object_id(text)) == text


def test_parse_fields():
    assert parse_object_id("default_web_apps_Deployment") == ObjectId("default", "web", "apps", "Deployment")
    assert parse_object_id("_team-a__Namespace") == ObjectId("", "team-a", "", "Namespace")
    assert parse_object_id("_system__foo_rbac.authorization.k8s.io_ClusterRole").name == "system:foo"


@pytest.mark.parametrize("bad", ["nounderscores", "ns_only", "a_b", "ns_a_b_c_apps_Deployment", "ns__apps_Deployment", "ns_web_apps_"])
def test_parse_errors(bad):
    with pytest.raises(LabkitError):
        parse_object_id(bad)


def test_entry_version_and_api_version():
    e = InventoryEntry.of(o("apps/v1", "Deployment", "web", "default"))
    assert e == InventoryEntry("default_web_apps_Deployment", "v1")
    assert e.api_version == "apps/v1"
    assert InventoryEntry("_team-a__Namespace", "v1").api_version == "v1"
    assert e.to_ref() == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}}
    assert InventoryEntry("_team-a__Namespace", "v1").to_ref()["metadata"] == {"name": "team-a"}


def test_status_round_trip():
    inv = Inventory.from_objects([o("v1", "Namespace", "team-a"), o("apps/v1", "Deployment", "web", "team-a")])
    status = inv.to_status()
    assert status == {
        "entries": [
            {"id": "_team-a__Namespace", "v": "v1"},
            {"id": "team-a_web_apps_Deployment", "v": "v1"},
        ]
    }
    assert Inventory.from_status(status).ids() == inv.ids()
    assert len(Inventory.from_status(None)) == 0


def test_from_status_errors_name_the_entry():
    with pytest.raises(LabkitError) as exc:
        Inventory.from_status({"entries": [{"id": "_ns__Namespace", "v": "v1"}, {"id": "garbage", "v": "v1"}]}, file="ks.yaml")
    assert str(exc.value).startswith("ks.yaml: status.inventory.entries[1].id: ")


def test_add_replaces_same_id():
    inv = Inventory()
    inv.add(InventoryEntry("default_hpa_autoscaling_HorizontalPodAutoscaler", "v1"))
    inv.add(InventoryEntry("default_hpa_autoscaling_HorizontalPodAutoscaler", "v2"))
    assert [e.v for e in inv] == ["v2"]


def test_from_change_set_keeps_versions():
    cs = ChangeSet([ChangeSetEntry.for_object(o("autoscaling/v2", "HorizontalPodAutoscaler", "web", "default"), Action.CREATED)])
    inv = Inventory.from_change_set(cs)
    assert inv.to_status() == {"entries": [{"id": "default_web_autoscaling_HorizontalPodAutoscaler", "v": "v2"}]}


def test_diff_returns_stale_entries_in_flux_order():
    old = Inventory.from_objects(
        [
            o("apps/v1", "Deployment", "web", "default"),
            o("v1", "Service", "web", "default"),
            o("v1", "ConfigMap", "old-config", "default"),
            o("v1", "Namespace", "legacy"),
            o("apps/v1", "Deployment", "old-api", "default"),
            o("example.com/v1", "Widget", "w", "default"),
        ]
    )
    new = Inventory.from_objects([o("apps/v1", "Deployment", "web", "default"), o("v1", "Service", "web", "default")])
    stale = diff(old, new)
    assert [e.id for e in stale] == [
        "_legacy__Namespace",
        "default_old-config__ConfigMap",
        "default_old-api_apps_Deployment",
        "default_w_example.com_Widget",
    ]
    assert old.diff(new) == stale
    assert diff(new, old) == []


def test_diff_is_independent_of_input_order():
    objs = [o("v1", "Secret", f"s{i}", "default") for i in range(5)] + [o("v1", "Namespace", "n")]
    a = Inventory.from_objects(objs)
    b = Inventory.from_objects(list(reversed(objs)))
    assert [e.id for e in diff(a, Inventory())] == [e.id for e in diff(b, Inventory())]


def test_contains():
    inv = Inventory.from_objects([o("v1", "Namespace", "n")])
    assert "_n__Namespace" in inv
    assert o("v1", "Namespace", "n") in inv
    assert InventoryEntry("_n__Namespace", "v1") in inv
    assert o("v1", "Namespace", "m") not in inv
