"""The dialect-free GitOps engine: plan, apply, prune, inventory, health-wait.

Like Flux's ``fluxcd/pkg/ssa`` (which knows nothing about Kustomizations), this
package knows nothing about Flux or Argo CD objects; the two dialects are thin
front-ends over it.  It talks to a cluster only through ``labkit.core.cluster.Cluster``
and imports only labkit's core modules (errors, events, clock, cluster, health,
duration) — never ``labkit.sim``, so the same engine drives the embedded
simulator and a real cluster.

Building blocks defined here:

* ``labkit.engine.changeset`` — ``Action``, ``ChangeSetEntry``, ``ChangeSet``:
  what an apply or prune did, printed as Flux prints it;
* ``labkit.engine.objectid`` — inventory ids ``<ns>_<name>_<group>_<kind>``;
* ``labkit.engine.inventory`` — ``Inventory`` and the stale-object diff that
  drives pruning;
* ``labkit.engine.policy`` — ``Policy``: the annotation selectors (skip, create-only, force, spare from prune)
  a dialect passes in — the engine itself names no Flux or Argo CD annotation;
* ``labkit.engine.normalize`` — server-field stripping, subset diff with
  Kubernetes list semantics and quantities, JSON pointers and ignore rules;
* ``labkit.engine.ordering`` — Flux's apply stages and kind order, Argo CD's
  phase / wave / kind order.

Submodules are imported explicitly (``from labkit.engine.inventory import
Inventory``); this package module re-exports nothing so that importing one part
of the engine never drags in the rest.
"""
