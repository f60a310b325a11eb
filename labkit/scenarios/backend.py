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

On a real cluster the lab runs on the wall clock (``labkit.core.clock.realtime()``), talks to
the API server through ``labkit.kube.client.KubeCluster``, and the cluster's own
controllers (Deployment, ReplicaSet, Job, HPA, garbage collector) and KWOK's fake
kubelets do what the simulator's controllers do on ``sim``.  Each lab sees the cluster
through a ``NamespacedCluster`` (``labkit.scenarios.isolation``): its namespaces carry a
unique prefix and the run's label, and are deleted when the lab closes — and again by
:func:`provision` after the notebook, in case it died half-way.

A mistake (an unknown context, a control plane that is not running or not built) is
one ``LabkitError`` naming the ``cluster`` field.  Turning a ``cluster`` value into a
kubeconfig and context (``kind_of``, ``resolve``, ``RealTarget``) is the kube layer's
job (``labkit.kube.locate``, re-exported here); this module adds what a *run* needs on
top: provisioning, run ids, namespace prefixes and clean-up.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any, Callable, Iterable, Iterator

from labkit.core.errors import ApiError, LabkitError
from labkit.kube.locate import FIELD, RealTarget, kind_of, resolve  # noqa: F401 - kind_of, resolve: re-exported for the labs
from labkit.scenarios import spec as scenario_spec

RUN_ID_ENV = "LABKIT_RUN_ID"


def require_cluster(scenario: str, cluster: str) -> str:
    """The notebook-side check: ``cluster`` if ``scenarios/<scenario>.yaml`` lists its kind under ``clusters:``.

    ``labkit run`` refuses an unsupported cluster before papermill starts; this is the same
    check for a notebook run by hand (papermill, JupyterLab): one ``LabkitError`` on the
    ``cluster`` field quoting the YAML's ``real_cluster.note`` (why it cannot run there).
    """
    scenario_spec.get(scenario).check_cluster(cluster)
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
