"""Delivery models: push pipelines and pull reconcilers, rollback timing, the DORA four keys.

Why this package exists
=======================

Articles about GitOps make quantitative claims: a push-based rollback takes 8–15
minutes because it is a new pipeline run; a GitOps rollback is ``git revert``
and the controller reconciles it in 60–90 seconds, under two minutes with a
webhook; elite teams restore service in under an hour.  Claims like these are
true only under conditions they rarely state.  This package builds both
delivery models out of their mechanisms, on labkit's virtual clock and
embedded cluster, so that the numbers *come out* of the models — and so a
notebook can show the parameters under which they do and do not hold.

The mechanisms
==============

``ci``                A CI service: a runner pool (``simpy.Resource``) shared with
                      other teams' jobs (Poisson arrivals at a stated utilisation), a
                      FIFO queue, pipelines of seeded lognormal stages with failure
                      rates, and re-runs of red pipelines.
``push``              The push model's deploy stage: server-side apply as
                      ``ci-deployer`` through the ``Cluster`` seam, then a kstatus
                      wait for the rollout while the runner is held.  Rollback is a
                      new pipeline run.
``pull``              The pull model: the real Flux dialect (``FluxSystem``) fetching
                      a real git repository on its poll interval or on a signed
                      webhook, building with real kustomize, applying as
                      ``kustomize-controller`` and health-checking.  Rollback is a
                      ``git revert`` pushed to the branch.
``image_automation``  Flux's ImageRepository / ImagePolicy (semver, alphabetical,
                      numerical, ``filterTags``) / ImageUpdateAutomation with the
                      real ``$imagepolicy`` marker syntax (``:tag``, ``:name``,
                      ``:digest``); ``semver`` holds the Masterminds range rules.
``fixture``,          One service's repository built once with real git (good,
``gitview``           bad, revert commits) and real kustomize, seen by each run
                      through a ``TimedRemote`` whose branch head moves at virtual
                      times — how a thousand Monte Carlo runs stay cheap without
                      scripting any outcome.
``rollback``          One incident per run on a fresh simulated cluster: time from
                      the rollback decision to the Deployment being Current on the
                      good image, for either model; Monte Carlo and sweeps.
``changes``           A team's change stream: Poisson arrivals in working hours,
                      batches of commits, review, latent defects that depend on size
                      and review, detection delays, fixes.
``rollout``           Rollout durations measured in the simulator (calibration), for
                      the long-horizon model.
``stream``            Ninety days of the change stream through either model on one
                      clock: shared CI, freezes during incidents, rollbacks, and
                      every step in the event log.
``dora``, ``tiers``   The four keys computed from the event log the way
                      dora-team/fourkeys does, and nearest-cluster classification
                      against the DORA 2024 clusters (``labkit/data/dora_2024.yaml``).
``blast``             What a leaked CI credential can change: RBAC as data counted
                      against live objects (push), git access and branch protection
                      (pull), and the image-automation channel.
``studies``,          The two scenarios as functions (``rollback``,
``plots``             ``push-vs-pull``) and their figures.

Submodules are imported explicitly (``from labkit.delivery.dora import
four_keys``); importing this package imports nothing else.
"""
