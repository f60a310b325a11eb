"""Which real cluster a ``cluster`` value names, and the one way to connect to it.

A notebook's ``cluster`` parameter, ``labkit run --cluster`` and the kube tests all
name a backend with the same short values, and all of them need the same answer —
a kubeconfig file and a context in it — before a ``KubeCluster`` can be built:

``sim``
    the embedded simulator: not a real cluster (``resolve`` returns ``None``).
``kwok`` / ``kwok:NAME``
    the local control plane built from source (``labkit cluster create``), named
    ``labkit`` unless ``NAME`` is given; it must be running.
``kind`` / ``kind:NAME``
    the kind cluster ``labkit cluster create --provider kind`` made.
``labkit-NAME``
    a local control plane's own context (its kubeconfig lives in the cache, not in
    ``~/.kube/config``).
anything else
    a context of ``$KUBECONFIG`` / ``~/.kube/config``.

This used to be written twice, once for notebooks (``labkit.scenarios.backend``)
and once for the client (``labkit.kube.client.connect``), with diverging messages;
it lives here, in the kube layer, above the client and the control plane and below
everything that runs scenarios.  The client knows nothing about control planes
(``labkit.kube.controlplane`` builds a client to wait for its nodes, so the client
importing it back was a cycle).

A mistake (an unknown context, a control plane that is not running) is one
``LabkitError`` naming the field the value came from (``cluster`` for a notebook
parameter, ``--cluster`` on the command line).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.core.errors import ApiError, LabkitError

__all__ = ["SIM", "KINDS", "FIELD", "RealTarget", "kind_of", "resolve", "connect"]

SIM = "sim"
#: the kinds of target a scenario YAML may list under ``clusters:``
KINDS = ("sim", "kwok", "kind", "context")
FIELD = "cluster"


def kind_of(cluster: str) -> str:
    """``sim``, ``kwok``, ``kind`` or ``context``: what sort of target a ``cluster`` value names."""
    value = (cluster or "").strip()
    if value == SIM:
        return "sim"
    head = value.split(":", 1)[0]
    if head in ("kwok", "kind"):
        return head
    return "context"


@dataclass(frozen=True)
class RealTarget:
    """A reachable real cluster: which kubeconfig and context, and what to call it."""

    spec: str  # the cluster value as given
    kind: str  # kwok | kind | context
    kubeconfig: str
    context: str
    name: str
    field: str = FIELD  # where the value came from, for messages

    def connect(self, *, env: Any = None, **kwargs: Any) -> Any:
        """A ``KubeCluster`` on this target (bound to ``env`` for watches when given)."""
        from labkit.kube.client import KubeCluster

        try:
            kc = KubeCluster(self.kubeconfig, self.context, name=self.name, env=env, **kwargs)
            kc.server_version()
        except ApiError as err:
            raise LabkitError(f"cannot reach the API server of {self.name} ({err.message})", field=self.field) from None
        return kc


def _local_control_plane(name: str, spec: str, field: str) -> RealTarget:
    from labkit.kube import controlplane as cp

    try:
        cp.check_name(name)
    except LabkitError:
        raise LabkitError(f"{spec!r}: {name!r} is not a valid local control plane name", field=field) from None
    state = cp.ClusterState.load(name)
    if state is None or not state.procs or not all(p.alive() for p in state.procs):
        raise LabkitError(f"no local control plane named {name!r} is running; start one with "
                          f"`labkit cluster create --name {name}` (or let `labkit run --cluster kwok` start a "
                          "temporary one)", field=field)
    return RealTarget(spec, "kwok", state.kubeconfig, state.context, f"kwok:{name}", field)


def _default_kubeconfig() -> str:
    # read $KUBECONFIG now: the client library reads it once, at import time
    return os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())


def _contexts(kubeconfig: str) -> list[str]:
    from kubernetes import config as kconfig

    try:
        contexts, _ = kconfig.list_kube_config_contexts(config_file=kubeconfig)
    except (kconfig.ConfigException, OSError):
        return []
    return [c["name"] for c in contexts or []]


def resolve(cluster: str, *, field: str = FIELD) -> RealTarget | None:
    """``None`` for ``sim``; else the real cluster ``cluster`` names (see module docstring)."""
    if not isinstance(cluster, str) or not cluster.strip():
        raise LabkitError("expects sim, kwok, kind or a kubeconfig context name", field=field)
    value = cluster.strip()
    kind = kind_of(value)
    if kind == "sim":
        return None
    if kind == "kwok":
        from labkit.kube import controlplane as cp

        name = value.split(":", 1)[1] if ":" in value else cp.DEFAULT_NAME
        return _local_control_plane(name, value, field)
    if kind == "kind":
        from labkit.kube import kind as kind_mod

        name = value.split(":", 1)[1] if ":" in value else kind_mod.DEFAULT_NAME
        path = kind_mod.kubeconfig_path(name)
        if not path.exists():
            raise LabkitError(f"no kind cluster {name!r} created by labkit (no {path}); start one with "
                              "`labkit cluster create --provider kind`", field=field)
        return RealTarget(value, "kind", str(path), kind_mod.context_name(name), f"kind:{name}", field)
    if value.startswith("labkit-"):
        from labkit.kube import controlplane as cp

        local = value[len("labkit-"):]
        if local in cp.list_clusters():
            return _local_control_plane(local, value, field)
    kubeconfig = _default_kubeconfig()
    known = _contexts(kubeconfig)
    if value not in known:
        listing = ", ".join(known) if known else "none"
        raise LabkitError(f"{value!r} is not sim, kwok, kind or a context of {kubeconfig} (contexts: {listing})",
                          field=field)
    return RealTarget(value, "context", kubeconfig, value, value, field)


def connect(target: str = "kwok", *, name: str | None = None, env: Any = None, **kwargs: Any) -> Any:
    """The ``KubeCluster`` behind a ``--cluster`` value (``kwok``, ``kind``, a context; see the module docstring).

    ``name`` picks a named local control plane or kind cluster (``connect("kwok", name="mine")``
    is ``kwok:mine``).  ``sim`` and a cluster that is not running are one clear ``LabkitError``.
    """
    if target == SIM:
        raise LabkitError("'sim' is the embedded simulator (labkit.sim.SimCluster), not a real cluster",
                          field="--cluster")
    value = f"{target}:{name}" if name and target in ("kwok", "kind") else target
    real = resolve(value, field="--cluster")
    assert real is not None
    return real.connect(env=env, **kwargs)
