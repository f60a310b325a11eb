"""The engine, Flux and KWOK's fake kubelets against the real control plane (loopback, bounded in time)."""
from __future__ import annotations

import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from labkit.core import clock
from labkit.engine.apply import ApplyOptions, EngineTimings, apply_staged, is_immutable_error
from labkit.engine.plan import DryRunFailed
from labkit.engine.wait import wait_for_set
from labkit.core.errors import ApiError
from labkit.flux.policy import FIELD_MANAGER, FLUX_POLICY
from labkit.core.health import kstatus
from tests.kube.conftest import MISSING_IMAGE, needs_real

pytestmark = needs_real


def deployment(ns: str, name: str = "web", replicas: int = 2, image: str = "nginx:1.27", app: str = "web",
               annotations: dict | None = None) -> dict:
    tpl_md: dict = {"labels": {"app": app}}
    if annotations:
        tpl_md["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": tpl_md,
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}}}


def configmap(ns: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns}, "data": data}


def writes_of(obj: dict, manager: str = "kustomize-controller") -> tuple:
    """What only a write by ``manager`` changes: the spec's generation and the manager's managedFields entry.

    (resourceVersion also moves when the Deployment controller writes status, so it cannot tell.)"""
    entry = [m for m in obj["metadata"].get("managedFields") or [] if m["manager"] == manager]
    return obj["metadata"]["generation"], entry


def run_staged(env, cluster, objects, **opts):
    opts = {"field_manager": FIELD_MANAGER, "policy": FLUX_POLICY, **opts}  # as kustomize-controller applies
    proc = env.process(apply_staged(env, cluster, objects, ApplyOptions(**opts), EngineTimings.realtime()))
    env.run(until=proc)
    return proc.value


def wait_until(predicate, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def test_apply_staged_then_health_wait_on_real_pods(kube, ns):
    env = clock.realtime()
    objs = [configmap(ns, greeting="hi"), deployment(ns)]
    res = run_staged(env, kube, objs)
    assert res.changeset.to_string() == f"ConfigMap/{ns}/cfg created\nDeployment/{ns}/web created"
    # the real Deployment/ReplicaSet controllers create pods, kube-scheduler binds them, KWOK makes them Ready
    t0 = env.now
    proc = env.process(wait_for_set(env, kube, objs, timeout=60, interval=0.5))
    env.run(until=proc)
    assert proc.value.ok, proc.value.message
    assert env.now - t0 < 60
    pods = kube.list("v1", "Pod", ns, {"app": "web"})
    assert len(pods) == 2 and all(p["spec"].get("nodeName", "").startswith("kwok-node-") for p in pods)
    assert all(p["status"]["phase"] == "Running" for p in pods)
    # no change in git: a second reconcile writes nothing
    before = writes_of(kube.get("apps/v1", "Deployment", "web", ns))
    cm_rv = kube.get("v1", "ConfigMap", "cfg", ns)["metadata"]["resourceVersion"]
    again = run_staged(env, kube, [configmap(ns, greeting="hi"), deployment(ns)])
    assert again.changeset.counts() == {"unchanged": 2}
    assert writes_of(kube.get("apps/v1", "Deployment", "web", ns)) == before
    assert kube.get("v1", "ConfigMap", "cfg", ns)["metadata"]["resourceVersion"] == cm_rv
    # a change in git is 'configured'
    changed = run_staged(env, kube, [configmap(ns, greeting="hello"), deployment(ns)])
    assert changed.changeset.to_map() == {f"ConfigMap/{ns}/cfg": "configured", f"Deployment/{ns}/web": "unchanged"}


def test_ssa_conflict_message_from_the_real_api_server(kube, ns):
    kube.apply(deployment(ns, replicas=2), field_manager="kustomize-controller")

    def edit(o):
        o["spec"]["replicas"] = 7
    kube.kubectl_edit("apps/v1", "Deployment", "web", ns, edit)
    with pytest.raises(ApiError) as e:
        kube.apply(deployment(ns, replicas=3), field_manager="kustomize-controller")
    assert (e.value.reason, e.value.code) == ("Conflict", 409)
    assert e.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
                               '.spec.replicas')
    assert e.value.details["causes"][0]["field"] == ".spec.replicas"
    # forcing takes ownership (what Flux always does)
    live = kube.apply(deployment(ns, replicas=3), field_manager="kustomize-controller", force=True)
    assert live["spec"]["replicas"] == 3


def test_immutable_selector_fails_the_dry_run_and_applies_nothing(kube, ns):
    env = clock.realtime()
    run_staged(env, kube, [deployment(ns)])
    before = writes_of(kube.get("apps/v1", "Deployment", "web", ns))
    with pytest.raises(DryRunFailed) as e:
        run_staged(env, kube, [configmap(ns, a="1"), deployment(ns, app="web2")])
    (obj, err), = e.value.failures
    assert is_immutable_error(err) and err.reason == "Invalid" and err.code == 422
    assert err.message.startswith('Deployment.apps "web" is invalid: ')
    assert "spec.selector: Invalid value: " in err.message and "field is immutable" in err.message
    assert str(e.value).startswith(f"Deployment/{ns}/web dry-run failed (Invalid): ")
    assert kube.get("v1", "ConfigMap", "cfg", ns) is None  # a failed dry-run applies nothing
    assert writes_of(kube.get("apps/v1", "Deployment", "web", ns)) == before


def test_force_recreates_an_immutable_job(kube, ns):
    env = clock.realtime()

    def job(image):
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": ns,
                                                                     "annotations": {"kustomize.toolkit.fluxcd.io/force": "Enabled"}},
                "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                                 "containers": [{"name": "m", "image": image}]}}}}
    run_staged(env, kube, [job("migrate:1")])
    uid = kube.get("batch/v1", "Job", "migrate", ns)["metadata"]["uid"]
    res = run_staged(env, kube, [job("migrate:2")])
    assert res.recreated == [f"Job/{ns}/migrate"]
    live = kube.get("batch/v1", "Job", "migrate", ns)
    assert live["metadata"]["uid"] != uid
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:2"


def test_job_pods_complete_under_kwok(kube, ns):
    kube.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": ns},
                "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                                 "containers": [{"name": "m", "image": "busybox"}]}}}},
               field_manager="pytest")
    done = wait_until(lambda: kstatus(kube.get("batch/v1", "Job", "once", ns)).status == "Current", 60)
    assert done
    conds = {c["type"]: c["status"] for c in kube.get("batch/v1", "Job", "once", ns)["status"]["conditions"]}
    assert conds.get("Complete") == "True"


def test_missing_image_goes_errimagepull_then_imagepullbackoff(kube, ns):
    kube.apply(deployment(ns, name="bad", replicas=1, image=MISSING_IMAGE, app="bad"), field_manager="pytest")

    def waiting_reason():
        pods = kube.list("v1", "Pod", ns, {"app": "bad"})
        if not pods:
            return None
        cs = (pods[0].get("status") or {}).get("containerStatuses") or []
        return cs and (cs[0].get("state") or {}).get("waiting")

    first = wait_until(waiting_reason, 30)
    assert first["reason"] == "ErrImagePull"
    assert first["message"] == ('rpc error: code = NotFound desc = failed to pull and unpack image '
                                '"registry.example/web:v9": failed to resolve reference "registry.example/web:v9": '
                                'registry.example/web:v9: not found')
    backoff = wait_until(lambda: (w := waiting_reason()) and w["reason"] == "ImagePullBackOff" and w, 30)
    assert backoff["message"].startswith('Back-off pulling image "registry.example/web:v9": ErrImagePull: rpc error')
    assert kstatus(kube.get("apps/v1", "Deployment", "bad", ns)).status == "InProgress"
    # a tag the lab marks as missing by pattern, with a docker.io short name
    kube.apply(deployment(ns, name="bad2", replicas=1, image="web:missing-2024", app="bad2"), field_manager="pytest")
    pod = wait_until(lambda: [p for p in kube.list("v1", "Pod", ns, {"app": "bad2"})
                              if (p.get("status") or {}).get("containerStatuses")], 30)[0]
    assert "docker.io/library/web:missing-2024: not found" in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]


def test_kwok_emulates_pod_cpu_usage_from_annotations(kube, ns, real_cluster):
    kube.apply(deployment(ns, name="busy", replicas=1, app="busy",
                          annotations={"kwok.x-k8s.io/usage-cpu": "250m"}), field_manager="pytest")
    pod = wait_until(lambda: [p for p in kube.list("v1", "Pod", ns, {"app": "busy"})
                              if (p.get("status") or {}).get("phase") == "Running"], 30)[0]
    node, name = pod["spec"]["nodeName"], pod["metadata"]["name"]
    url = f"http://127.0.0.1:{real_cluster.ports['kwok']}/metrics/nodes/{node}/metrics/resource"

    def sample():
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith("pod_cpu_usage_seconds_total") and f'pod="{name}"' in line:
                return float(line.rsplit(" ", 1)[-1]) if " " in line else None
        return None

    # the same port also speaks HTTPS with a certificate from the cluster CA (how metrics-server would scrape it)
    from labkit.kube.controlplane import _ssl_context

    ctx = _ssl_context(Path(real_cluster.dir) / "pki", client=None)
    with urllib.request.urlopen(f"https://127.0.0.1:{real_cluster.ports['kwok']}/healthz", context=ctx, timeout=5) as r:  # noqa: S310
        assert r.status == 200
    first = wait_until(sample, 20)
    time.sleep(2.0)
    second = sample()
    rate = (second - first) / 2.0
    assert 0.15 < rate < 0.35, (first, second)  # ~0.25 cores: KWOK integrates the annotated usage


def test_hpa_scales_a_deployment_up_on_kwok_usage(kube, ns, real_cluster):
    """The metrics path: KWOK's annotated usage -> metrics-server (metrics.k8s.io) -> the real HPA controller.

    One pod requesting 100m uses 175m (``kwok.x-k8s.io/usage-cpu``): 175 % against a 50 % target.  KWOK
    integrates usage over wall-clock scrapes, so the measured value wobbles by a percent or two; a ratio
    of 3.5 keeps that wobble away from ceil()'s integer steps."""
    if not real_cluster.metrics:
        pytest.skip("metrics-server not built: run `labkit cluster build`")
    svc = kube.get("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io")
    assert {c["type"]: c["status"] for c in svc["status"]["conditions"]}["Available"] == "True"
    kube.apply(deployment(ns, name="scaled", replicas=1, app="scaled",
                          annotations={"kwok.x-k8s.io/usage-cpu": "175m"}), field_manager="pytest")
    kube.apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "scaled", "namespace": ns},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                         "minReplicas": 1, "maxReplicas": 6,
                         "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                       "target": {"type": "Utilization",
                                                                                  "averageUtilization": 50}}}]}},
               field_manager="pytest")
    t0 = time.monotonic()
    replicas = wait_until(lambda: (r := kube.get("apps/v1", "Deployment", "scaled", ns)["spec"]["replicas"]) > 1 and r,
                          90, interval=0.5)
    reaction = time.monotonic() - t0
    assert replicas == 4  # ceil(1 × 175 / 50)
    hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "scaled", ns)
    conds = {c["type"]: (c["status"], c["reason"]) for c in hpa["status"]["conditions"]}
    assert conds["ScalingActive"] == ("True", "ValidMetricFound")
    (metric,) = hpa["status"]["currentMetrics"]
    assert abs(metric["resource"]["current"]["averageUtilization"] - 175) <= 5
    events = [(e["reason"], e["message"]) for e in kube.list("v1", "Event", ns)
              if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"]
    assert ("SuccessfulRescale", "New size: 4; reason: cpu resource utilization (percentage of request) above target") \
        in events
    # what the HPA read: metrics.k8s.io, served by metrics-server from KWOK's cumulative counters
    first = min(kube.list("v1", "Pod", ns, {"app": "scaled"}), key=lambda p: p["metadata"]["creationTimestamp"])
    pm = kube.get("metrics.k8s.io/v1beta1", "PodMetrics", first["metadata"]["name"], ns)
    (container,) = pm["containers"]
    assert 160e6 < int(container["usage"]["cpu"].rstrip("n")) < 190e6, container
    assert float(pm["window"].rstrip("s")) >= 9.0  # metric-resolution 10 s
    nm = kube.get("metrics.k8s.io/v1beta1", "NodeMetrics", first["spec"]["nodeName"])
    assert int(nm["usage"]["cpu"].rstrip("n")) >= 160e6  # a KWOK node uses what its pods use
    print(f"HPA reaction time on KWOK: {reaction:.1f} s to the first rescale")


def test_watch_delivers_events_on_the_clock_thread(real_cluster, ns):
    import threading

    from labkit.kube.client import KubeCluster

    env = clock.realtime()
    kc = KubeCluster(real_cluster.kubeconfig, real_cluster.context, env=env)
    seen: list[tuple[str, str, str]] = []
    main = threading.get_ident()
    try:
        kc.watch("v1", "ConfigMap", lambda t, o: seen.append((t, o["metadata"]["name"], threading.get_ident() == main)))
        kc.apply(configmap(ns, a="1"), field_manager="pytest")
        kc.apply(configmap(ns, a="2"), field_manager="pytest")
        kc.delete("v1", "ConfigMap", "cfg", ns)
        env.run(until=env.now + 3)
    finally:
        kc.close()
    mine = [(t, on_main) for t, name, on_main in seen if name == "cfg"]
    assert [t for t, _ in mine] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(on_main for _, on_main in mine)


@pytest.mark.parametrize("mode", ["poll", "watch"])
def test_flux_reconciles_a_real_cluster(real_cluster, ns, tmp_path, mode):
    """FluxSystem (source + kustomize controllers) on wall time, polling the real API server or watching it."""
    from labkit.flux.system import FluxSystem, FluxTimings
    from labkit.gitops.repo import ManifestRepo
    from labkit.kube.client import KubeCluster

    url = "https://github.com/labkit/fleet"
    seed = tmp_path / "seed"
    (seed / "apps").mkdir(parents=True)
    (seed / "apps" / "cm.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: greeting
          namespace: {ns}
        data:
          text: hello
        """))
    (seed / "apps" / "kustomization.yaml").write_text("resources:\n- cm.yaml\n")
    env = clock.realtime()
    kc = KubeCluster(real_cluster.kubeconfig, real_cluster.context, env=env if mode == "watch" else None)
    assert hasattr(kc, "watch") == (mode == "watch")
    try:
        repo = ManifestRepo(tmp_path / "repo", url=url)
        repo.seed(seed, when=0)
        flux = FluxSystem(kc, env, seed=1, timings=FluxTimings.fixed(git_fetch=0.2, build=0.1),
                          engine_timings=EngineTimings.realtime(), workdir=tmp_path / "flux", poll_interval=1.0)
        # FluxSystem.install() applies the CRDs and starts polling at once; on a real server a CRD is
        # served a moment after it is created, so apply them first and wait (see the report)
        from labkit.flux.crds import flux_crds

        for crd in flux_crds():
            kc.apply(crd, field_manager="flux")
        kc.wait_for_kind("source.toolkit.fluxcd.io/v1", "GitRepository")
        kc.wait_for_kind("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
        flux.install()
        flux.add_remote(url, repo)
        name = f"fleet-{mode}-{ns}"
        flux.apply({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                    "metadata": {"name": name, "namespace": "flux-system"},
                    "spec": {"interval": "1m", "url": url, "ref": {"branch": "main"}}})
        flux.apply({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                    "metadata": {"name": name, "namespace": "flux-system"},
                    "spec": {"interval": "10m", "sourceRef": {"kind": "GitRepository", "name": name},
                             "path": "./apps", "prune": True}})
        deadline = env.now + 30
        while env.now < deadline and kc.get("v1", "ConfigMap", "greeting", ns) is None:
            env.run(until=env.now + 1)
        cm = kc.get("v1", "ConfigMap", "greeting", ns)
        assert cm is not None and cm["data"] == {"text": "hello"}
        assert cm["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == name
        managers = {m["manager"] for m in cm["metadata"]["managedFields"]}
        assert "kustomize-controller" in managers
        env.run(until=env.now + 2)
        ks = kc.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, "flux-system")
        ready = next(c for c in ks["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True" and ready["reason"] == "ReconciliationSucceeded"
        for kind, api in (("Kustomization", "kustomize.toolkit.fluxcd.io/v1"), ("GitRepository", "source.toolkit.fluxcd.io/v1")):
            kc.delete(api, kind, name, "flux-system")
    finally:
        kc.close()


def test_sealed_secrets_controller_on_a_real_api_server(real_cluster, ns):
    """The sealed-secrets controller through the seam alone: keys via generateName, unseal, status, watch."""
    import base64

    from labkit.core.events import EventLog
    from labkit.kube.client import KubeCluster
    from labkit.secrets import sealed

    env = clock.realtime()
    kc = KubeCluster(real_cluster.kubeconfig, real_cluster.context, env=env)
    try:
        kc.apply(sealed.sealed_secret_crd(), field_manager="pytest", force=True)
        kc.wait_for_kind(sealed.API_VERSION, sealed.KIND)
        ctl = sealed.install_sealed_secrets(kc, key_bits=2048, key_renew_period=0, env=env,
                                            log=EventLog(lambda: env.now))
        assert ctl.most_recent is not None and ctl.most_recent.name.startswith(sealed.KEY_PREFIX)
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
                  "stringData": {"password": "hunter2"}}
        kc.apply(sealed.seal(secret, ctl.fetch_cert()), field_manager="kubectl")
        env.run(until=env.now + 3)
        live = kc.get("v1", "Secret", "db", ns)
        assert live is not None and base64.b64decode(live["data"]["password"]) == b"hunter2"
        assert ctl.synced(ns, "db")["status"] == "True"
    finally:
        kc.close()
