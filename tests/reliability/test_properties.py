"""Property-based tests: random commits, live edits and faults; the Flux dialect must keep its promise.

Each example is a ``labkit.faults.soak.SoakCase`` drawn by hypothesis: an
initial set of ConfigMaps / Deployments / Services / Secrets split between two
Kustomizations, then up to six steps — commits that add, modify, remove or move
objects between the Kustomizations (some marked ``prune: disabled``), live
edits by other field managers (kubectl-edit drift, deletes, owner labels
stripped, ``prune: disabled`` added live), hand-made foreign objects (some with
copied owner labels) — and up to three fault windows over every fault kind
(API 500/503/429/409/504 with and without lost responses, slow responses, git
outages and corrupt refs, kustomize timeouts).  ``FluxSoakLab`` plays it
against real Flux controllers and real git in virtual time, stops the faults,
waits one source interval plus one Kustomization interval, and checks
(``labkit.faults.invariants``):

* every Kustomization is Ready at the head revision;
* live state equals git on every field git sets, with the owner labels;
* every delete Flux made hit an object carrying owner labels, never one
  marked ``prune: disabled``; foreign objects all survive;
* each inventory is exactly the objects git assigns to that Kustomization, and
  no labelled object is missing from its inventory (nothing orphaned);
* one more interval with nothing changing writes nothing;
* no seeded Secret value (plain or base64) appears in the event log or statuses.

A second strategy (``churn_cases``) lines up what random stories rarely do:
objects added and removed in git while one object's writes fail, or while the
Kustomization's status cannot be written — the situations in which a
controller loses track of what it created.

Budget: the ``ci`` profile runs 170 + 60 examples with the in-process renderer
and 30 with real ``kubectl kustomize`` (about a minute and a half together);
``pytest -m soak`` (or ``LABKIT_SOAK=1``) runs ``LABKIT_SOAK_EXAMPLES``
(default 1500) more.
"""
from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.faults.plan import FAULT_KINDS, Fault
from labkit.faults.soak import (APPS, LIVE_EDITS, UNIVERSE, Commit, Foreign, InlineRenderer, LiveEdit, Put,
                                Remove, SoakCase, SoakConfig, Step, manifest, run_case, scratch_dir)
from labkit.gitops.render import Renderer
from tests.reliability.counts import RUN_COUNTS

N = len(UNIVERSE)
GAPS = st.sampled_from([0.0, 5.0, 30.0, 90.0, 200.0])
puts = st.builds(Put, st.integers(0, N - 1), st.sampled_from(APPS), st.sampled_from([False, False, False, True]))
removes = st.builds(Remove, st.integers(0, N - 1))
commits = st.builds(Commit, st.lists(st.one_of(puts, puts, removes), min_size=1, max_size=3).map(tuple))
live_edits = st.builds(LiveEdit, st.integers(0, N - 1), st.sampled_from(LIVE_EDITS))
foreign = st.builds(Foreign, st.integers(0, 1), st.booleans())
actions = st.one_of(commits, commits, live_edits, foreign)
steps = st.lists(st.builds(Step, GAPS, actions), min_size=1, max_size=6).map(tuple)


@st.composite
def faults(draw: st.DrawFn) -> Fault:
    kind = draw(st.sampled_from(FAULT_KINDS))
    start = draw(st.floats(0, 800, allow_nan=False).map(lambda x: round(x, 1)))
    length = draw(st.sampled_from([10.0, 60.0, 180.0, 400.0]))
    kw: dict = {}
    if kind == "slow":
        kw["latency"] = draw(st.sampled_from([0.2, 1.0, 5.0]))
    if kind == "throttle":
        kw["retry_after"] = draw(st.sampled_from([1.0, 10.0]))
    if kind == "timeout":
        kw["lost_response"] = draw(st.booleans())
    if kind in ("internal", "unavailable", "throttle", "conflict", "timeout", "slow"):
        verb = draw(st.sampled_from([None, "get", "apply", "delete", "patch_status", "list"]))
        if verb:
            kw["verbs"] = (verb,)
        # narrow faults make partial progress: some objects or controllers work while others fail
        target = draw(st.sampled_from([None, None, "kind", "name"]))
        if target == "kind":
            kw["kinds"] = (draw(st.sampled_from(["Kustomization", "GitRepository", "ConfigMap", "Deployment",
                                                 "Service", "Secret"])),)
        elif target == "name":
            kw["names"] = (draw(st.sampled_from([n for _, _, n in UNIVERSE])),)
    return Fault(kind, rate=draw(st.sampled_from([0.3, 0.6, 1.0])), start=start, end=start + length, **kw)


cases = st.builds(SoakCase, st.lists(puts, min_size=1, max_size=4).map(tuple), steps,
                  st.lists(faults(), max_size=3).map(tuple), st.integers(0, 2**16))


# Churn under a bookkeeping outage: objects come and go in git while the controller cannot finish an
# apply (one object's writes fail) or cannot record what it did (its status writes fail).  Random
# stories almost never line these up; this strategy does, so "nothing is orphaned" is really tested.
@st.composite
def churn_cases(draw: st.DrawFn) -> SoakCase:
    victim = draw(st.integers(0, N - 1))  # the object whose writes fail (or whose kind times out)
    _, victim_kind, victim_name = UNIVERSE[victim]
    length = draw(st.sampled_from([200.0, 400.0]))
    fault = draw(st.sampled_from([
        Fault("unavailable", rate=0.6, verbs=("patch_status",), kinds=("Kustomization",), start=10.0, end=10.0 + length),
        Fault("internal", verbs=("apply",), dry_run=False, names=(victim_name,), start=10.0, end=10.0 + length),
        Fault("timeout", verbs=("apply", "delete"), kinds=(victim_kind,), lost_response=draw(st.booleans()),
              start=10.0, end=10.0 + length),
    ]))
    initial = draw(st.lists(puts, min_size=1, max_size=3).map(tuple))
    present = {p.obj for p in initial}
    steps = []
    for k in range(draw(st.integers(2, 6))):
        absent = [i for i in range(N) if i not in present and i != victim]
        if k % 2 and present - {victim}:  # take some of what is there out of git again
            gone = draw(st.lists(st.sampled_from(sorted(present - {victim})), min_size=1, max_size=3, unique=True))
            changes: list = [Remove(i) for i in gone]
            present -= set(gone)
        else:  # add new objects together with a new version of the victim, in one Kustomization
            home = draw(st.sampled_from(APPS))
            new = draw(st.lists(st.sampled_from(absent), max_size=3, unique=True)) if absent else []
            changes = [Put(i, home) for i in new] + [Put(victim, home)]
            present |= set(new) | {victim}
        # long enough for the source to fetch each revision (1m interval), sometimes not
        steps.append(Step(draw(st.sampled_from([30.0, 70.0, 70.0, 130.0])), Commit(tuple(changes))))
    return SoakCase(initial, tuple(steps), (fault,), draw(st.integers(0, 2**16)))


def check(case: SoakCase, renderer: str) -> None:
    RUN_COUNTS[f"hypothesis examples, Flux ({renderer} renderer)"] += 1
    result = run_case(case, SoakConfig(renderer=renderer))
    assert result.ok, "\n".join(result.violations)


@settings(max_examples=170, deadline=None)
@given(case=cases)
def test_flux_keeps_its_promise_under_faults(case: SoakCase) -> None:
    check(case, "inline")


@settings(max_examples=60, deadline=None)
@given(case=churn_cases())
def test_nothing_is_orphaned_when_objects_churn_during_an_outage(case: SoakCase) -> None:
    check(case, "inline")


@settings(max_examples=30, deadline=None)
@given(case=cases)
def test_flux_keeps_its_promise_under_faults_with_real_kustomize(case: SoakCase) -> None:
    check(case, "kustomize")


@pytest.mark.soak
@settings(max_examples=int(os.environ.get("LABKIT_SOAK_EXAMPLES", "1500")), deadline=None)
@given(case=cases)
def test_soak_flux_keeps_its_promise_under_faults(case: SoakCase) -> None:
    check(case, "inline")


@settings(max_examples=15, deadline=None)
@given(objs=st.lists(st.tuples(st.integers(0, N - 1), st.integers(1, 9), st.booleans()), min_size=1, max_size=6,
                     unique_by=lambda t: t[0]))
def test_inline_renderer_returns_what_kustomize_returns(objs: list[tuple[int, int, bool]]) -> None:
    """The in-process renderer the bulk of the examples use agrees with real kustomize on soak repositories."""
    import yaml

    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        for index, version, protected in objs:
            _, kind, name = UNIVERSE[index]
            path = os.path.join(tmp, "a", f"{kind.lower()}-{name}.yaml")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                fh.write(yaml.safe_dump(manifest(index, version, protected), sort_keys=False))
        real = Renderer().render("./a", root=tmp, key=None)
        inline = InlineRenderer().render("./a", root=tmp, key=None)

    def key(o: dict) -> tuple:
        return (o["kind"], o["metadata"]["name"])

    assert sorted(real, key=key) == sorted(inline, key=key)
