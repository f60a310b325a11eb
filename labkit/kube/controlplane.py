"""A real Kubernetes control plane as plain local processes: ``labkit cluster create --provider kwok``.

The project's machines have no Docker engine, so kind cannot run there.  Instead the
real upstream components, compiled from their Go modules by ``labkit cluster build``
(``labkit.kube.build``), run as ordinary processes on the loopback interface:

``etcd``
    v3.6 with one member, data under the cluster's folder, client and peer URLs on
    free ``127.0.0.1`` ports.  ``--unsafe-no-fsync`` because a lab cluster is disposable
    and fsync dominates its write latency.
``kube-apiserver``
    v1.34 with the default admission plugins (so ``NamespaceLifecycle``,
    ``ServiceAccount``, defaulting and validation are the real thing),
    ``--authorization-mode=Node,RBAC`` (real authorization: every component gets its
    own client certificate and the bootstrap RBAC roles apply; the lab's own kubeconfig
    is a ``system:masters`` admin, as kind's and kubeadm's are), serving and client
    certificates generated here (``cryptography``), the service-account key pair
    (``--service-account-key-file`` / ``--service-account-signing-key-file`` /
    ``--service-account-issuer``) and the aggregation-layer front-proxy certificates
    (``--requestheader-*`` / ``--proxy-client-*``) so an aggregated API such as
    metrics-server can be added.  It binds ``--bind-address=127.0.0.1`` only.
``kube-controller-manager``
    the real Deployment, ReplicaSet, StatefulSet, Job, HPA, garbage-collector,
    namespace and service-account controllers, with per-controller service-account
    credentials (``--use-service-account-credentials``, as kubeadm runs it).
``kube-scheduler``
    binds pods to nodes.  KWOK v0.8 never binds pods itself (its pod controller only
    watches pods whose ``spec.nodeName`` is one of its nodes), so without a scheduler
    every pod of a Deployment would stay Pending; kwokctl runs one for the same reason.
``kwok``
    one process playing every kubelet (``--manage-all-nodes=true``), with the Stage
    set of ``labkit.kube.stages`` passed by ``--config`` (standalone ``kwok`` has no
    default stages), renewing node Leases (``--node-lease-duration-seconds=40``), and
    serving health and KWOK's emulated kubelet metrics on a loopback port.  The fake
    ``Node`` objects (``kwok-node-0`` ..) are created through the API after the API
    server is ready; KWOK's ``node-initialize`` stage makes them Ready.

Layout (``$LABKIT_CACHE``, default ``~/.cache/labkit``)::

    clusters/<name>/state.json      ports, PIDs, process groups, start times, argv
    clusters/<name>/kubeconfig      admin kubeconfig (context ``labkit-<name>``)
    clusters/<name>/*.kubeconfig    each component's own identity (metrics-server: a ServiceAccount token)
    clusters/<name>/pki/            CA, serving/client certs, service-account keys
    clusters/<name>/etcd/           etcd data
    clusters/<name>/logs/<c>.log    each component's stdout+stderr
    clusters/<name>/kwok.yaml       the Stage set

Processes and cleanup: every component starts in its own session
(``start_new_session``), so its process group id is its pid; ``state.json`` records
pid, group and the kernel start time (``/proc/<pid>/stat`` field 22) right after each
start, so a half-finished ``create`` can always be cleaned up and a recycled pid is
never signalled.  ``delete`` stops components in reverse order: SIGTERM to the group,
a grace period, SIGKILL, then verifies that no process is left in any recorded group
(and reaps its own children, so a test process leaves no zombies), and removes the
folder.  Only recorded process ids are ever signalled.

Readiness: ``create`` returns once etcd answers ``/health``, the API server's
``/readyz`` is OK, the controller manager's and scheduler's ``/healthz`` are OK, KWOK's
``/healthz`` is OK, every fake Node is Ready and the ``default`` ServiceAccount exists
(the ServiceAccount admission plugin refuses pods before it does), and — with
metrics-server — its ``/livez`` is OK and ``APIService v1beta1.metrics.k8s.io`` is
``Available`` (an unavailable aggregated API would stall namespace deletion and garbage
collection discovery).  A component that exits during start-up fails ``create`` with the
tail of its log.

The metrics path (what the HPA reads): KWOK emulates per-pod CPU usage
(``kwok.x-k8s.io/usage-cpu`` annotations; see ``labkit.kube.stages``) and serves it in the
kubelet's ``/metrics/resource`` format at ``/metrics/nodes/<node>/metrics/resource`` on its
port, over HTTPS with a certificate from the cluster CA.  The HPA controller does not read
kubelets, it reads ``metrics.k8s.io``, so ``create`` also runs

``metrics-server`` (optional: when ``labkit cluster build`` has built it, or ``metrics=True``)
    v0.9, on its own loopback port with its own serving certificate (SANs ``localhost``,
    ``127.0.0.1`` and ``metrics-server.kube-system.svc``, the name the aggregator verifies).
    It runs as the ServiceAccount ``kube-system/metrics-server``: the RBAC objects of its
    release manifests (``clusters/controlplane/metrics-server/rbac.yaml`` — read nodes, pods,
    ``nodes/metrics``, the ``extension-apiserver-authentication`` ConfigMap, delegated
    authentication/authorization) are applied through the API, and its kubeconfig carries a
    token of that ServiceAccount from the TokenRequest API.  It scrapes every fake node as
    its kubelet: ``--kubelet-preferred-address-types=InternalIP`` (127.0.0.1),
    ``--kubelet-use-node-status-port`` (KWOK's port, in the node's ``daemonEndpoints``), the
    path from the node annotation ``metrics.k8s.io/resource-metrics-path``, and KWOK's
    certificate verified against the cluster CA (``--kubelet-certificate-authority``, rather
    than kwokctl's ``--kubelet-insecure-tls``).  ``--metric-resolution=10s`` is the shortest
    it accepts (manifests: 15 s).  ``APIService v1beta1.metrics.k8s.io`` points at a Service
    of type ``ExternalName`` to ``localhost`` — as kwokctl's binary runtime does — with the
    cluster CA as its ``caBundle``; for that the API server runs with
    ``--enable-aggregator-routing=false`` (service routing: the aggregator resolves an
    ExternalName Service to its host name; endpoint routing refuses ExternalName Services,
    and Endpoints may not hold loopback addresses).  A pod's metrics appear after two
    scrapes (metrics-server differentiates the cumulative CPU counter), 10–20 s after it
    is Ready.

The controller manager runs with ``--horizontal-pod-autoscaler-sync-period=5s``
(upstream 15 s) so a lab sees an HPA decision within seconds; every other HPA flag keeps
its default (tolerance 0.1, downscale stabilization 5 min, CPU initialization period
5 min, initial readiness delay 30 s).  Measured on the project's 2-core machine: a
cluster with metrics-server is ready in 12–16 s; an HPA scaling 1 pod at 200 % of its
request against a 50 % target rescales ~30 s after it is created (two scrapes, the
readiness window, one sync).  Without metrics-server the cluster still starts
(``state.metrics`` is False) and the HPA reports ``FailedGetResourceMetric``.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from labkit.core.errors import ApiError, LabkitError
from labkit.kube import build as kbuild
from labkit.kube.stages import StageOptions, stages_yaml

DEFAULT_NAME = "labkit"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
OPTIONAL_COMPONENTS = ("metrics-server",)
METRICS_SERVICE = "metrics-server"
METRICS_APISERVICE = "v1beta1.metrics.k8s.io"
#: metrics-server's scrape interval: its minimum (it refuses less than 10 s); the upstream manifests use 15 s
METRIC_RESOLUTION = "10s"
#: the HPA controller's sync period (upstream default 15 s): shortened so a lab sees a decision within seconds
HPA_SYNC_PERIOD = "5s"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
ISSUER = "https://kubernetes.default.svc.cluster.local"
LOOPBACK = "127.0.0.1"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class BinariesMissing(LabkitError):
    """The control plane has not been built on this machine."""


def build_hint(missing: list[str]) -> str:
    where = ", ".join(dict.fromkeys(str(kbuild.binary(m).parent) for m in missing))
    return (f"real control plane not built: missing {', '.join(missing)} (looked in {where}); "
            "run `labkit cluster build` (needs the Go toolchain; the first build takes 20-40 minutes)")


def binaries() -> dict[str, Path]:
    """Paths of every component; raises ``BinariesMissing`` naming what is absent and how to build it."""
    names = {"etcd": "etcd", "kube-apiserver": "kube-apiserver", "kube-controller-manager": "kube-controller-manager",
             "kube-scheduler": "kube-scheduler", "kwok": "kwok"}
    paths = {c: kbuild.binary(b) for c, b in names.items()}
    missing = [c for c, p in paths.items() if not p.exists()]
    if missing:
        raise BinariesMissing(build_hint(missing))
    return paths


def available() -> bool:
    """Whether every binary the control plane needs is built (metrics-server is optional: not needed here)."""
    try:
        binaries()
    except BinariesMissing:
        return False
    return True


def metrics_available() -> bool:
    """Whether metrics-server is built, so ``create`` serves ``metrics.k8s.io`` by default."""
    return kbuild.binary("metrics-server").exists()


def metrics_server_rbac() -> list[dict[str, Any]]:
    """metrics-server's own RBAC objects (``clusters/controlplane/metrics-server/rbac.yaml``)."""
    path = kbuild.module_dir() / "metrics-server" / "rbac.yaml"
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d]
    except OSError as err:
        raise LabkitError(f"metrics-server RBAC manifest missing: {err}", file=str(path)) from None


def metrics_apiservice(port: int, ca: bytes) -> list[dict[str, Any]]:
    """``APIService v1beta1.metrics.k8s.io`` behind an ``ExternalName`` Service to localhost (kwokctl's binary runtime).

    With ``--enable-aggregator-routing=false`` the aggregator resolves the Service itself (service
    routing, no kube-proxy involved): an ExternalName Service resolves to ``https://localhost:<port>``,
    where metrics-server listens on the loopback interface.  (Endpoint routing refuses ExternalName
    Services, and Endpoints may not hold loopback addresses.)  Unlike kwokctl (``insecureSkipTLSVerify``), the serving certificate is verified against
    the cluster CA.
    """
    labels = {"k8s-app": "metrics-server"}
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": METRICS_SERVICE, "namespace": "kube-system", "labels": labels},
         "spec": {"type": "ExternalName", "externalName": "localhost"}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": METRICS_APISERVICE, "labels": labels},
         "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                  "versionPriority": 100, "caBundle": base64.b64encode(ca).decode(),
                  "service": {"name": METRICS_SERVICE, "namespace": "kube-system", "port": port}}},
    ]


def clusters_root() -> Path:
    return kbuild.cache_root() / "clusters"


def cluster_dir(name: str) -> Path:
    return clusters_root() / name


def check_name(name: str) -> str:
    if not name or len(name) > 40 or not _NAME_RE.match(name):
        raise LabkitError(f"invalid cluster name {name!r}: use lower-case letters, digits and '-' (at most 40)",
                          field="--name")
    return name


# ---------------------------------------------------------------------------- processes

def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, pgrp, starttime)`` of a live pid from ``/proc``, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    # fields after "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime priority nice num_threads itrealvalue starttime
    return rest[0], int(rest[2]), int(rest[19])


@dataclass
class Proc:
    """One started component, as recorded in ``state.json``."""

    name: str
    pid: int
    pgid: int
    start: int  # kernel start time of the pid (clock ticks since boot): guards against pid reuse
    argv: list[str]
    log: str
    port: int | None = None

    def alive(self) -> bool:
        st = _proc_stat(self.pid)
        return st is not None and st[2] == self.start and st[0] != "Z"

    def same_process(self) -> bool:
        """The recorded pid still names the process we started (alive or a zombie)."""
        st = _proc_stat(self.pid)
        return st is not None and st[2] == self.start


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = _proc_stat(int(entry.name))
        if st is not None and st[1] == pgid and st[0] != "Z":
            out.append(int(entry.name))
    return out


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def _signal_group(proc: Proc, sig: int) -> None:
    leader = _proc_stat(proc.pid)
    if leader is not None and leader[2] != proc.start:
        return  # the pid was recycled: the group is not ours any more
    try:
        os.killpg(proc.pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process(proc: Proc, *, grace: float = 10.0) -> list[int]:
    """SIGTERM the component's process group, SIGKILL after ``grace``; returns pids still left (should be [])."""
    if proc.same_process() or _group_members(proc.pgid):
        _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap(proc.pid)
            if not proc.alive() and not _group_members(proc.pgid):
                break
            time.sleep(0.05)
        else:
            _signal_group(proc, signal.SIGKILL)
            for pid in _group_members(proc.pgid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and (proc.alive() or _group_members(proc.pgid)):
                _reap(proc.pid)
                time.sleep(0.05)
    _reap(proc.pid)
    left = _group_members(proc.pgid)
    if proc.alive() and proc.pid not in left:
        left.append(proc.pid)
    return left


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- certificates

def _key() -> Any:
    """ECDSA P-256 for certificates: as accepted as RSA by every component, and ~100x faster to generate."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())  # "EC PRIVATE KEY" / "RSA PRIVATE KEY", as Go reads them


def _pem_pub(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _ca(cn: str) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key: Any, ca_cert: Any, cn: str, *, org: str | None = None, server: bool = False,
          client: bool = False, dns: list[str] = (), ips: list[str] = ()) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    b = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                      crl_sign=False, content_commitment=False, data_encipherment=False,
                                      key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if dns or ips:
        san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


#: client identities: file stem -> (CN, O).  Bootstrap RBAC binds the system:* users.
CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("system:kwok-controller", "system:masters"),
}


def write_pki(pki: Path) -> dict[str, Path]:
    """Generate the cluster's CA, certificates and service-account keys into ``pki``; returns their paths."""
    pki.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(stem: str, data: bytes, private: bool = False) -> Path:
        p = pki / stem
        p.write_bytes(data)
        if private:
            p.chmod(0o600)
        files[stem] = p
        return p

    ca_key, ca_cert = _ca("labkit-ca")
    put("ca.crt", _pem_cert(ca_cert))
    put("ca.key", _pem_key(ca_key), True)
    k, c = _leaf(ca_key, ca_cert, "kube-apiserver", server=True,
                 dns=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                      "kubernetes.default.svc.cluster.local"], ips=[LOOPBACK, SERVICE_IP])
    put("apiserver.crt", _pem_cert(c))
    put("apiserver.key", _pem_key(k), True)
    for stem, (cn, org) in CLIENTS.items():
        k, c = _leaf(ca_key, ca_cert, cn, org=org, client=True)
        put(f"{stem}.crt", _pem_cert(c))
        put(f"{stem}.key", _pem_key(k), True)
    k, c = _leaf(ca_key, ca_cert, "kwok-server", server=True, dns=["localhost"], ips=[LOOPBACK])
    put("kwok-server.crt", _pem_cert(c))
    put("kwok-server.key", _pem_key(k), True)
    # metrics-server's serving certificate: the aggregator dials the ExternalName (localhost) but checks
    # the name <service>.<namespace>.svc, and the APIService's caBundle is this CA (no insecureSkipTLSVerify)
    k, c = _leaf(ca_key, ca_cert, "metrics-server", server=True,
                 dns=["localhost", f"{METRICS_SERVICE}.kube-system.svc", f"{METRICS_SERVICE}.kube-system.svc.cluster.local"],
                 ips=[LOOPBACK])
    put("metrics-server.crt", _pem_cert(c))
    put("metrics-server.key", _pem_key(k), True)
    sa = _rsa_key()  # service-account tokens are RS256, the default every client library verifies
    put("sa.key", _pem_key(sa), True)
    put("sa.pub", _pem_pub(sa))
    fp_key, fp_cert = _ca("front-proxy-ca")
    put("front-proxy-ca.crt", _pem_cert(fp_cert))
    k, c = _leaf(fp_key, fp_cert, "front-proxy-client", client=True)
    put("front-proxy-client.crt", _pem_cert(c))
    put("front-proxy-client.key", _pem_key(k), True)
    return files


def kubeconfig_dict(server: str, ca: bytes, cert: bytes, key: bytes, *, context: str, user: str) -> dict[str, Any]:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }


def write_token_kubeconfig(path: Path, server: str, pki: Path, token: str, *, context: str, user: str) -> Path:
    """A kubeconfig authenticating with a bearer token (a ServiceAccount's, from the TokenRequest API)."""
    data = kubeconfig_dict(server, (pki / "ca.crt").read_bytes(), b"", b"", context=context, user=user)
    data["users"] = [{"name": user, "user": {"token": token}}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


def write_kubeconfig(path: Path, server: str, pki: Path, stem: str, *, context: str) -> Path:
    data = kubeconfig_dict(server, (pki / "ca.crt").read_bytes(), (pki / f"{stem}.crt").read_bytes(),
                           (pki / f"{stem}.key").read_bytes(), context=context, user=f"{context}-{stem}")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


# ---------------------------------------------------------------------------- state

@dataclass
class ClusterState:
    """What ``state.json`` records about a local control plane."""

    name: str
    dir: str
    kubeconfig: str
    server: str
    ports: dict[str, int] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    created: float = 0.0
    ready_seconds: float | None = None
    version: str = kbuild.KUBERNETES_VERSION
    status: str = "starting"  # starting | running | failed
    metrics: bool = False  # metrics-server runs and APIService v1beta1.metrics.k8s.io is served

    @property
    def context(self) -> str:
        return f"labkit-{self.name}"

    def path(self) -> Path:
        return Path(self.dir) / "state.json"

    def save(self) -> None:
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.path())

    @classmethod
    def load(cls, name: str) -> "ClusterState | None":
        p = cluster_dir(name) / "state.json"
        if not p.exists():
            return None
        raw = json.loads(p.read_text())
        raw["procs"] = [Proc(**x) for x in raw.get("procs") or []]
        return cls(**raw)

    def proc(self, name: str) -> Proc | None:
        return next((p for p in self.procs if p.name == name), None)


@dataclass
class ComponentStatus:
    name: str
    pid: int
    running: bool
    port: int | None
    log: str


@dataclass
class ClusterStatus:
    name: str
    exists: bool
    server: str = ""
    kubeconfig: str = ""
    components: list[ComponentStatus] = field(default_factory=list)
    ready: bool = False
    nodes_ready: int = 0
    nodes: int = 0
    state: str = ""

    @property
    def running(self) -> bool:
        return self.exists and bool(self.components) and all(c.running for c in self.components) and self.ready


# ---------------------------------------------------------------------------- HTTP probes

def _ssl_context(pki: Path, *, verify: bool = True, client: str | None = "admin") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt")) if verify else ssl._create_unverified_context()  # noqa: S323
    if not verify:
        ctx.check_hostname = False
    if client:
        ctx.load_cert_chain(str(pki / f"{client}.crt"), str(pki / f"{client}.key"))
    return ctx


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:  # noqa: S310 - loopback URLs we built
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ssl.SSLError) as err:
        return 0, str(err)


def _tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------- create / delete / status

Log = Callable[[str], None]


class _Starter:
    """Starts components one by one, recording each in ``state.json`` at once."""

    def __init__(self, state: ClusterState, log: Log):
        self.state = state
        self.log = log
        self.dir = Path(state.dir)

    def start(self, name: str, argv: list[str], port: int | None = None) -> Proc:
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(  # noqa: S603 - argv built here from recorded binaries
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                start_new_session=True, close_fds=True,
            )
        st = _proc_stat(popen.pid)
        start = st[2] if st else 0
        proc = Proc(name, popen.pid, popen.pid, start, argv, str(log_path), port)
        _POPENS[popen.pid] = popen
        self.state.procs.append(proc)
        self.state.save()
        self.log(f"started {name} (pid {popen.pid}{f', port {port}' if port else ''})")
        return proc

    def wait(self, proc: Proc, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                _reap(proc.pid)
                raise LabkitError(f"{proc.name} exited during start-up; last lines of {proc.log}:\n{_tail(proc.log)}")
            if check():
                self.log(f"{proc.name}: {what} ok")
                return
            time.sleep(0.2)
        raise LabkitError(f"{proc.name}: {what} not reached within {timeout:.0f} s; last lines of {proc.log}:\n"
                          f"{_tail(proc.log)}")


#: Popen objects of components started by this Python process, so ``delete`` can reap them.
_POPENS: dict[int, subprocess.Popen] = {}


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake",
                            # where metrics-server (>= 0.7) scrapes this node's kubelet metrics: KWOK's Metric path
                            "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource"},
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/role": "agent", "node-role.kubernetes.io/agent": "", "type": "kwok"},
        },
        "spec": {},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
    }


def create(
    name: str = DEFAULT_NAME,
    *,
    nodes: int = 3,
    stage_options: StageOptions | None = None,
    timeout: float = 180.0,
    log: Log | None = None,
    metrics: bool | None = None,
) -> ClusterState:
    """Start a local control plane named ``name`` and return its recorded state (see module docstring).

    ``metrics``: run metrics-server and serve ``metrics.k8s.io`` (what the HPA reads); ``None``
    (the default) means "if metrics-server is built".  Raises ``BinariesMissing`` when the
    components are not built (or ``metrics=True`` without metrics-server), ``LabkitError`` when a
    cluster of that name is already running or a component fails to start (everything
    started so far is stopped again).
    """
    log = log or (lambda _m: None)
    check_name(name)
    bins = binaries()
    if metrics is None:
        metrics = metrics_available()
    if metrics:
        ms = kbuild.binary("metrics-server")
        if not ms.exists():
            raise BinariesMissing(f"metrics-server not built (looked in {ms.parent}); run "
                                  "`labkit cluster build --component metrics-server`, or create the cluster "
                                  "without metrics (the HPA then reports FailedGetResourceMetric)")
        bins["metrics-server"] = ms
    existing = ClusterState.load(name)
    if existing is not None:
        if any(p.alive() for p in existing.procs):
            raise LabkitError(f"cluster {name!r} already exists (kubeconfig {existing.kubeconfig}); "
                              f"delete it first with `labkit cluster delete --name {name}`", field="--name")
        delete(name)
    elif cluster_dir(name).exists():
        shutil.rmtree(cluster_dir(name), ignore_errors=True)
    t0 = time.monotonic()
    d = cluster_dir(name)
    d.mkdir(parents=True)
    pki = d / "pki"
    write_pki(pki)
    ports = {"etcd": free_port(), "etcd-peer": free_port(), "kube-apiserver": free_port(),
             "kube-controller-manager": free_port(), "kube-scheduler": free_port(), "kwok": free_port()}
    if metrics:
        ports["metrics-server"] = free_port()
    server = f"https://{LOOPBACK}:{ports['kube-apiserver']}"
    context = f"labkit-{name}"
    kubeconfig = write_kubeconfig(d / "kubeconfig", server, pki, "admin", context=context)
    for stem in ("controller-manager", "scheduler", "kwok"):
        write_kubeconfig(d / f"{stem}.kubeconfig", server, pki, stem, context=context)
    (d / "kwok.yaml").write_text(stages_yaml(stage_options))
    state = ClusterState(name=name, dir=str(d), kubeconfig=str(kubeconfig), server=server, ports=ports,
                         created=time.time(), metrics=bool(metrics))
    state.save()
    st = _Starter(state, log)
    try:
        try:
            _start_all(st, bins, d, pki, ports, server, nodes, timeout)
        except ApiError as err:  # the API answered, but refused a start-up step (nodes, service account)
            raise LabkitError(f"cluster {name!r}: the API server refused a start-up request ({err.reason}): "
                              f"{err.message}; logs in {d / 'logs'}") from None
    except BaseException:
        state.status = "failed"
        state.save()
        for p in reversed(state.procs):
            stop_process(p, grace=3.0)
        raise
    state.ready_seconds = round(time.monotonic() - t0, 2)
    state.status = "running"
    state.save()
    log(f"cluster {name!r} ready in {state.ready_seconds:.1f} s: {server}")
    return state


def _start_all(st: _Starter, bins: dict[str, Path], d: Path, pki: Path, ports: dict[str, int], server: str,
               nodes: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(deadline - time.monotonic(), 1.0)

    etcd_url = f"http://{LOOPBACK}:{ports['etcd']}"
    peer_url = f"http://{LOOPBACK}:{ports['etcd-peer']}"
    etcd = st.start("etcd", [
        str(bins["etcd"]), "--name=labkit", f"--data-dir={d / 'etcd'}",
        f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=labkit={peer_url}", "--initial-cluster-state=new",
        "--unsafe-no-fsync", "--log-level=warn", "--quota-backend-bytes=4294967296",
    ], ports["etcd"])
    st.wait(etcd, "etcd /health", lambda: '"health":"true"' in _get(f"{etcd_url}/health")[1], min(left(), 30))

    ap = ports["kube-apiserver"]
    apiserver = st.start("kube-apiserver", [
        str(bins["kube-apiserver"]),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={LOOPBACK}", f"--secure-port={ap}", f"--advertise-address={LOOPBACK}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--cert-dir={pki}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        # the aggregator dials an APIService's Service itself (no kube-proxy here): ExternalName
        # Services resolve to their host name — metrics-server's is localhost — while endpoint routing
        # (--enable-aggregator-routing=true) refuses ExternalName and Endpoints refuse loopback IPs
        "--enable-aggregator-routing=false",
        "--profiling=false",
        "--endpoint-reconciler-type=none",
    ], ap)
    ctx = _ssl_context(pki)
    st.wait(apiserver, "kube-apiserver /readyz", lambda: _get(f"{server}/readyz", ctx)[0] == 200, min(left(), 120))

    kcm_port = ports["kube-controller-manager"]
    cm_kc = d / "controller-manager.kubeconfig"
    kcm = st.start("kube-controller-manager", [
        str(bins["kube-controller-manager"]),
        f"--kubeconfig={cm_kc}", f"--authentication-kubeconfig={cm_kc}", f"--authorization-kubeconfig={cm_kc}",
        f"--bind-address={LOOPBACK}", f"--secure-port={kcm_port}",
        "--leader-elect=false", "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        f"--cert-dir={d / 'kcm-certs'}",
        "--controllers=*", "--cluster-name=labkit", "--profiling=false",
        f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
    ], kcm_port)
    sched_port = ports["kube-scheduler"]
    s_kc = d / "scheduler.kubeconfig"
    sched = st.start("kube-scheduler", [
        str(bins["kube-scheduler"]),
        f"--kubeconfig={s_kc}", f"--authentication-kubeconfig={s_kc}", f"--authorization-kubeconfig={s_kc}",
        f"--bind-address={LOOPBACK}", f"--secure-port={sched_port}", "--leader-elect=false",
        f"--client-ca-file={pki / 'ca.crt'}", f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        f"--cert-dir={d / 'scheduler-certs'}", "--profiling=false",
    ], sched_port)
    kwok_port = ports["kwok"]
    kwok = st.start("kwok", [
        str(bins["kwok"]),
        f"--kubeconfig={d / 'kwok.kubeconfig'}", f"--config={d / 'kwok.yaml'}",
        "--manage-all-nodes=true",
        f"--server-address={LOOPBACK}:{kwok_port}",
        f"--node-ip={LOOPBACK}", f"--node-port={kwok_port}",
        # HTTPS (for a metrics-server scraping it as a kubelet) and plain HTTP share the port
        f"--tls-cert-file={pki / 'kwok-server.crt'}", f"--tls-private-key-file={pki / 'kwok-server.key'}",
        "--node-lease-duration-seconds=40",
        "--cidr=10.244.0.1/16",
    ], kwok_port)
    insecure = _ssl_context(pki, verify=False, client=None)
    st.wait(kcm, "kube-controller-manager /healthz",
            lambda: _get(f"https://{LOOPBACK}:{kcm_port}/healthz", insecure)[0] == 200, min(left(), 60))
    st.wait(sched, "kube-scheduler /healthz",
            lambda: _get(f"https://{LOOPBACK}:{sched_port}/healthz", insecure)[0] == 200, min(left(), 60))
    st.wait(kwok, "kwok /healthz", lambda: _get(f"http://{LOOPBACK}:{kwok_port}/healthz")[0] == 200, min(left(), 60))

    from labkit.kube.client import KubeCluster

    kc = KubeCluster(st.state.kubeconfig, st.state.context, name=st.state.name)
    try:
        names = [f"kwok-node-{i}" for i in range(nodes)]
        for n in names:
            kc.apply(_node(n), field_manager="labkit")
        st.state.nodes = names
        st.state.save()

        def nodes_ready() -> bool:
            ready = 0
            for node in kc.list("v1", "Node"):
                conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
                ready += conds.get("Ready") == "True"
            return ready >= len(names)

        st.wait(kwok, f"{len(names)} Ready nodes", nodes_ready, min(left(), 60))
        st.wait(kcm, "the default ServiceAccount",
                lambda: kc.get("v1", "ServiceAccount", "default", "default") is not None, min(left(), 60))
        if "metrics-server" in bins:
            _start_metrics_server(st, kc, bins["metrics-server"], d, pki, ports["metrics-server"], server,
                                  min(left(), 90))
    finally:
        kc.close()


def _apiservice_available(kc: Any) -> bool:
    svc = kc.get("apiregistration.k8s.io/v1", "APIService", METRICS_APISERVICE)
    conds = ((svc or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)


def _start_metrics_server(st: _Starter, kc: Any, binary: Path, d: Path, pki: Path, port: int, server: str,
                          timeout: float) -> None:
    """metrics-server as the ServiceAccount its manifests bind, behind ``APIService v1beta1.metrics.k8s.io``."""
    for obj in metrics_server_rbac():
        kc.apply(obj, field_manager="labkit")
    # the identity the RBAC names: a token of ServiceAccount kube-system/metrics-server (TokenRequest API)
    review = kc._request("POST", "/api/v1/namespaces/kube-system/serviceaccounts/metrics-server/token",
                         body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                               "spec": {"expirationSeconds": 365 * 24 * 3600}})
    token = (review.get("status") or {}).get("token")
    if not token:
        raise LabkitError(f"the API server issued no token for kube-system/metrics-server: {review}")
    ms_kc = write_token_kubeconfig(d / "metrics-server.kubeconfig", server, pki, token,
                                   context=st.state.context, user="metrics-server")
    proc = st.start("metrics-server", [
        str(binary),
        f"--kubeconfig={ms_kc}", f"--authentication-kubeconfig={ms_kc}", f"--authorization-kubeconfig={ms_kc}",
        f"--bind-address={LOOPBACK}", f"--secure-port={port}",
        f"--tls-cert-file={pki / 'metrics-server.crt'}", f"--tls-private-key-file={pki / 'metrics-server.key'}",
        # scrape KWOK as every node's kubelet: InternalIP 127.0.0.1, the port in the node's status
        # (KWOK's), the path in the node's metrics.k8s.io/resource-metrics-path annotation; KWOK's
        # serving certificate comes from the cluster CA, so it is verified rather than trusted blindly
        "--kubelet-use-node-status-port", "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}", "--kubelet-request-timeout=5s",
        f"--metric-resolution={METRIC_RESOLUTION}", "--profiling=false",
    ], port)
    insecure = _ssl_context(pki, verify=False, client=None)
    st.wait(proc, "metrics-server /livez",
            lambda: _get(f"https://{LOOPBACK}:{port}/livez", insecure)[0] == 200, timeout)
    for obj in metrics_apiservice(port, (pki / "ca.crt").read_bytes()):
        kc.apply(obj, field_manager="labkit")
    st.wait(proc, f"APIService {METRICS_APISERVICE} Available", lambda: _apiservice_available(kc), timeout)


def delete(name: str = DEFAULT_NAME, *, log: Log | None = None, keep_dir: bool = False) -> bool:
    """Stop every recorded component (SIGTERM, then SIGKILL) and remove the cluster's folder.

    Returns False when there was no such cluster.  Raises ``LabkitError`` if a process
    survives SIGKILL (the folder is then kept, with its ``state.json``).
    """
    log = log or (lambda _m: None)
    check_name(name)
    d = cluster_dir(name)
    state = ClusterState.load(name)
    if state is None:
        if d.exists() and not keep_dir:
            shutil.rmtree(d, ignore_errors=True)
            return True
        return False
    survivors: dict[str, list[int]] = {}
    for proc in reversed(state.procs):
        left = stop_process(proc)
        _POPENS.pop(proc.pid, None)
        if left:
            survivors[proc.name] = left
        else:
            log(f"stopped {proc.name} (pid {proc.pid})")
    if survivors:
        raise LabkitError(f"could not stop {survivors} of cluster {name!r}; state kept in {state.path()}")
    if not keep_dir:
        shutil.rmtree(d, ignore_errors=True)
    return True


def status(name: str = DEFAULT_NAME) -> ClusterStatus:
    """What runs: each component's pid and liveness, API readiness, Ready nodes."""
    check_name(name)
    state = ClusterState.load(name)
    if state is None:
        return ClusterStatus(name, exists=False)
    out = ClusterStatus(name, True, state.server, state.kubeconfig, state=state.status)
    for p in state.procs:
        out.components.append(ComponentStatus(p.name, p.pid, p.alive(), p.port, p.log))
    pki = Path(state.dir) / "pki"
    if (pki / "admin.crt").exists():
        code, _ = _get(f"{state.server}/readyz", _ssl_context(pki))
        out.ready = code == 200
    if out.ready:
        ctx = _ssl_context(pki)
        code, body = _get(f"{state.server}/api/v1/nodes", ctx)
        if code == 200:
            items = json.loads(body).get("items") or []
            out.nodes = len(items)
            for node in items:
                conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
                out.nodes_ready += conds.get("Ready") == "True"
    return out


def list_clusters() -> list[str]:
    root = clusters_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "state.json").exists())
