"""Property-based tests: random commits, live edits and faults; the Argo CD dialect must keep its promise.

The stories are the Flux property suite's (``labkit.faults.soak.SoakCase``,
drawn by the same strategies): an initial set of ConfigMaps / Deployments /
Services / Secrets split between two Applications ``a`` and ``b``, then up to
six steps — commits that add, modify, remove or *move* objects between the
Applications (some marked ``argocd.argoproj.io/sync-options: Prune=false``),
live edits by other field managers (kubectl-edit drift, deletes, the tracking
annotation stripped, ``Prune=false`` added live), hand-made foreign objects
(some with a tracking id copied from a managed object, argo-cd #15472) — and up
to three fault windows over every fault kind (API 500/503/429/409/504 with and
without lost responses, slow responses, git outages and corrupt refs,
manifest-generation timeouts).  ``labkit.faults.argo.ArgoSoakLab`` plays each
against the real Application controller, repo-server and git in virtual time,
stops the faults, waits the longest back-off plus one reconciliation interval,
and checks with Argo's definitions:

* every Application compared at git's head, Synced (OutOfSync only while a
  ``Prune=false`` object awaits pruning), no ComparisonError, no operation
  running;
* live state equals git on every field git sets, with the tracking id;
* every delete hit an object carrying its *own* tracking id, never one marked
  ``Prune=false`` / ``Delete=false``; foreign objects all survive;
* each ``status.resources`` is exactly git's objects plus the protected
  leftovers, and no tracked object is missing from it;
* one more reconciliation interval with nothing changing writes nothing;
* no Secret value (plain or base64) appears in the event log or statuses.

Budget: the ``ci`` profile runs 250 + 100 = 350 examples (about 30 s) (run with
``--hypothesis-show-statistics`` to see the counts and times); ``pytest -m soak`` (or ``LABKIT_SOAK=1``) runs
``LABKIT_SOAK_EXAMPLES`` (default 1500) more.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.faults.argo import run_argo_case
from labkit.faults.plan import Fault
from labkit.faults.soak import APPS, UNIVERSE, Commit, Put, Remove, SoakCase, Step
from tests.reliability.counts import RUN_COUNTS
from tests.reliability.test_properties import cases, puts

N = len(UNIVERSE)


def _argo(case: SoakCase) -> SoakCase:
    """The Flux strategies' fault filters name Flux kinds; point them at the Application instead."""
    faults = []
    for f in case.faults:
        if f.kinds and f.kinds[0] in ("Kustomization", "GitRepository"):
            f = Fault(**{**f.__dict__, "kinds": ("Application",)})
        faults.append(f)
    return SoakCase(case.initial, case.steps, tuple(faults), case.seed)


argo_cases = cases.map(_argo)


@st.composite
def moves_during_outage(draw: st.DrawFn) -> SoakCase:
    """Objects moved between the Applications (and removed) while writes or status patches fail."""
    fault = draw(st.sampled_from([
        Fault("unavailable", rate=0.6, verbs=("patch_status",), kinds=("Application",), start=10.0, end=300.0),
        Fault("internal", verbs=("apply",), dry_run=False, start=10.0, end=300.0),
        Fault("timeout", verbs=("apply", "delete"), lost_response=draw(st.booleans()), start=10.0, end=300.0),
        Fault("throttle", rate=0.5, retry_after=10.0, start=10.0, end=300.0),
        Fault("git-unavailable", start=10.0, end=300.0),
        Fault("render-timeout", rate=0.5, start=10.0, end=300.0),
    ]))
    initial = tuple(draw(st.lists(puts, min_size=2, max_size=5, unique_by=lambda p: p.obj)))
    homes = {p.obj: p.home for p in initial}
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        changes: list = []
        for obj in draw(st.lists(st.sampled_from(sorted(homes) or [0]), min_size=1, max_size=3, unique=True)):
            if obj in homes and draw(st.booleans()):
                homes[obj] = "b" if homes[obj] == "a" else "a"
                changes.append(Put(obj, homes[obj], draw(st.sampled_from([False, False, True]))))
            elif obj in homes:
                changes.append(Remove(obj))
                homes.pop(obj)
        if changes:
            steps.append(Step(draw(st.sampled_from([5.0, 30.0, 70.0])), Commit(tuple(changes))))
    if not steps:
        steps.append(Step(5.0, Commit((Put(initial[0].obj, APPS[1]),))))
    return SoakCase(initial, tuple(steps), (fault,), draw(st.integers(0, 2**16)))


def check(case: SoakCase) -> None:
    RUN_COUNTS["hypothesis examples, Argo CD"] += 1
    result = run_argo_case(case)
    assert result.ok, "\n".join(result.violations)


@settings(max_examples=250, deadline=None)
@given(case=argo_cases)
def test_argo_keeps_its_promise_under_faults(case: SoakCase) -> None:
    check(case)


@settings(max_examples=100, deadline=None)
@given(case=moves_during_outage())
def test_objects_moved_between_applications_during_an_outage_are_neither_lost_nor_orphaned(case: SoakCase) -> None:
    check(case)


@pytest.mark.soak
@settings(max_examples=int(os.environ.get("LABKIT_SOAK_EXAMPLES", "1500")), deadline=None)
@given(case=argo_cases)
def test_soak_argo_keeps_its_promise_under_faults(case: SoakCase) -> None:
    check(case)

