"""Where a scenario runs: the ``cluster`` parameter turned into a connected backend, in one place.

Every notebook gets ``cluster`` from ``labkit run --cluster`` (default ``sim``).  The labs
(``FleetLab``, ``AppLab``) hand it to :func:`resolve`, and nothing else in the package
interprets it:

``sim``
    the embedded simulator (``labkit.sim.SimCluster``) on a virtual clock — :func:`resolve`
    returns ``None`` and the lab builds its simulated clusters as before.
``kwok`` / ``kwok:NAME``
    the local control plane built from source (``labkit cluster create``), named
    ``labkit`` unless ``NAME`` is given.  ``labkit run --cluster kwok`` goes through
    :func:`provision` first: when no ``labkit`` control plane is running it starts a
    temporary one for the run and deletes it afterwards (a notebook opened by hand
    never starts processes: it asks for ``labkit cluster create``).
``kind`` / ``kind:NAME``
    the kind cluster ``labkit cluster create --provider kind`` made.
anything else
    a kubeconfig context: a local control plane's own context ``labkit-NAME`` (its
    kubeconfig lives in the cache, not in ``~/.kube/config``), else a context of
    ``$KUBECONFIG`` / ``~/.kube/config``.

On a real cluster the lab runs on the wall clock (``labkit.clock.realtime()``), talks to
the API server through ``labkit.kube.client.KubeCluster``, and the cluster's own
controllers (Deployment, ReplicaSet, Job, HPA, garbage collector) and KWOK's fake
kubelets do what the simulator's controllers do on ``sim``.  Each lab sees the cluster
through a ``NamespacedCluster`` (``labkit.scenarios.isolation``): its namespaces carry a
unique prefix and the run's label, and are deleted when the lab closes — and again by
:func:`provision` after the notebook, in case it died half-way.

A mistake (an unknown context, a control plane that is not running or not built) is
one ``LabkitError`` naming the ``cluster`` field.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from labkit.errors import ApiError, LabkitError

SIM = "sim"
#: the kinds of target a scenario YAML may list under ``clusters:``
KINDS = ("sim", "kwok", "kind", "context")
RUN_ID_ENV = "LABKIT_RUN_ID"
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


def is_real(cluster: str) -> bool:
    return kind_of(cluster) != "sim"


@dataclass(frozen=True)
class RealTarget:
    """A reachable real cluster: which kubeconfig and context, and what to call it."""

    spec: str  # the cluster value as given
    kind: str  # kwok | kind | context
    kubeconfig: str
    context: str
    name: str

    def connect(self, *, env: Any = None, **kwargs: Any) -> Any:
        """A ``KubeCluster`` on this target (bound to ``env`` for watches when given)."""
        from labkit.kube.client import KubeCluster

        try:
            kc = KubeCluster(self.kubeconfig, self.context, name=self.name, env=env, **kwargs)
            kc.server_version()
        except ApiError as err:
            raise LabkitError(f"cannot reach the API server of {self.name} ({err.message})", field=FIELD) from None
        return kc


def _local_control_plane(name: str, spec: str) -> RealTarget:
    from labkit.kube import controlplane as cp

    try:
        cp.check_name(name)
    except LabkitError:
        raise LabkitError(f"{spec!r}: {name!r} is not a valid local control plane name", field=FIELD) from None
    state = cp.ClusterState.load(name)
    if state is None or not state.procs or not all(p.alive() for p in state.procs):
        raise LabkitError(f"no local control plane named {name!r} is running; start one with "
                          f"`labkit cluster create --name {name}` (or let `labkit run --cluster kwok` start a "
                          "temporary one)", field=FIELD)
    return RealTarget(spec, "kwok", state.kubeconfig, state.context, f"kwok:{name}")


def _default_kubeconfig() -> str:
    return os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())


def _contexts(kubeconfig: str) -> list[str]:
    from kubernetes import config as kconfig

    try:
        contexts, _ = kconfig.list_kube_config_contexts(config_file=kubeconfig)
    except (kconfig.ConfigException, OSError):
        return []
    return [c["name"] for c in contexts or []]


def resolve(cluster: str) -> RealTarget | None:
    """``None`` for ``sim``; else the real cluster ``cluster`` names (see module docstring)."""
    if not isinstance(cluster, str) or not cluster.strip():
        raise LabkitError("expects sim, kwok, kind or a kubeconfig context name", field=FIELD)
    value = cluster.strip()
    kind = kind_of(value)
    if kind == "sim":
        return None
    if kind == "kwok":
        from labkit.kube import controlplane as cp

        name = value.split(":", 1)[1] if ":" in value else cp.DEFAULT_NAME
        return _local_control_plane(name, value)
    if kind == "kind":
        from labkit.kube import kind as kind_mod

        name = value.split(":", 1)[1] if ":" in value else kind_mod.DEFAULT_NAME
        path = kind_mod.kubeconfig_path(name)
        if not path.exists():
            raise LabkitError(f"no kind cluster {name!r} created by labkit (no {path}); start one with "
                              "`labkit cluster create --provider kind`", field=FIELD)
        return RealTarget(value, "kind", str(path), kind_mod.context_name(name), f"kind:{name}")
    if value.startswith("labkit-"):
        from labkit.kube import controlplane as cp

        local = value[len("labkit-"):]
        if local in cp.list_clusters():
            return _local_control_plane(local, value)
    kubeconfig = _default_kubeconfig()
    known = _contexts(kubeconfig)
    if value not in known:
        listing = ", ".join(known) if known else "none"
        raise LabkitError(f"{value!r} is not sim, kwok, kind or a context of {kubeconfig} (contexts: {listing})",
                          field=FIELD)
    return RealTarget(value, "context", kubeconfig, value, value)


def require_cluster(scenario: str, cluster: str) -> str:
    """The notebook-side check: ``cluster`` if ``scenarios/<scenario>.yaml`` lists its kind under ``clusters:``.

    ``labkit run`` refuses an unsupported cluster before papermill starts; this is the same
    check for a notebook run by hand (papermill, JupyterLab): one ``LabkitError`` on the
    ``cluster`` field quoting the YAML's ``real_cluster.note`` (why it cannot run there).
    """
    from labkit import scenario as scenario_mod

    scenario_mod.get(scenario).check_cluster(cluster)
    return cluster


def run_id() -> str:
    """This run's id: ``$LABKIT_RUN_ID`` (set by :func:`provision`) or a fresh random one per process."""
    global _RUN_ID
    value = os.environ.get(RUN_ID_ENV)
    if value:
        return value
    if _RUN_ID is None:
        _RUN_ID = secrets.token_hex(3)
    return _RUN_ID


_RUN_ID: str | None = None
_PREFIXES = 0


def new_prefix(tag: str = "") -> str:
    """A namespace prefix unique to this run and lab: ``lk<run>-<n><tag>-`` (short: namespaces are <= 63 chars)."""
    global _PREFIXES
    _PREFIXES += 1
    tag = "".join(c for c in tag.lower() if c.isalnum())[:8]
    return f"lk{run_id()}-{_PREFIXES}{tag}-"


def ensure_kinds(kube: Any, crds: Iterable[dict], *, timeout: float = 30.0) -> None:
    """Apply CRDs (server-side, manager ``labkit``) and wait until the API server serves each kind."""
    served = []
    for crd in crds:
        kube.apply(crd, field_manager="labkit-install", force=True)
        spec = crd["spec"]
        version = next((v["name"] for v in spec["versions"] if v.get("storage")), spec["versions"][0]["name"])
        served.append((f"{spec['group']}/{version}", spec["names"]["kind"]))
    for api_version, kind in served:
        kube.wait_for_kind(api_version, kind, timeout=timeout)


@contextlib.contextmanager
def provision(cluster: str, *, log: Callable[[str], None] | None = None) -> Iterator[str]:
    """Make ``cluster`` usable for the length of a run; yields the value to hand the notebook.

    ``sim`` passes through.  ``kwok`` with no ``labkit`` control plane running starts a
    temporary one (``run-<pid>``, deleted at the end) and yields ``kwok:run-<pid>``; any other
    value is checked with :func:`resolve` (a clear ``LabkitError`` before anything runs).
    Sets ``$LABKIT_RUN_ID`` for the notebook's kernel and, at the end, deletes every
    namespace labelled with it.
    """
    log = log or (lambda _m: None)
    value = cluster.strip()
    if kind_of(value) == "sim":
        yield value
        return
    temporary: str | None = None
    if value == "kwok":
        from labkit.kube import controlplane as cp

        state = cp.ClusterState.load(cp.DEFAULT_NAME)
        if state is None or not state.procs or not all(p.alive() for p in state.procs):
            if not cp.available():
                raise LabkitError("--cluster kwok needs the local control plane, which is not built: "
                                  "run `labkit cluster build` (or `make controlplane`)", field=FIELD)
            temporary = f"run-{os.getpid()}"
            log(f"no local control plane {cp.DEFAULT_NAME!r} is running: starting a temporary one ({temporary})")
            try:
                cp.create(temporary, log=log)
            except BaseException:
                cp.delete(temporary)
                raise
            value = f"kwok:{temporary}"
    saved = os.environ.get(RUN_ID_ENV)
    rid = secrets.token_hex(3)
    os.environ[RUN_ID_ENV] = rid
    try:
        target = resolve(value)
        yield value
    finally:
        if saved is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = saved
        try:
            if temporary is None:
                _delete_run_namespaces(target if "target" in locals() else None, rid)
        finally:
            if temporary is not None:
                from labkit.kube import controlplane as cp

                cp.delete(temporary)


def _delete_run_namespaces(target: RealTarget | None, rid: str) -> None:
    if target is None:
        return
    from labkit.scenarios.isolation import delete_run_namespaces

    try:
        kube = target.connect()
    except LabkitError:
        return
    try:
        delete_run_namespaces(kube, rid)
    except ApiError:
        pass
    finally:
        kube.close()
