"""The local control plane's machinery that needs no Kubernetes binaries: messages, PKI, process cleanup."""
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from labkit.app import cli
from labkit.core.errors import LabkitError
from labkit.kube import controlplane as cp


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------ binaries missing

def test_create_without_binaries_says_how_to_build_exit_2(cache, capsys):
    assert cli.main(["cluster", "create"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error: real control plane not built: missing etcd, kube-apiserver, "
                          "kube-controller-manager, kube-scheduler, kwok")
    assert "run `labkit cluster build`" in err and err.count("\n") == 1
    assert not (cache / "clusters").exists()  # nothing was started or written


def test_binaries_missing_names_only_the_missing_ones(cache):
    from labkit.kube import build as kbuild

    for name in ("etcd", "kube-apiserver"):
        p = kbuild.binary(name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\n")
    with pytest.raises(cp.BinariesMissing) as e:
        cp.binaries()
    assert "missing kube-controller-manager, kube-scheduler, kwok" in str(e.value)
    assert not cp.available()


def test_status_and_delete_of_unknown_cluster(cache, capsys):
    assert cli.main(["cluster", "status", "--name", "nope"]) == 1
    assert "no cluster named 'nope'" in capsys.readouterr().out
    assert cli.main(["cluster", "delete", "--name", "nope"]) == 0
    assert "no cluster named 'nope'" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a" * 41, ""])
def test_invalid_names_are_rejected(cache, capsys, name):
    assert cli.main(["cluster", "status", f"--name={name}"]) == 2
    assert "invalid cluster name" in capsys.readouterr().err


def test_create_rejects_zero_nodes(cache, capsys, monkeypatch):
    monkeypatch.setattr(cp, "binaries", lambda: {})
    assert cli.main(["cluster", "create", "--nodes", "0"]) == 2
    assert "--nodes: at least one node is needed" in capsys.readouterr().err


# ------------------------------------------------------------------ certificates and kubeconfig

def test_pki_chain_identities_and_sans(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    files = cp.write_pki(tmp_path / "pki")
    load = lambda stem: x509.load_pem_x509_certificate(files[stem].read_bytes())  # noqa: E731
    ca = load("ca.crt")
    server = load("apiserver.crt")
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.96.0.1"}
    assert "kubernetes.default.svc.cluster.local" in san.get_values_for_type(x509.DNSName)
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    admin = load("admin.crt")
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    kcm = load("controller-manager.crt")
    assert kcm.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:kube-controller-manager"
    assert not kcm.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    load("front-proxy-client.crt").verify_directly_issued_by(load("front-proxy-ca.crt"))
    assert oct(files["sa.key"].stat().st_mode & 0o777) == "0o600"
    assert b"PUBLIC KEY" in files["sa.pub"].read_bytes()


def test_kubeconfig_loads_in_the_official_client(tmp_path):
    from kubernetes import config as kconfig

    pki = tmp_path / "pki"
    cp.write_pki(pki)
    path = cp.write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443", pki, "admin", context="labkit-x")
    cfg = yaml.safe_load(path.read_text())
    assert cfg["current-context"] == "labkit-x"
    client = kconfig.new_client_from_config(config_file=str(path), context="labkit-x")
    assert client.configuration.host == "https://127.0.0.1:6443"
    client.close()


def test_free_port_is_loopback_and_bindable():
    import socket

    port = cp.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


# ------------------------------------------------------------------ processes: start, record, stop

STUBBORN = "trap '' TERM; sleep 300 & sleep 300 & wait"  # ignores SIGTERM, has children in its group
POLITE = "exec sleep 300"


def _state(cache_dir: Path, name: str) -> cp.ClusterState:
    d = cp.cluster_dir(name)
    d.mkdir(parents=True)
    st = cp.ClusterState(name=name, dir=str(d), kubeconfig=str(d / "kubeconfig"), server="https://127.0.0.1:1")
    st.save()
    return st


def test_delete_stops_every_recorded_group_and_removes_the_folder(cache):
    st = _state(cache, "procs")
    starter = cp._Starter(st, lambda m: None)
    polite = starter.start("polite", ["/bin/sh", "-c", POLITE], 1)
    stubborn = starter.start("stubborn", ["/bin/sh", "-c", STUBBORN], 2)
    time.sleep(0.3)
    assert len(cp._group_members(stubborn.pgid)) == 3  # the shell and its two sleeps
    loaded = cp.ClusterState.load("procs")
    assert [(p.name, p.pid, p.pgid) for p in loaded.procs] == [("polite", polite.pid, polite.pid),
                                                                ("stubborn", stubborn.pid, stubborn.pid)]
    status = cp.status("procs")
    assert [c.running for c in status.components] == [True, True] and not status.ready
    t0 = time.monotonic()
    # a short grace period so the SIGKILL path is exercised quickly
    orig = cp.stop_process
    try:
        cp.stop_process = lambda p, grace=10.0: orig(p, grace=0.5)
        assert cp.delete("procs") is True
    finally:
        cp.stop_process = orig
    assert time.monotonic() - t0 < 10
    for p in (polite, stubborn):
        assert not p.alive()
        assert cp._group_members(p.pgid) == []
        assert cp._proc_stat(p.pid) is None  # reaped: not even a zombie is left
    assert not cp.cluster_dir("procs").exists()


def test_stop_never_signals_a_recycled_pid(cache):
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        fake = cp.Proc("ghost", sleeper.pid, sleeper.pid, start=1, argv=["x"], log="")  # wrong start time
        assert not fake.alive()
        cp._signal_group(fake, signal.SIGTERM)
        time.sleep(0.1)
        assert sleeper.poll() is None  # untouched
    finally:
        sleeper.kill()
        sleeper.wait()


def test_start_failure_reports_the_log_tail(cache):
    st = _state(cache, "fails")
    starter = cp._Starter(st, lambda m: None)
    proc = starter.start("broken", ["/bin/sh", "-c", "echo 'flag provided but not defined: -x'; exit 3"])
    with pytest.raises(LabkitError) as e:
        starter.wait(proc, "health", lambda: False, timeout=5)
    assert "broken exited during start-up" in str(e.value)
    assert "flag provided but not defined: -x" in str(e.value)
    cp.delete("fails")


def test_create_refuses_when_same_name_is_running(cache, monkeypatch):
    st = _state(cache, "busy")
    starter = cp._Starter(st, lambda m: None)
    starter.start("etcd", ["/bin/sh", "-c", POLITE])
    monkeypatch.setattr(cp, "binaries", lambda: {})
    try:
        with pytest.raises(LabkitError) as e:
            cp.create("busy")
        assert "already exists" in str(e.value) and "labkit cluster delete --name busy" in str(e.value)
    finally:
        cp.delete("busy")


# ------------------------------------------------------------------ metrics-server wiring

def test_metrics_server_is_optional_and_asked_for_explicitly_says_how_to_build(cache, monkeypatch):
    from labkit.kube import build as kbuild

    monkeypatch.setattr(cp, "binaries", lambda: {})
    assert kbuild.binary("metrics-server") == cache / "metrics-server" / kbuild.METRICS_SERVER_VERSION / "bin" / "metrics-server"
    assert not cp.metrics_available()
    with pytest.raises(cp.BinariesMissing) as e:
        cp.create("m", metrics=True)
    assert "metrics-server not built" in str(e.value)
    assert "labkit cluster build --component metrics-server" in str(e.value)
    assert not cp.cluster_dir("m").exists()  # refused before anything was written or started
    assert "metrics-server" in kbuild.ALL_COMPONENTS and "metrics-server" not in kbuild.missing(kbuild.CONTROL_PLANE)


def test_metrics_server_serving_cert_names_what_the_aggregator_checks(tmp_path):
    from cryptography import x509

    files = cp.write_pki(tmp_path / "pki")
    cert = x509.load_pem_x509_certificate(files["metrics-server.crt"].read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files["ca.crt"].read_bytes()))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # the aggregator dials the ExternalName (localhost) and verifies <service>.<namespace>.svc
    assert {"localhost", "metrics-server.kube-system.svc"} <= set(san.get_values_for_type(x509.DNSName))
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert oct(files["metrics-server.key"].stat().st_mode & 0o777) == "0o600"


def test_apiservice_points_at_localhost_and_trusts_the_cluster_ca(tmp_path):
    import base64

    service, apiservice = cp.metrics_apiservice(4443, b"CA PEM")
    assert service["spec"] == {"type": "ExternalName", "externalName": "localhost"}
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == ("metrics-server", "kube-system")
    spec = apiservice["spec"]
    assert apiservice["metadata"]["name"] == "v1beta1.metrics.k8s.io"
    assert (spec["group"], spec["version"]) == ("metrics.k8s.io", "v1beta1")
    assert spec["service"] == {"name": "metrics-server", "namespace": "kube-system", "port": 4443}
    assert base64.b64decode(spec["caBundle"]) == b"CA PEM" and "insecureSkipTLSVerify" not in spec


def test_metrics_server_rbac_grants_what_it_reads():
    objs = {(o["kind"], o["metadata"]["name"]): o for o in cp.metrics_server_rbac()}
    assert ("ServiceAccount", "metrics-server") in objs
    role = objs[("ClusterRole", "system:metrics-server")]
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert {("nodes/metrics", "get"), ("pods", "list"), ("nodes", "watch")} <= granted
    reader = objs[("RoleBinding", "metrics-server-auth-reader")]
    assert reader["metadata"]["namespace"] == "kube-system"
    assert reader["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    delegator = objs[("ClusterRoleBinding", "metrics-server:system:auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    for binding in (reader, delegator, objs[("ClusterRoleBinding", "system:metrics-server")]):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "metrics-server", "namespace": "kube-system"}]
