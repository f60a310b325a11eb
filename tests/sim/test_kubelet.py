"""The kubelet: image pulls and their back-off, crash loops, readiness, termination, pod phases.

Timings.deterministic(): scheduling 0.5 s, first pull 2 s, a missing image is
reported after 1 s (pull_error), start 1 s, no readiness jitter, termination
2 s, and the kubelet's next pod sync 1 s after a failure (kubelet_resync).
Back-off: 10 s doubling to 300 s (flowcontrol.Backoff as the kubelet uses it).
"""
from __future__ import annotations

from simhelpers import at, events, make_cluster, times

from labkit.sim.registry import ImageRegistry


def pod(name: str, image: str, *, restart: str = "Always", probe_delay: float | None = None, **extra) -> dict:
    c = {"name": "main", "image": image}
    if probe_delay is not None:
        c["readinessProbe"] = {"exec": {"command": ["true"]}, "initialDelaySeconds": probe_delay}
    spec = {"containers": [c], "restartPolicy": restart}
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def waiting_reasons(c, name: str) -> list[tuple[float, str]]:
    """(time, state) each time the container's state changes."""
    out: list = []

    def watch(_ev, obj):
        if obj["metadata"]["name"] != name:
            return
        cs = (obj.get("status") or {}).get("containerStatuses") or []
        if not cs:
            return
        state = cs[0]["state"]
        label = next(iter(state))
        if label == "waiting":
            label = state["waiting"]["reason"]
        if not out or out[-1][1] != label:
            out.append((c.now, label))

    c.store.watch("", "Pod", watch)
    return out


def test_err_image_pull_then_image_pull_backoff_with_doubling_delays():
    c = make_cluster(registry=ImageRegistry(strict=True))
    states = waiting_reasons(c, "p")
    c.store.create(pod("p", "ghcr.io/acme/web:bad"), manager="test")
    at(c, 1000)
    # attempt k starts at a_k, fails at f_k = a_k + 1 (ErrImagePull), the next sync 1 s later shows
    # ImagePullBackOff, and the retry comes back-off_k after the failure: 10, 20, 40, 80, 160, 300, 300 s.
    #   a: 0.5, 11.5, 32.5, 73.5, 154.5, 315.5, 616.5, 917.5
    pulls = times(c, component="kubelet", event="Pulling")
    assert pulls == [0.5, 11.5, 32.5, 73.5, 154.5, 315.5, 616.5, 917.5]
    assert states[:5] == [(0.5, "ContainerCreating"), (1.5, "ErrImagePull"), (2.5, "ImagePullBackOff"),
                          (12.5, "ErrImagePull"), (13.5, "ImagePullBackOff")]
    failed = [m for _, _, m in events(c, component="kubelet", event="Failed")]
    assert failed[0] == ('Failed to pull image "ghcr.io/acme/web:bad": rpc error: code = NotFound desc = failed to '
                         'pull and unpack image "ghcr.io/acme/web:bad": failed to resolve reference '
                         '"ghcr.io/acme/web:bad": ghcr.io/acme/web:bad: not found')
    assert failed[1:3] == ["Error: ErrImagePull", "Error: ImagePullBackOff"]
    assert [m for _, _, m in events(c, component="kubelet", event="BackOff")][0] == \
        'Back-off pulling image "ghcr.io/acme/web:bad"'
    p = c.get("v1", "Pod", "p")
    assert p["status"]["phase"] == "Pending"


def test_a_tag_pushed_during_backoff_is_pulled_at_the_next_retry():
    reg = ImageRegistry().add("web", ["v1"])
    c = make_cluster(registry=reg)
    c.store.create(pod("p", "web:v2"), manager="test")
    at(c, 5)
    reg.add("web", ["v2"])  # CI finally pushed it
    at(c, 30)
    # failed at 1.5; retry at 11.5 succeeds: pulled at 13.5, started at 14.5
    assert times(c, component="kubelet", event="Pulling") == [0.5, 11.5]
    assert times(c, component="kubelet", event="Started") == [14.5]
    assert c.get("v1", "Pod", "p")["status"]["phase"] == "Running"


def test_crash_loop_backoff_restarts_after_0_10_20_40_seconds():
    reg = ImageRegistry().add("crashy:v1", crashing=True, run_seconds=2)
    c = make_cluster(registry=reg)
    states = waiting_reasons(c, "p")
    c.store.create(pod("p", "crashy:v1"), manager="test")
    at(c, 89)
    # started 0.5 + 2 + 1 = 3.5; exits after 2 s at 5.5. kubelet doBackOff: the first exit restarts at once
    # (start 1 s: 6.5); exit 8.5 waits 10 s (start at 18.5 + 1 = 19.5); exit 21.5 waits 20 s (42.5);
    # exit 44.5 waits 40 s (85.5); exit 87.5 waits 80 s (the next start would be at 168.5).
    assert times(c, component="kubelet", event="Started") == [3.5, 6.5, 19.5, 42.5, 85.5]
    backoffs = [(t, m) for t, _, m in events(c, component="kubelet", event="BackOff")]
    assert [t for t, _ in backoffs] == [9.5, 22.5, 45.5, 88.5]  # one kubelet sync (1 s) after each waiting exit
    assert backoffs[0][1].startswith("Back-off restarting failed container main in pod p_default(")
    assert ("CrashLoopBackOff" in [s for _, s in states])
    p = c.get("v1", "Pod", "p")
    cs = p["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 4
    assert p["status"]["phase"] == "Running"
    # the waiting message names the back-off the way the kubelet prints it (Go duration: 80 s = 1m20s)
    cs = c.get("v1", "Pod", "p")["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"].startswith("back-off 1m20s restarting failed container=main pod=p_default(")
    assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"


def test_readiness_waits_for_initial_delay_and_jitter_is_seeded():
    c = make_cluster()
    c.store.create(pod("p", "web:v1", probe_delay=7), manager="test")
    at(c, 3.5)
    p = c.get("v1", "Pod", "p")
    assert p["status"]["phase"] == "Running" and p["status"]["containerStatuses"][0]["ready"] is False
    at(c, 10.5)  # 3.5 + 7
    ready = {cond["type"]: cond for cond in c.get("v1", "Pod", "p")["status"]["conditions"]}
    assert ready["Ready"]["status"] == "True" and ready["ContainersReady"]["status"] == "True"
    assert ready["PodScheduled"]["status"] == "True"


def test_run_to_completion_pods_succeed_or_fail_by_exit_code():
    reg = ImageRegistry().add("job:ok", run_seconds=5).add("job:bad", run_seconds=5, exit_code=3)
    c = make_cluster(registry=reg)
    c.store.create(pod("good", "job:ok", restart="Never"), manager="test")
    c.store.create(pod("bad", "job:bad", restart="Never"), manager="test")
    at(c, 20)
    good, bad = c.get("v1", "Pod", "good"), c.get("v1", "Pod", "bad")
    assert good["status"]["phase"] == "Succeeded"
    assert bad["status"]["phase"] == "Failed"
    term = bad["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert term["finishedAt"] == "2026-01-01T00:00:08Z"  # 0.5 + 2 + 1 + 5 = 8.5, one-second resolution


def test_init_containers_run_first_in_order():
    reg = ImageRegistry().add("init:v1", run_seconds=3)
    c = make_cluster(registry=reg)
    p = pod("p", "web:v1", initContainers=[{"name": "migrate", "image": "init:v1"}])
    c.store.create(p, manager="test")
    at(c, 20)
    # init: pulled 2.5, started 3.5, done 6.5; main: pulled 8.5, started 9.5
    assert [(t, m) for t, _, m in events(c, component="kubelet", event="Started")] == \
        [(3.5, "Started container migrate"), (9.5, "Started container main")]
    status = c.get("v1", "Pod", "p")["status"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert status["phase"] == "Running"


def test_graceful_termination_keeps_the_pod_until_the_kubelet_stops_it():
    c = make_cluster()
    c.store.create(pod("p", "web:v1"), manager="test")
    c.run(until=10)
    c.delete("v1", "Pod", "p")
    at(c, 10)
    p = c.get("v1", "Pod", "p")
    assert p["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:10Z"
    assert [m for _, _, m in events(c, component="kubelet", event="Killing")] == ["Stopping container main"]
    ready = {cond["type"]: cond["status"] for cond in p["status"]["conditions"]}
    assert ready["Ready"] == "False"
    at(c, 12 - 0.001)
    assert c.get("v1", "Pod", "p") is not None
    at(c, 12)
    assert c.get("v1", "Pod", "p") is None


def test_unscheduled_pods_are_deleted_at_once():
    c = make_cluster()
    c.store.create(pod("p", "web:v1"), manager="test")
    at(c, 0.1)  # scheduling takes 0.5 s
    c.delete("v1", "Pod", "p")
    assert c.get("v1", "Pod", "p") is None
    at(c, 5)
    assert events(c, component="default-scheduler") == []


def test_image_cache_is_per_node_and_concurrent_pulls_wait_for_each_other():
    reg = ImageRegistry().add("big:v1", pull_seconds=30)
    c = make_cluster(registry=reg)
    c.store.create(pod("a", "big:v1"), manager="test")
    c.run(until=10)
    c.store.create(pod("b", "big:v1"), manager="test")
    c.run(until=40)
    c.store.create(pod("c", "big:v1"), manager="test")
    at(c, 60)
    # a pulls 0.5 -> 30.5; b (scheduled 10.5) waits for that pull; c finds the image present
    assert times(c, component="kubelet", event="Started") == [31.5, 31.5, 41.5]
    pulled = [m for _, _, m in events(c, component="kubelet", event="Pulled")]
    assert pulled[0].startswith('Successfully pulled image "big:v1" in 30s (30s including waiting)')
    assert "(20s including waiting)" in pulled[1]
    assert pulled[2] == 'Container image "big:v1" already present on machine'


def test_scenario_hook_annotations_override_the_registry():
    reg = ImageRegistry().add("job:ok", run_seconds=5)  # would succeed after 5 s
    c = make_cluster(registry=reg)
    p = pod("hooked", "job:ok", restart="Never")
    p["metadata"]["annotations"] = {"sim.labkit.io/run-seconds": "3", "sim.labkit.io/exit-code": "2"}
    c.store.create(p, manager="test")
    at(c, 20)
    status = c.get("v1", "Pod", "hooked")["status"]
    # started at 0.5 + 2 + 1 = 3.5, runs 3 s, exits 2 at 6.5
    assert status["phase"] == "Failed"
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 2 and term["finishedAt"] == "2026-01-01T00:00:06Z"
