"""labkit's core: what every other layer may import, and which imports nothing of labkit's above it.

* ``errors``     -- ``ApiError`` (a Kubernetes Status), ``LabkitError`` (bad input, one line naming
  file and field), the reconcile outcomes ``RetryAfter`` / ``TemporaryError`` / ``PermanentError``;
* ``events``     -- the one ``EventLog`` per run every component records to (metrics derive from it);
* ``clock``      -- SimPy environments (virtual or wall time) and seeded random streams;
* ``cluster``    -- the ``Cluster`` protocol, the seam between GitOps logic and a cluster backend
  (the simulator, a real API server, fault-injecting wrappers);
* ``workqueue``  -- the one reconcile driver: a coalescing, delaying, rate-limited work queue and
  workers with explicit outcomes, shared by Flux, Argo CD, ApplicationSet and the simulator;
* ``health``     -- kstatus / Argo CD health of one object;
* ``duration``   -- Go/Kubernetes duration strings;
* ``specreader`` -- typed reading of a custom resource's spec with file-and-field errors;
* ``textsafe``   -- making untrusted text safe to print on one line;
* ``report``     -- the scenario output contract: ``metrics.json`` and titled, labelled figures.

Nothing here imports the simulator, the engine, git, the dialects or Jupyter; the rule is
checked by ``tests/test_layers.py``.  Import the modules themselves
(``from labkit.core.errors import LabkitError``): this package module re-exports nothing.
"""
