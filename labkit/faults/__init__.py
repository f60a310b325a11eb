"""Fault injection and the reliability properties of labkit's GitOps engine.

Why this package exists
=======================

The promise of a GitOps controller is that the cluster converges to git and
that nothing is lost or deleted that should not be, whatever happens on the
way: API servers that answer 503 during an upgrade, throttle with 429 under
load, time out with the write half done; git hosts that go away or hand out a
ref to a commit they do not have; kustomize builds that hang.  The trusted
controllers earn that trust with envtest suites that run the real reconcilers
against a real API server, with property-based tests, and with fault
injection.  This package gives labkit the same tools, at the seams labkit
already has, so they work on the embedded simulator and — by construction — on
a real cluster.

The fault seam
==============

Faults are injected where the engine meets the outside world, never inside it:

* ``FaultyCluster(inner, plan, rng)`` (``labkit.faults.cluster``) implements
  the ``labkit.core.cluster.Cluster`` seam over any other implementation and turns
  calls into ``ApiError``\\ s in the API server's own words — 500
  ``InternalError``, 503 ``ServiceUnavailable``, 429 ``TooManyRequests`` with
  ``Retry-After``, 409 ``Conflict``, 504 ``Timeout`` (optionally after the
  write happened: a lost response) — or into slow responses whose latency the
  engine yields on its clock (``take_latency``; see that module for why latency
  is accounted rather than slept);
* ``FaultyRemote(repo, plan, rng)`` (``labkit.faults.git``) wraps a git
  remote: unreachable, or answering a SHA that does not exist;
  ``schedule_outage`` takes the whole host down for a window;
* ``FaultyRenderer(inner, plan, rng)`` (``labkit.faults.render``) makes
  kustomize builds time out.

All three ask one ``FaultPlan`` (``labkit.faults.plan``): a list of ``Fault``
rules (kind, rate, time window on the run's clock, verb / kind / dry-run
filters, limit) plus the journal of what fired.  Decisions draw from the
caller's seeded ``random.Random``, so a run replays exactly; injections are
recorded in the event log as ``faults``/``FaultInjected``; ``plan.stop()``
ends every fault at once.  ``AuditCluster`` (also in ``labkit.faults.cluster``)
journals every write that reached the cluster, with each deleted object's
labels and annotations at the moment of deletion.

What the engine must do about faults
====================================

Retry with back-off, keep the last good revision applied, report the failure
in status and events, and converge once the faults stop — never let an
exception out of a reconcile loop.  The Flux dialect does it the way
kustomize-controller and controller-runtime do (``labkit.flux.system``): a
failure inside a reconcile stage is ``Ready=False`` with the stage's reason
and a requeue after ``retryInterval``; an API error outside the stages
(reading the object or its source, writing status) is a returned error,
requeued with per-object exponential back-off (750 ms doubling to 15 min, or
the server's ``Retry-After`` when longer).

The properties
==============

``labkit.faults.invariants`` states the promise as checks over a finished run
(convergence on owned fields, deletes only of owned and unprotected objects,
foreign objects untouched, inventory equal to git, no orphans, no writes when
nothing changed, no Secret values in events or status).  ``labkit.faults.soak``
generates and plays random stories of commits, live edits by other managers
and faults against the Flux dialect and checks them; the hypothesis property
tests in ``tests/reliability`` and ``benchmarks/bench_soak.py`` are both built
on it.

Dialects
========

Nothing in ``plan``, ``cluster``, ``git``, ``render`` or ``invariants`` knows a
dialect: the Flux specifics sit behind ``invariants.FluxDialect`` (owner labels,
the ``prune: disabled`` annotation, ``status.inventory``) and in the soak lab
that installs Flux.  The Argo CD dialect plugs in with ``labkit.faults.argo``: an ``ArgoDialect``
(tracking annotation, ``Prune=false``/``Delete=false``, ``status.resources``),
an ``ArgoSoakLab`` that plays the same ``SoakCase`` stories against two
Applications, and ``run_fleet_under_faults`` (the fleet ApplicationSet under a
steady fault rate); the fault wrappers and every check apply to it unchanged.
"""
from __future__ import annotations

from labkit.faults.cluster import AuditCluster, FaultyCluster, SeamWrite, injected_error
from labkit.faults.git import FaultyRemote, schedule_outage
from labkit.faults.plan import API_KINDS, FAULT_KINDS, GIT_KINDS, RENDER_KINDS, Fault, FaultPlan, Injection
from labkit.faults.render import FaultyRenderer

__all__ = [
    "API_KINDS",
    "FAULT_KINDS",
    "GIT_KINDS",
    "RENDER_KINDS",
    "AuditCluster",
    "Fault",
    "FaultPlan",
    "FaultyCluster",
    "FaultyRemote",
    "FaultyRenderer",
    "Injection",
    "SeamWrite",
    "injected_error",
    "schedule_outage",
]
