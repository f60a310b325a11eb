"""Real clusters: a control plane built from source (KWOK fake nodes), kind, and the seam over the official client.

The engine and the Flux dialect talk to a cluster only through ``labkit.core.cluster.Cluster``.
This package gives that seam a real API server behind it, and provisions one:

* ``labkit.kube.client`` — ``KubeCluster``, the seam over the official ``kubernetes``
  client (``DynamicClient`` with discovery; server-side apply as
  ``application/apply-patch+yaml``; the API server's Status translated into
  ``labkit.core.errors.ApiError`` unchanged);
* ``labkit.kube.build`` — ``labkit cluster build``: etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler, KWOK and metrics-server compiled from the Go
  module proxy, at the versions pinned (with the reason for each) in
  ``labkit.kube.versions`` (``docs/VERSIONS.md``);
* ``labkit.kube.controlplane`` — ``labkit cluster create|delete|status --provider kwok``:
  those binaries as loopback-only local processes with generated certificates, and
  KWOK playing every kubelet;
* ``labkit.kube.stages`` — the KWOK Stage set: readiness delays with jitter, image-pull
  failures for images the lab marks as missing, Job completion, deletion, and KWOK's
  per-pod CPU usage emulation;
* ``labkit.kube.kind`` — ``--provider kind`` for users with Docker;
* ``labkit.kube.locate`` — which kubeconfig and context a ``cluster`` value (``kwok``,
  ``kind:NAME``, a context) names, and ``connect`` to it: the one resolver the notebooks
  (``labkit.scenarios.backend``) and the command line share.

Submodules are imported explicitly; importing this package loads none of them (the
``kubernetes`` client and ``cryptography`` are only needed when a real cluster is used).
"""
