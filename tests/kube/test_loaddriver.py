"""``LoadDriver``: the load model's per-pod share written as KWOK's CPU annotation, against a test double.

No real cluster: ``FakeCluster`` is a minimal ``Cluster`` (get / list / apply / is_namespaced)
that records every apply.  Expected values are worked out by hand from the profile.
"""
from __future__ import annotations

import copy

import pytest
import simpy

from labkit.core.errors import ApiError
from labkit.core.events import EventLog
from labkit.kube.loaddriver import FIELD_MANAGER, USAGE_CPU_ANNOTATION, LoadDriver, selector_matches
from labkit.scenarios.isolation import NamespacedCluster
from labkit.sim.load import LoadModel, Spike

ANN = USAGE_CPU_ANNOTATION


class FakeCluster:
    def __init__(self):
        self.objects: dict[tuple, dict] = {}
        self.applies: list[dict] = []
        self.fail_apply: dict[str, ApiError] = {}  # pod name -> error to raise on its next apply
        self.fail_list: ApiError | None = None

    def add(self, obj):
        md = obj["metadata"]
        self.objects[(obj["apiVersion"], obj["kind"], md.get("namespace"), md["name"])] = copy.deepcopy(obj)

    def is_namespaced(self, api_version, kind):
        return kind != "Namespace"

    def get(self, api_version, kind, name, namespace=None):
        obj = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def list(self, api_version, kind, namespace=None, label_selector=None):
        if self.fail_list is not None:
            err, self.fail_list = self.fail_list, None
            raise err
        out = []
        for (av, k, ns, _), obj in self.objects.items():
            labels = obj["metadata"].get("labels") or {}
            if (av, k) == (api_version, kind) and (namespace is None or ns == namespace) and \
                    all(labels.get(a) == b for a, b in (label_selector or {}).items()):
                out.append(copy.deepcopy(obj))
        return out

    def apply(self, obj, *, field_manager, force=False, dry_run=False):
        md = obj["metadata"]
        self.applies.append({"obj": copy.deepcopy(obj), "manager": field_manager, "force": force})
        if md["name"] in self.fail_apply:
            raise self.fail_apply.pop(md["name"])
        key = (obj["apiVersion"], obj["kind"], md["namespace"], md["name"])
        if key not in self.objects:  # what the API server says to an annotation-only apply of a missing pod
            raise ApiError("Invalid", f'Pod "{md["name"]}" is invalid: spec.containers: Required value', code=422)
        live = self.objects[key]
        live["metadata"].setdefault("annotations", {}).update(md.get("annotations") or {})
        return copy.deepcopy(live)

    def annotation(self, name, namespace="shop"):
        return (self.objects[("v1", "Pod", namespace, name)]["metadata"].get("annotations") or {}).get(ANN)


def deployment(ns="shop", name="web"):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}}}}


def pod(name, *, ns="shop", app="web", phase="Running", ready=True, terminating=False, annotation=None):
    md = {"name": name, "namespace": ns, "labels": {"app": app}}
    if terminating:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if annotation is not None:
        md["annotations"] = {ANN: annotation}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


class Clock:
    def __init__(self, now=0.0):
        self.now = now


@pytest.fixture
def fake():
    c = FakeCluster()
    c.add(deployment())
    for n in ("a", "b", "c"):
        c.add(pod(n))
    return c


def test_the_demand_is_shared_among_ready_pods_only(fake):
    fake.add(pod("pending", phase="Pending", ready=False))
    fake.add(pod("leaving", terminating=True, annotation="40m"))
    fake.add(pod("warming", ready=False))  # running, never annotated: left at KWOK's default
    fake.add(pod("sick", ready=False, annotation="250m"))  # was ready, is not: no traffic any more
    fake.add(pod("other", app="api"))  # another workload's pod in the same namespace
    model = LoadModel().set("shop/web", 900.0)
    [report] = LoadDriver(fake, model, Clock()).tick()
    assert (report.ready, report.value, report.writes) == (3, "300m", 4)
    assert [fake.annotation(n) for n in "abc"] == ["300m"] * 3
    assert fake.annotation("sick") == "0m"
    assert fake.annotation("warming") is None and fake.annotation("pending") is None
    assert fake.annotation("leaving") == "40m" and fake.annotation("other") is None


def test_per_pod_usage_is_truncated_to_whole_millicores_like_the_simulators_hpa(fake):
    model = LoadModel().set("shop/web", 170.0)  # 56.67 m each
    LoadDriver(fake, model, Clock()).tick()
    assert fake.annotation("a") == "56m"


def test_writes_only_what_changed_with_its_own_field_manager(fake):
    fake.add(pod("d", annotation="225m"))  # already right for 900 m over 4 pods
    clock = Clock(0.0)
    model = LoadModel().set("shop/web", Spike(100.0, 900.0, start=10.0, duration=20.0))
    driver = LoadDriver(fake, model, clock)
    driver.tick()  # t=0: 100 m over 4 ready pods
    assert [fake.annotation(n) for n in "abcd"] == ["25m"] * 4 and driver.writes == 4
    assert all(a["manager"] == FIELD_MANAGER and a["force"] for a in fake.applies)
    assert all(a["obj"]["metadata"] == {"name": a["obj"]["metadata"]["name"], "namespace": "shop",
                                        "annotations": {ANN: "25m"}} for a in fake.applies)
    assert driver.tick()[0].writes == 0 and driver.writes == 4  # same time, same value: nothing written
    clock.now = 9.0
    assert driver.tick()[0].writes == 0  # still the base load
    clock.now = 10.0
    assert driver.tick()[0].writes == 4 and fake.annotation("d") == "225m"
    fake.objects[("v1", "Pod", "shop", "b")]["status"]["conditions"][0]["status"] = "False"  # b turns unready
    report = driver.tick()[0]
    assert (report.ready, report.value, report.writes) == (3, "300m", 4)  # a, c, d up; b to 0m
    assert fake.annotation("b") == "0m"


def test_pods_vanishing_and_api_errors_never_crash_and_are_retried(fake):
    log = EventLog(lambda: 0.0)
    model = LoadModel().set("shop/web", 600.0)
    driver = LoadDriver(fake, model, Clock(), log=log)
    fake.fail_apply["a"] = ApiError("NotFound", 'pods "a" not found', code=404)
    report = driver.tick()[0]
    assert report.writes == 2 and len(report.errors) == 1 and "NotFound" in report.errors[0]
    assert fake.annotation("a") is None and fake.annotation("b") == "200m"
    assert driver.tick()[0].writes == 1 and fake.annotation("a") == "200m"  # retried on the next tick
    # a pod deleted between the list and the write: the annotation-only apply is refused (422), not a crash
    real_list = fake.list
    fake.list = lambda *a, **k: real_list(*a, **k) + [pod("ghost")]
    report = driver.tick()[0]  # four ready pods listed now: 150 m each, and the ghost's write refused
    assert report.writes == 3 and len(report.errors) == 1 and "Pod/ghost: Invalid" in report.errors[0]
    fake.list = real_list
    fake.fail_list = ApiError("ServiceUnavailable", "connection refused", code=503)
    assert driver.tick()[0].errors == ["ServiceUnavailable: connection refused"]
    assert {e.event for e in log.filter(component="load-driver")} == {"LoadApplied", "LoadWriteFailed"}


def test_a_workload_not_deployed_yet_is_skipped():
    fake = FakeCluster()
    [report] = LoadDriver(fake, LoadModel().set("shop/web", 500.0), Clock()).tick()
    assert (report.ready, report.writes, report.errors) == (0, 0, [])


def test_through_the_isolation_wrapper_the_runs_namespace_is_written():
    inner = FakeCluster()
    inner.add(deployment(ns="lkabc-1flux-shop"))
    inner.add(pod("a", ns="lkabc-1flux-shop"))
    inner.add(pod("a", ns="shop"))  # somebody else's namespace called shop
    view = NamespacedCluster(inner, "lkabc-1flux-", run_id="abc", name="test")
    LoadDriver(view, LoadModel().set("shop/web", 300.0), Clock()).tick()
    assert inner.annotation("a", "lkabc-1flux-shop") == "300m"
    assert inner.annotation("a", "shop") is None


def test_as_a_process_it_follows_the_profile_on_the_labs_clock(fake):
    env = simpy.Environment()
    model = LoadModel().set("shop/web", Spike(150.0, 600.0, start=5.0, duration=100.0))
    driver = LoadDriver(fake, model, env, period=2.0).start()
    env.run(until=5.0)  # ticks at 0, 2, 4: the base load
    assert driver.ticks == 3 and fake.annotation("a") == "50m"
    env.run(until=7.0)  # tick at 6: the plateau
    assert driver.ticks == 4 and fake.annotation("a") == "200m"
    driver.stop()
    env.run(until=20.0)
    assert driver.ticks == 4  # stopped: the wake-up at 8 ends the process without a tick


def test_selector_matching():
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]}
    assert selector_matches(sel, {"app": "web", "tier": "fe"})
    assert not selector_matches(sel, {"app": "web", "tier": "be"})
    assert not selector_matches(sel, {"app": "web"})
    assert not selector_matches({}, {"app": "web"})  # an empty selector selects nothing here
    assert selector_matches({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, {"app": "web"})


def test_a_non_positive_period_is_refused_naming_the_field(fake):
    from labkit.core.errors import LabkitError

    with pytest.raises(LabkitError) as e:
        LoadDriver(fake, LoadModel(), Clock(), period=0)
    assert e.value.field == "period"
