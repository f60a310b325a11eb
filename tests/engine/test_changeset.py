"""ChangeSet as fluxcd/pkg ``ssa/changeset.go`` defines it, and kustomize-controller's
``HasChanged`` (internal/controller/utils.go)."""
from __future__ import annotations

import pytest

from labkit.engine.changeset import Action, ChangeSet, ChangeSetEntry, has_changed, subject_of


def deploy(name="web", ns="default"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns}}


NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}


def test_action_values_are_fluxs_lowercase_words():
    assert [a.value for a in (Action.CREATED, Action.CONFIGURED, Action.UNCHANGED, Action.DELETED, Action.SKIPPED, Action.UNKNOWN)] == [
        "created",
        "configured",
        "unchanged",
        "deleted",
        "skipped",
        "unknown",
    ]
    assert Action.Created is Action.CREATED
    assert Action("configured") is Action.CONFIGURED
    assert f"{Action.DELETED}" == "deleted"


def test_subject_namespaced_and_cluster_scoped():
    assert subject_of(deploy()) == "Deployment/default/web"
    assert subject_of(NS) == "Namespace/team-a"


def test_entry_for_object():
    e = ChangeSetEntry.for_object(deploy(), "configured")
    assert e.object_id == "default_web_apps_Deployment"
    assert e.subject == "Deployment/default/web"
    assert e.action is Action.CONFIGURED
    assert e.version == "v1"
    assert str(e) == "Deployment/default/web configured"


def test_entry_rejects_unknown_action():
    with pytest.raises(ValueError):
        ChangeSetEntry("a_b__C", "C/a/b", "exploded")  # type: ignore[arg-type]


def test_to_string_is_flux_event_text():
    cs = ChangeSet()
    cs.add(ChangeSetEntry.for_object(NS, Action.CREATED))
    cs.append(ChangeSetEntry.for_object(deploy(), Action.CONFIGURED))
    cs.extend([ChangeSetEntry.for_object(deploy("api"), Action.UNCHANGED)])
    assert cs.to_string() == "Namespace/team-a created\nDeployment/default/web configured\nDeployment/default/api unchanged"
    assert str(cs) == cs.to_string()
    assert ChangeSet().to_string() == ""


def test_to_map_and_counts():
    cs = ChangeSet(
        [
            ChangeSetEntry.for_object(deploy("a"), Action.CREATED),
            ChangeSetEntry.for_object(deploy("b"), Action.CREATED),
            ChangeSetEntry.for_object(deploy("c"), Action.UNCHANGED),
        ]
    )
    assert cs.to_map() == {"Deployment/default/a": "created", "Deployment/default/b": "created", "Deployment/default/c": "unchanged"}
    assert cs.counts() == {"created": 2, "unchanged": 1}
    assert len(cs) == 3
    assert [e.subject for e in cs.by_action("created")] == ["Deployment/default/a", "Deployment/default/b"]


def test_extend_with_another_changeset_keeps_order():
    a = ChangeSet([ChangeSetEntry.for_object(NS, Action.CREATED)])
    b = ChangeSet([ChangeSetEntry.for_object(deploy(), Action.CREATED)])
    a.extend(b)
    assert a.object_ids() == ["_team-a__Namespace", "default_web_apps_Deployment"]


@pytest.mark.parametrize(
    "action, changed",
    [("created", True), ("configured", True), ("deleted", True), ("unknown", True), ("unchanged", False), ("skipped", False)],
)
def test_has_changed(action, changed):
    assert has_changed(action) is changed


def test_changed_filters_entries():
    cs = ChangeSet(
        [
            ChangeSetEntry.for_object(deploy("a"), Action.UNCHANGED),
            ChangeSetEntry.for_object(deploy("b"), Action.CONFIGURED),
            ChangeSetEntry.for_object(deploy("c"), Action.SKIPPED),
        ]
    )
    assert cs.changed().to_string() == "Deployment/default/b configured"
