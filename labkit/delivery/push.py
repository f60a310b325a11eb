"""The push model: a CI pipeline deploys into the cluster with its own credentials.

A push pipeline ends in a deploy stage that does what ``kubectl apply
--server-side`` followed by ``kubectl rollout status`` does in a CI job:

1. **apply** the rendered manifests through the ``Cluster`` seam as field
   manager ``ci-deployer`` — the CI runner's ServiceAccount.  The cluster
   trusts an external caller: whoever holds that token can change what it
   allows (``labkit.delivery.blast`` counts how much).  The engine's staged
   apply (``labkit.engine.apply.apply_staged``) is used because it is what an
   apply is: a dry-run of everything first, namespaces before the rest, only
   changed objects written;
2. **wait for the rollout**: ``labkit.engine.wait.wait_for_set`` polls the
   workloads' kstatus until they are Current (or stalled, or the timeout
   passes), holding the CI runner the whole time.

The rollout itself is the simulator's Deployment controller and kubelet:
surge, readiness probes, image pulls.  Nothing here decides how long it takes.

**Rollback in the push model** is a new pipeline run: the on-call engineer
re-runs the pipeline for the previous release (``rollback_stages``).  By
default it is the full pipeline — checkout, build, test, publish, deploy — as
when the fix is a revert commit in the application repository; with
``skip_build`` the previous image tag is known and only checkout and deploy
run.  Either way the run waits in the CI queue like any other job, which is
where a busy CI hurts most.
"""
from __future__ import annotations

from typing import Any, Generator, Iterable

import simpy

from labkit.core.cluster import Cluster
from labkit.delivery.ci import DeployStep
from labkit.engine.apply import ApplyFailed, ApplyOptions, EngineTimings, apply_staged
from labkit.engine.plan import DryRunFailed
from labkit.engine.wait import wait_for_set

FIELD_MANAGER = "ci-deployer"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
FULL_PIPELINE = ("checkout", "build", "test", "publish", "deploy")
REDEPLOY_PIPELINE = ("checkout", "deploy")


def rollback_stages(skip_build: bool) -> tuple[str, ...]:
    """The stages of a push rollback run: the full pipeline, or checkout + deploy of a known tag."""
    return REDEPLOY_PIPELINE if skip_build else FULL_PIPELINE


def deploy_step(
    env: simpy.Environment,
    cluster: Cluster,
    objects: Iterable[dict],
    *,
    field_manager: str = FIELD_MANAGER,
    engine_timings: EngineTimings | None = None,
    rollout_timeout: float = 600.0,
    poll_interval: float = 2.0,
) -> DeployStep:
    """The deploy stage's work: apply as ``field_manager``, then wait for the workloads' rollout."""
    objs = [dict(o) for o in objects]
    timings = engine_timings or EngineTimings()

    def step() -> Generator[Any, Any, tuple[bool, dict[str, Any]]]:
        t0 = env.now
        try:
            res = yield from apply_staged(env, cluster, objs, ApplyOptions(field_manager=field_manager), timings)
        except (DryRunFailed, ApplyFailed) as err:
            return False, {"error": str(err), "apply": env.now - t0}
        t1 = env.now
        workloads = [o for o in objs if o.get("kind") in WORKLOAD_KINDS]
        if not workloads:
            return True, {"apply": t1 - t0, "rollout": 0.0, "changeset": res.changeset.changed().to_string()}
        w = yield from wait_for_set(env, cluster, workloads, timeout=rollout_timeout, interval=poll_interval)
        return w.ok, {"apply": t1 - t0, "rollout": w.elapsed, "message": w.message,
                      "changeset": res.changeset.changed().to_string()}

    return step

