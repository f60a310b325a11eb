"""The fault seam itself: FaultPlan decisions, FaultyCluster / AuditCluster / FaultyRemote / FaultyRenderer.

These are unit tests of the wrappers against the simulator; how the Flux
dialect copes with what they inject is in ``test_flux_faults.py``.
"""
from __future__ import annotations

import random

import pytest

from labkit.core.clock import rng_for
from labkit.core.cluster import Cluster
from labkit.core.errors import ApiError, LabkitError, TemporaryError
from labkit.faults import (AuditCluster, Fault, FaultPlan, FaultyCluster, FaultyRemote, FaultyRenderer,
                           schedule_outage)
from labkit.gitops.render import RenderTimeoutError
from labkit.gitops.repo import ManifestRepo, RefNotFound
from labkit.sim import SimCluster

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}, "data": {"x": "1"}}


def faulty(*faults: Fault, seed: int = 1) -> tuple[SimCluster, FaultyCluster, FaultPlan]:
    sim = SimCluster(seed=seed, controllers=False)
    plan = FaultPlan(faults, log=sim.log)
    return sim, FaultyCluster(sim, plan, rng_for(seed, "faults")), plan


def test_faulty_cluster_is_a_cluster_and_transparent_without_faults():
    sim, c, plan = faulty()
    assert isinstance(c, Cluster)
    out = c.apply(CM, field_manager="m")
    assert out["data"] == {"x": "1"}
    assert c.get("v1", "ConfigMap", "a", "default")["data"] == {"x": "1"}
    assert [o["metadata"]["name"] for o in c.list("v1", "ConfigMap", "default")] == ["a"]
    assert c.is_namespaced("v1", "ConfigMap") is True
    c.delete("v1", "ConfigMap", "a", "default")
    assert sim.get("v1", "ConfigMap", "a", "default") is None
    assert plan.journal == []


@pytest.mark.parametrize("kind, reason, code, text", [
    ("internal", "InternalError", 500, "Internal error occurred: etcdserver: leader changed"),
    ("unavailable", "ServiceUnavailable", 503, "the server is currently unable to handle the request"),
    ("throttle", "TooManyRequests", 429, "Too many requests, please try again later."),
    ("conflict", "Conflict", 409, 'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
                                  "please apply your changes to the latest version and try again"),
    ("timeout", "Timeout", 504, "the server was unable to return a response in the time allotted, "
                                "but may still be processing the request"),
])
def test_each_api_fault_is_an_api_error_in_the_servers_words(kind, reason, code, text):
    sim, c, _ = faulty(Fault(kind, verbs=("apply",), retry_after=7))
    with pytest.raises(ApiError) as info:
        c.apply(CM, field_manager="m")
    err = info.value
    assert (err.reason, err.code, err.message) == (reason, code, text)
    assert err.retryable is (code >= 500 or code == 429)
    if kind == "throttle":
        assert err.retry_after == 7.0 and err.details["retryAfterSeconds"] == 7
    assert sim.get("v1", "ConfigMap", "a", "default") is None  # refused: nothing written


def test_lost_response_timeout_performs_the_write_then_fails():
    sim, c, _ = faulty(Fault("timeout", verbs=("apply",), dry_run=False, lost_response=True))
    with pytest.raises(ApiError, match="may still be processing"):
        c.apply(CM, field_manager="m")
    assert sim.get("v1", "ConfigMap", "a", "default")["data"] == {"x": "1"}


def test_dry_run_filter_separates_dry_runs_from_writes():
    sim, c, _ = faulty(Fault("unavailable", verbs=("apply",), dry_run=True))
    with pytest.raises(ApiError):
        c.apply(CM, field_manager="m", dry_run=True)
    assert c.apply(CM, field_manager="m")["data"] == {"x": "1"}


def test_windows_are_on_the_clock_and_stop_ends_everything():
    sim, c, plan = faulty(Fault("unavailable", start=10, end=20))
    c.get("v1", "ConfigMap", "a", "default")  # t=0: before the window
    sim.run(until=10)
    with pytest.raises(ApiError):
        c.get("v1", "ConfigMap", "a", "default")
    sim.run(until=20)  # the window is [start, end)
    c.get("v1", "ConfigMap", "a", "default")
    plan.add(Fault("internal"))
    with pytest.raises(ApiError):
        c.get("v1", "ConfigMap", "a", "default")
    plan.stop()
    c.get("v1", "ConfigMap", "a", "default")
    assert plan.quiet_after() == float("inf")
    assert [(i.time, i.kind, i.verb, i.object) for i in plan.journal] == [
        (10.0, "unavailable", "get", "ConfigMap/default/a"), (20.0, "internal", "get", "ConfigMap/default/a")]
    assert [e.detail for e in sim.log.filter(component="faults", event="FaultInjected")] == [
        {"target": "api", "verb": "get", "kind": "unavailable"}, {"target": "api", "verb": "get", "kind": "internal"}]


def test_kind_filter_limit_and_first_matching_rule_wins():
    sim, c, plan = faulty(Fault("conflict", kinds=("Secret",)), Fault("internal", verbs=("get",), limit=2))
    for _ in range(2):
        with pytest.raises(ApiError) as info:
            c.get("v1", "ConfigMap", "a", "default")
        assert info.value.reason == "InternalError"
    assert c.get("v1", "ConfigMap", "a", "default") is None  # limit reached
    with pytest.raises(ApiError) as info:
        c.get("v1", "Secret", "s", "default")
    assert info.value.reason == "Conflict"
    assert plan.counts() == {"internal": 2, "conflict": 1}


def test_rates_are_seeded_draws():
    def pattern(seed: int) -> list[bool]:
        _, c, _ = faulty(Fault("unavailable", rate=0.5), seed=seed)
        out = []
        for _ in range(40):
            try:
                c.get("v1", "ConfigMap", "a", "default")
                out.append(False)
            except ApiError:
                out.append(True)
        return out

    a, b = pattern(3), pattern(3)
    assert a == b
    assert 5 < sum(a) < 35  # both outcomes happen at rate 0.5
    assert pattern(4) != a


def test_slow_responses_accumulate_latency_for_the_engine_to_yield():
    sim, c, _ = faulty(Fault("slow", latency=2.5, verbs=("get", "apply")))
    c.get("v1", "ConfigMap", "a", "default")
    c.apply(CM, field_manager="m")
    c.list("v1", "ConfigMap")  # not slowed
    assert c.take_latency() == 5.0
    assert c.take_latency() == 0.0
    assert sim.get("v1", "ConfigMap", "a", "default") is not None  # slow calls still succeed


def test_watch_and_other_attributes_are_forwarded_only_when_the_inner_cluster_has_them():
    sim, c, _ = faulty(Fault("internal"))
    seen = []
    c.watch("v1", "ConfigMap", lambda t, o: seen.append((t, o["metadata"]["name"])))
    sim.apply(CM, field_manager="m")  # watch events are not faulted
    assert seen == [("ADDED", "a")]
    assert c.env is sim.env

    class NoWatch:
        name = "bare"

    bare = FaultyCluster(NoWatch(), FaultPlan(), random.Random(0))  # type: ignore[arg-type]
    assert getattr(bare, "watch", None) is None


def test_bad_fault_rules_are_refused():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")
    with pytest.raises(ValueError, match="rate"):
        Fault("internal", rate=1.5)
    with pytest.raises(ValueError, match="before it starts"):
        Fault("internal", start=5, end=1)
    with pytest.raises(ValueError, match="unknown verb"):
        Fault("internal", verbs=("patch",))
    with pytest.raises(ValueError, match="latency"):
        Fault("slow")


def test_audit_cluster_journals_writes_and_what_deletes_removed():
    sim = SimCluster(seed=1, controllers=False)
    audit = AuditCluster(sim)
    labelled = {**CM, "metadata": {**CM["metadata"], "labels": {"owner": "x"}, "annotations": {"note": "y"}}}
    audit.apply(labelled, field_manager="m")
    audit.apply(labelled, field_manager="m", dry_run=True)  # dry runs are not writes
    audit.delete("v1", "ConfigMap", "a", "default")
    audit.delete("v1", "ConfigMap", "a", "default")  # nothing left to delete
    assert [(w.verb, w.object, w.ok) for w in audit.writes] == [
        ("apply", "ConfigMap/default/a", True), ("delete", "ConfigMap/default/a", True),
        ("delete", "ConfigMap/default/a", True)]
    [d] = audit.deletes()
    assert d.labels == {"owner": "x"} and d.annotations == {"note": "y"}
    with pytest.raises(ApiError):
        audit.apply({"apiVersion": "v1", "kind": "Nope", "metadata": {"name": "n"}}, field_manager="m")
    assert audit.writes[-1].ok is False and audit.writes[-1].reason == "NotFound"


def seeded_repo(tmp_path) -> ManifestRepo:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.yaml").write_text("x: 1\n")
    repo = ManifestRepo(tmp_path / "repo", url="https://git.example/fleet")
    repo.seed(src, when=0)
    return repo


def test_faulty_remote_unavailable_and_corrupt_ref(tmp_path):
    repo = seeded_repo(tmp_path)
    plan = FaultPlan([Fault("git-unavailable", limit=1), Fault("git-corrupt-ref", limit=1)])
    remote = FaultyRemote(repo, plan, random.Random(0))
    with pytest.raises(TemporaryError) as info:
        remote.fetch("main")
    assert info.value.reason == "GitOperationFailed" and "unable to clone 'https://git.example/fleet'" in info.value.message
    bogus = remote.fetch("main")
    assert len(bogus) == 40 and bogus != repo.head()
    with pytest.raises(RefNotFound):
        remote.export(bogus)  # forwarded to the repository, which has no such commit
    assert remote.fetch("main") == repo.head()
    assert remote.head() == repo.head()  # everything else is the repository's


def test_schedule_outage_toggles_availability(tmp_path):
    repo = seeded_repo(tmp_path)
    sim = SimCluster(seed=1, controllers=False)
    schedule_outage(sim.env, repo, 10, 30)
    sim.run(until=9)
    assert repo.fetch("main")
    sim.run(until=11)
    with pytest.raises(TemporaryError):
        repo.fetch("main")
    sim.run(until=31)
    assert repo.fetch("main") == repo.head()


def test_faulty_renderer_times_out_then_renders(tmp_path):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")

    class Inner:
        timeout = 12.0
        calls = 0

        def render(self, directory, *, root=None, key=None, overrides=None):
            Inner.calls += 1
            return [{"kind": "ConfigMap"}]

    r = FaultyRenderer(Inner(), FaultPlan([Fault("render-timeout", limit=1)]), random.Random(0))
    with pytest.raises(RenderTimeoutError) as info:
        r.render("./apps", root=tmp_path, key="sha")
    assert isinstance(info.value, LabkitError)
    assert str(info.value) == "./apps: kustomize build timed out after 12s"
    assert Inner.calls == 0
    assert r.render("./apps", root=tmp_path, key="sha") == [{"kind": "ConfigMap"}]
