"""The invariant checks themselves: each one fails on the situation it exists to catch."""
from __future__ import annotations

import base64

from labkit.core.events import EventLog
from labkit.faults import AuditCluster
from labkit.faults import invariants as inv
from labkit.flux.crds import flux_crds
from labkit.sim import SimCluster

OWNER = {"kustomize.toolkit.fluxcd.io/name": "a", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}


def cm(name: str, labels=None, annotations=None, **data):
    md = {"name": name, "namespace": "default"}
    if labels:
        md["labels"] = labels
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}


def test_missing_fields_is_a_subset_check_with_associative_lists():
    desired = {"spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}, "args": ["a", "b"]}
    live = {"spec": {"ports": [{"port": 9999, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}],
                     "selector": {"app": "x"}, "type": "ClusterIP"}, "args": ["a", "b"]}
    assert inv.missing_fields(desired, live) == []
    assert inv.missing_fields(desired, {**live, "args": ["a"]}) == ["/args"]
    assert inv.missing_fields(desired, {"spec": {"ports": [{"port": 81}], "selector": {}}, "args": ["a", "b"]}) == [
        "/spec/ports/0", "/spec/selector/app"]


def test_converged_inventory_and_orphan_checks_catch_what_they_are_for():
    sim = SimCluster(seed=1, controllers=False)
    sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}, field_manager="m")
    for crd in flux_crds():
        sim.apply(crd, field_manager="m")
    sim.run(until=1)  # CRDs established
    d = inv.FluxDialect(sim, ["a"])
    sim.apply(cm("x", labels=OWNER, v="1"), field_manager="kustomize-controller")
    sim.apply(cm("stray", labels=OWNER, v="1"), field_manager="kustomize-controller")
    sim.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": "a", "namespace": "flux-system"},
               "spec": {"interval": "1m", "sourceRef": {"kind": "GitRepository", "name": "s"}, "prune": True}},
              field_manager="m")
    sim.patch_status("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "a", "flux-system",
                     {"inventory": {"entries": [{"id": "default_x__ConfigMap", "v": "v1"}]}}, field_manager="m")
    desired = {"a": [cm("x", v="1")]}
    assert inv.converged(sim, desired, d) == []
    assert inv.converged(sim, {"a": [cm("x", v="2")]}, d) == ["converged: ConfigMap/default/x (a) differs from git at /data/v"]
    assert inv.converged(sim, {"a": [cm("y")]}, d) == ["converged: ConfigMap/default/y (a) is missing"]
    assert inv.inventory_matches(desired, d) == []
    assert inv.inventory_matches({"a": []}, d)[0].startswith("inventory_matches: a inventory differs: extra")
    assert inv.no_orphans(sim, [("v1", "ConfigMap")], d, ["a"]) == [
        "no_orphans: ConfigMap/default/stray carries the marks of a but is not in its inventory"]
    assert inv.no_orphans(sim, [("v1", "ConfigMap")], d, ["a"], exempt={"ConfigMap/default/stray"}) == []


def test_delete_checks_read_what_the_audit_saw():
    sim = SimCluster(seed=1, controllers=False)
    audit = AuditCluster(sim)
    d = inv.FluxDialect(sim, ["a"])
    sim.apply(cm("owned", labels=OWNER), field_manager="m")
    sim.apply(cm("foreign", labels={"team": "x"}), field_manager="m")
    sim.apply(cm("kept", labels=OWNER, annotations={"kustomize.toolkit.fluxcd.io/prune": "Disabled"}), field_manager="m")
    for name in ("owned", "foreign", "kept"):
        audit.delete("v1", "ConfigMap", name, "default")
    deletes = audit.deletes()
    assert [v.split(" was")[0] for v in inv.deletes_were_owned(deletes, d)] == [
        "deletes_were_owned: ConfigMap/default/foreign"]
    assert [v.split(" was")[0] for v in inv.protected_survived(deletes, d)] == [
        "protected_survived: ConfigMap/default/kept"]
    assert inv.foreign_survived(sim, [cm("foreign")]) == ["foreign_survived: ConfigMap/default/foreign (not from git) is gone"]


def test_quiet_writes_and_secret_leaks():
    log = EventLog()
    log.record("api", "Updated", "ConfigMap/default/x", time=5)
    log.record("api", "Updated", "ConfigMap/default/other", time=6)
    assert inv.quiet_writes(log, 4, {"ConfigMap/default/x"}) == [
        "quiet_writes: Updated ConfigMap/default/x at t=5 although nothing changed"]
    assert inv.quiet_writes(log, 5.5, {"ConfigMap/default/x"}) == []
    secret = "hunter2-do-not-log"
    assert inv.no_secret_leaks([secret], log=log) == []
    log.record("kustomize-controller", "ReconciliationFailed", "Secret/default/s",
               detail={"message": "bad value " + base64.b64encode(secret.encode()).decode()})
    assert inv.no_secret_leaks([secret], log=log) == ["no_secret_leaks: a Secret value (aHVu…) appears in event log"]
    assert inv.no_secret_leaks([secret], statuses=[{"conditions": [{"message": secret}]}]) == [
        "no_secret_leaks: a Secret value (hunt…) appears in status[0]"]
