"""``labkit try``: bring your own manifest repository, reconcile it in the simulator, report its pitfalls.

Workshops end with "and now your own repo".  A team points labkit at the
manifest repository they actually run and sees, in seconds and without a
cluster, how a GitOps controller would reconcile it and where it would hurt
them::

    labkit try ~/src/fleet-infra                      # discover and reconcile everything
    labkit try ~/src/fleet-infra --path clusters/prod # what `flux bootstrap --path` would apply
    labkit try . --dialect argo --missing-image ghcr.io/acme/api:2.1 --out reports/try

What happens, module by module:

``source``     the repository (a directory, a git work tree, a ``file://`` URL)
               is snapshotted at one revision into a private directory, so
               nothing is ever written into the user's tree; ``--history N``
               reads the last N commits touching it.
``index``      every YAML file is parsed once with line numbers, and rendered
               objects are mapped back to the document (and field) that wrote
               them — through kustomize overlays and patches.
``discovery``  the entry points: ``--path``s, Flux ``Kustomization`` objects
               (roots are those nothing else applies; ``dependsOn`` kept),
               Argo CD ``Application``/``ApplicationSet`` objects, or plain
               kustomize overlays; each root group becomes a *target*, one
               simulated cluster (staging and prod of a fleet repository get
               one each).
``reconcile``  a fresh seeded ``SimCluster`` per target, with Flux's
               (``labkit.flux.system.FluxSystem``) or Argo CD's
               (``labkit.argo.ArgoSystem``) controllers fetching the snapshot,
               rendering with real kustomize, applying in stages or waves,
               pruning and health-checking, in virtual time with the
               simulator's realistic durations — until the run settles.
``order``      stages, waves, hooks and ``dependsOn`` as data and as a
               networkx / matplotlib graph.
``pitfalls``   HPA vs ``replicas``, StatefulSet ``volumeClaimTemplates``
               changes across history, stateful operator CRs under prune,
               Jobs that are not hooks, plaintext secrets (tree and history),
               Deployments without health checks, migration Jobs that retry,
               mutable image tags, objects landing in ``default`` — each with
               file, line and the documented fix (``secrets`` holds the
               minimal secret check).
``report``     a rich terminal report, a self-contained ``report.html`` with
               embedded PNG figures, and the JSON document of ``model``.

``try_repo(target, TryOptions(...))`` (``labkit.tryrepo.run``) runs it all and
returns a ``TryResult`` whose ``report`` is a ``model.TryReport``.
"""
from labkit.tryrepo.model import Pitfall, TryReport
from labkit.tryrepo.run import TryOptions, TryResult, try_repo

__all__ = ["Pitfall", "TryOptions", "TryReport", "TryResult", "try_repo"]
