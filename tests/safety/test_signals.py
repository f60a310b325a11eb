"""(h) The snapshot temp folder is removed when a run is stopped: SIGTERM (a CI timeout) and SIGINT (Ctrl-C).

The run works on a repository slow enough to be caught mid-run (twenty kustomize
apps and forty commits of history); the signal is sent as soon as the run's private
TMPDIR is not empty, i.e. while the snapshot exists.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from . import harness
from .hostile import Case, Ctx, Spec, cm, kustomization

pytestmark = pytest.mark.safety


def _slow_repo(ctx: Ctx) -> Spec:
    files = {}
    for i in range(20):
        files[f"apps/a{i:02d}/kustomization.yaml"] = kustomization("cm.yaml")
        files[f"apps/a{i:02d}/cm.yaml"] = cm(f"a{i:02d}")
    ctx.write(files)
    ctx.git_init()
    for i in range(40):
        ctx.write({"apps/a00/cm.yaml": cm("a00", REV=str(i))})
        ctx.commit_all(f"rev {i}")
    return Spec(args=["--history", "40"], git=True)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_snapshot_is_removed_when_the_run_is_stopped(signame, tmp_path):
    sig = getattr(signal, signame)
    sent: dict[str, float] = {}

    def tick(proc, ctx, elapsed):
        if "at" not in sent and os.listdir(ctx.tmp):
            time.sleep(0.3)  # well inside the run, the snapshot written
            proc.send_signal(sig)  # the jail wrapper forwards it to labkit
            sent["at"] = elapsed

    case = Case(f"stopped-by-{signame.lower()}", "bounds", "a run stopped by a signal", _slow_repo)
    res = harness.run(case, tmp_path, on_tick=tick)
    assert "at" in sent, f"the run ended before the signal could be sent ({res.wall:.1f} s): make the input heavier"
    assert not res.timed_out, f"still running {harness.TIMEOUT:.0f} s after {signame}"
    assert res.wall - sent["at"] < 10, f"took {res.wall - sent['at']:.1f} s to stop after {signame}"
    left = [f for f in res.failures if f.startswith("(h)")]
    assert not left, "\n".join(left)
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    # everything else the suite asserts still holds, except the exit code (a signal may end the run)
    others = [f for f in res.failures if not f.startswith(("(e) exit code", "(g)"))]
    assert not others, "\n" + res.summary()
