"""Jobs: completions and parallelism, backoffLimit and pod-failure back-off, deadlines, programs.

Timings.deterministic(schedule=1): a Job pod created at t is bound at t+1; the
first pod also pulls the image (2 s), then starts (1 s) and runs for the
registry's ``run_seconds``.  Pod events reach the Job controller after its 1 s
batching period (``syncJobBatchPeriod``); container finish times are read back
with one-second resolution.
"""
from __future__ import annotations

from simhelpers import at, condition, events, make_cluster, times

from labkit.sim.registry import ImageRegistry


def job(name: str, image: str, **spec) -> dict:
    body = {"template": {"spec": {"containers": [{"name": "main", "image": image}], "restartPolicy": "Never"}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"}, "spec": body}


def conditions(c, name: str) -> list[tuple[str, str, str]]:
    j = c.get("batch/v1", "Job", name)
    return [(x["type"], x["status"], x.get("reason", "")) for x in j["status"].get("conditions", [])]


def test_backoff_limit_zero_fails_the_job_at_the_first_pod_failure():
    reg = ImageRegistry().add("migrate:v1", run_seconds=5, exit_code=1)
    c = make_cluster(registry=reg, schedule=1.0)
    c.apply(job("migrate", "migrate:v1", backoffLimit=0), field_manager="argocd")
    at(c, 60)
    # pod created at 0, bound 1, pulled 3, started 4, exits 1 at 9 -> Failed; the Job syncs at 9 + 1 = 10:
    # failed 1 > backoffLimit 0 -> FailureTarget, and with no pod left terminating, Failed at once.
    assert conditions(c, "migrate") == [("FailureTarget", "True", "BackoffLimitExceeded"),
                                        ("Failed", "True", "BackoffLimitExceeded")]
    (ev,) = c.log.filter(component="job-controller", event="BackoffLimitExceeded")
    assert (ev.time, ev.detail["type"], ev.detail["message"]) == (10, "Warning", "Job has reached the specified backoff limit")
    status = c.get("batch/v1", "Job", "migrate")["status"]
    assert status["failed"] == 1 and "succeeded" not in status and "active" not in status
    assert status["startTime"] == "2026-01-01T00:00:00Z" and "completionTime" not in status
    assert times(c, component="job-controller", event="SuccessfulCreate") == [0]  # never retried


def test_failed_pods_are_retried_with_doubling_backoff_until_the_limit():
    reg = ImageRegistry().add("flaky:v1", run_seconds=5, exit_code=1)
    c = make_cluster(registry=reg, schedule=1.0)
    c.apply(job("flaky", "flaky:v1", backoffLimit=2), field_manager="test")
    at(c, 120)
    # pod 1: created 0, fails at 9; Job sync at 10 -> back-off 10 s from 9 -> pod 2 at 19
    # pod 2: bound 20, started 21 (image cached), fails 26; sync 27 -> back-off 20 s from 26 -> pod 3 at 46
    # pod 3: bound 47, started 48, fails 53; sync 54: failed 3 > 2 -> Failed
    assert times(c, component="job-controller", event="SuccessfulCreate") == [0, 19, 46]
    assert times(c, component="job-controller", event="BackoffLimitExceeded") == [54]
    assert c.get("batch/v1", "Job", "flaky")["status"]["failed"] == 3


def test_completions_with_parallelism():
    reg = ImageRegistry().add("batch:v1", run_seconds=5)
    c = make_cluster(registry=reg, schedule=1.0)
    c.apply(job("batch", "batch:v1", completions=3, parallelism=2), field_manager="test")
    at(c, 60)
    # two pods at 0: bound 1, pulled 3, started 4, succeed at 9; sync at 10 -> one more needed: created at 10,
    # bound 11, started 12, succeeds at 17; sync at 18 -> 3 succeeded, none active -> complete.
    assert times(c, component="job-controller", event="SuccessfulCreate") == [0, 0, 10]
    assert conditions(c, "batch") == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                                      ("Complete", "True", "CompletionsReached")]
    j = c.get("batch/v1", "Job", "batch")
    assert condition(j, "Complete")["message"] == "Reached expected number of succeeded pods"
    assert j["status"]["succeeded"] == 3 and j["status"]["completionTime"] == "2026-01-01T00:00:18Z"
    assert j["status"]["uncountedTerminatedPods"] == {} and j["status"]["terminating"] == 0
    assert [(t, m) for t, _, m in events(c, component="job-controller", event="Completed")] == [(18, "Job completed")]


def test_active_deadline_terminates_running_pods_then_fails():
    reg = ImageRegistry().add("slow:v1", run_seconds=100)
    c = make_cluster(registry=reg, schedule=1.0)
    c.apply(job("slow", "slow:v1", activeDeadlineSeconds=20), field_manager="test")
    at(c, 60)
    # startTime 0; the controller re-syncs exactly at 0 + 20: FailureTarget/DeadlineExceeded, the running pod
    # is deleted and terminates in 2 s; its removal syncs the Job 1 s later: Failed at 20 + 2 + 1 = 23.
    j = c.get("batch/v1", "Job", "slow")
    assert condition(j, "FailureTarget")["lastTransitionTime"] == "2026-01-01T00:00:20Z"
    assert condition(j, "Failed")["lastTransitionTime"] == "2026-01-01T00:00:23Z"
    assert condition(j, "Failed")["message"] == "Job was active longer than specified deadline"
    assert times(c, component="job-controller", event="DeadlineExceeded") == [23]


def test_program_decides_the_exit_code_per_attempt():
    seen = []

    def migrate(ctx):
        seen.append((ctx.attempt, ctx.env.get("DB"), ctx.pod["metadata"]["labels"]["job-name"]))
        if len(seen) == 1:
            raise RuntimeError("relation \"users\" already exists")
        return 0

    reg = ImageRegistry().add("migrate:v2", run_seconds=2, program=migrate)
    c = make_cluster(registry=reg, schedule=1.0)
    j = job("migrate", "migrate:v2", backoffLimit=1)
    j["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DB", "value": "sqlite:///app.db"}]
    c.apply(j, field_manager="test")
    at(c, 60)
    assert seen == [(0, "sqlite:///app.db", "migrate"), (0, "sqlite:///app.db", "migrate")]
    status = c.get("batch/v1", "Job", "migrate")["status"]
    assert status["failed"] == 1 and status["succeeded"] == 1
    assert conditions(c, "migrate")[-1] == ("Complete", "True", "CompletionsReached")
    failed_pod = next(p for p in c.list("v1", "Pod") if p["status"]["phase"] == "Failed")
    term = failed_pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 1 and term["message"] == 'RuntimeError: relation "users" already exists'


def test_ttl_after_finished_deletes_the_job_and_its_pods():
    reg = ImageRegistry().add("once:v1", run_seconds=1.5)
    c = make_cluster(registry=reg, schedule=1.0)
    c.apply(job("once", "once:v1", ttlSecondsAfterFinished=30), field_manager="test")
    at(c, 10)
    # bound 1, pulled 3, started 4, done 5.5, the Job syncs 1 s later: complete at 6.5, recorded as 6
    # (one-second resolution); the TTL controller deletes it at lastTransitionTime + 30 = 36
    assert condition(c.get("batch/v1", "Job", "once"), "Complete") is not None
    at(c, 36 - 0.01)
    assert c.get("batch/v1", "Job", "once") is not None
    at(c, 36)
    assert c.get("batch/v1", "Job", "once") is None
    at(c, 37)
    assert c.list("v1", "Pod") == []
