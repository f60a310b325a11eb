"""Parity: the simulator and the real API server given the same inputs.

Each case runs the same steps through the ``Cluster`` seam against a fresh
``SimCluster`` and against the real control plane (``KubeCluster``), and compares what
comes back: for refusals the Status reason, HTTP code and message text — the texts the
simulator claims to reproduce (``labkit.sim.admission``, ``labkit.sim.store``) — and
for defaulting the resulting field.  A case where the simulator is known to differ is
marked ``xfail(strict=True)`` with the difference in its reason, so fixing the
simulator turns it into an XPASS that asks for the marker to go.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable

import pytest

from labkit.core.errors import ApiError
from labkit.sim import SimCluster
from tests.kube.conftest import needs_real

pytestmark = needs_real


UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def outcome(fn: Callable[[], Any]) -> tuple:
    """``("ok", value)`` or ``("error", reason, code, message)`` with uids replaced by ``<uid>``."""
    try:
        return ("ok", fn())
    except ApiError as err:
        return ("error", err.reason, err.code, UID.sub("<uid>", err.message))


def sim_with(ns: str) -> SimCluster:
    sim = SimCluster(seed=0, controllers=False)
    sim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, field_manager="pytest")
    return sim


def both(kube, ns: str, case: Callable[[Any, str], Any]) -> tuple[tuple, tuple]:
    sim = sim_with(ns)
    return outcome(lambda: case(sim, ns)), outcome(lambda: case(kube, ns))


def scale(cluster, ns: str, name: str, replicas: int, manager: str) -> None:
    if hasattr(cluster, "kubectl_scale"):
        cluster.kubectl_scale("apps/v1", "Deployment", name, ns, replicas, field_manager=manager)
    else:
        cluster.scale("apps/v1", "Deployment", name, ns, replicas, field_manager=manager)


def deployment(ns: str, name: str = "web", replicas: Any = 2, app: str = "web", image: str = "nginx:1.27") -> dict:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": app}},
        "template": {"metadata": {"labels": {"app": app}},
                     "spec": {"containers": [{"name": "web", "image": image}]}},
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def statefulset(ns: str, storage: str = "1Gi") -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
            "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                               "spec": {"accessModes": ["ReadWriteOnce"],
                                                        "resources": {"requests": {"storage": storage}}}}]}}


def job(ns: str, image: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": ns},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                             "containers": [{"name": "migrate", "image": image,
                                                                             "command": ["migrate", "up"]}]}}}}


# ------------------------------------------------------------------ admission: immutable fields

def case_sts_volume_claim_templates(c, ns):
    c.apply(statefulset(ns, "1Gi"), field_manager="flux")
    c.apply(statefulset(ns, "2Gi"), field_manager="flux", force=True)


def case_job_template(c, ns):
    c.apply(job(ns, "migrate:1"), field_manager="flux")
    c.apply(job(ns, "migrate:2"), field_manager="flux", force=True)


def case_deployment_selector(c, ns):
    c.apply(deployment(ns), field_manager="flux")
    c.apply(deployment(ns, app="web2"), field_manager="flux", force=True)


def case_replicas_type_via_ssa(c, ns):
    c.apply(deployment(ns, replicas="three"), field_manager="flux")


def case_unknown_kind(c, ns):
    c.apply({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": ns}},
            field_manager="flux")


def case_namespace_not_found(c, ns):
    c.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns + "-nope"},
             "data": {"k": "v"}}, field_manager="flux")


def case_ssa_conflict_with_scale_manager(c, ns):
    c.apply(deployment(ns, replicas=2), field_manager="flux")
    scale(c, ns, "web", 5, "horizontal-pod-autoscaler")
    c.apply(deployment(ns, replicas=3), field_manager="flux")


def case_ssa_conflict_with_update_manager(c, ns):
    c.apply(deployment(ns, replicas=2), field_manager="flux")

    def edit(o):
        o["spec"]["replicas"] = 4
    c.kubectl_edit("apps/v1", "Deployment", "web", ns, edit, field_manager="kubectl-edit")
    c.apply(deployment(ns, replicas=3), field_manager="flux")


def case_replicas_type_via_update(c, ns):
    c.apply(deployment(ns), field_manager="flux")

    def edit(o):
        o["spec"]["replicas"] = "three"
    c.kubectl_edit("apps/v1", "Deployment", "web", ns, edit)


def case_configmap_immutable(c, ns):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen", "namespace": ns},
          "immutable": True, "data": {"k": "v1"}}
    c.apply(cm, field_manager="flux")
    c.apply({**cm, "data": {"k": "v2"}}, field_manager="flux", force=True)


def case_service_cluster_ip(c, ns):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": ns},
           "spec": {"clusterIP": "10.96.7.7", "ports": [{"port": 80}], "selector": {"app": "web"}}}
    c.apply(svc, field_manager="flux")
    c.apply({**svc, "spec": {**svc["spec"], "clusterIP": "10.96.7.8"}}, field_manager="flux", force=True)


def case_pvc_spec(c, ns):
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    c.apply(pvc, field_manager="flux")
    c.apply({**pvc, "spec": {**pvc["spec"], "accessModes": ["ReadWriteMany"]}}, field_manager="flux", force=True)


def case_stale_resource_version(c, ns):
    first = c.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns},
                     "data": {"k": "1"}}, field_manager="flux")
    c.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns},
             "data": {"k": "2"}}, field_manager="flux")
    c.update({"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "a", "namespace": ns, "resourceVersion": first["metadata"]["resourceVersion"]},
              "data": {"k": "3"}}, field_manager="kubectl-edit")


def case_update_not_found(c, ns):
    c.update({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "namespace": ns},
              "data": {"k": "1"}}, field_manager="kubectl-edit")


def case_undeclared_field_via_ssa(c, ns):
    d = deployment(ns)
    d["spec"]["replicaz"] = 2
    c.apply(d, field_manager="flux")


CASES = {
    "sts-volumeClaimTemplates-forbidden": case_sts_volume_claim_templates,
    "job-template-immutable": case_job_template,
    "deployment-selector-immutable": case_deployment_selector,
    "replicas-three-type-error-via-ssa": case_replicas_type_via_ssa,
    "unknown-kind": case_unknown_kind,
    "namespace-not-found": case_namespace_not_found,
    "ssa-conflict-scale-subresource-manager": case_ssa_conflict_with_scale_manager,
    "ssa-conflict-update-manager": case_ssa_conflict_with_update_manager,
    "replicas-three-type-error-via-update": case_replicas_type_via_update,
    "configmap-immutable": case_configmap_immutable,
    "service-clusterip-immutable": case_service_cluster_ip,
    "pvc-spec-immutable": case_pvc_spec,
    "stale-resource-version": case_stale_resource_version,
    "update-not-found": case_update_not_found,
    "undeclared-field-via-ssa": case_undeclared_field_via_ssa,
}
#: Observed against kube-apiserver v1.34.2 (see the report of issue 7), unchanged on the pinned 1.34 patch
#: (labkit/kube/versions.py); the simulator is the lead's to change.
KNOWN_DIFFERENCES: dict[str, str] = {
    "job-template-immutable": (
        "field.Invalid renders the value as JSON in 1.34 — real: 'spec.template: Invalid value: "
        "{\"labels\":{...},\"Spec\":{\"Volumes\":null,...every core.PodSpec field in Go names...}}: field is "
        "immutable'; the simulator prints Go %#v: 'core.PodTemplateSpec{ObjectMeta:v1.ObjectMeta{...}, ...}'"),
    "pvc-spec-immutable": (
        "the real message appends a unified diff of the internal spec after the Forbidden text: "
        "'...for bound claims\\n@@ -1,6 +1,6 @@\\n {\\n  \"AccessModes\": [\\n-  \"ReadWriteOnce\"\\n+  "
        "\"ReadWriteMany\"\\n  ],\\n  \"Selector\": null,\\n  \"Resources\": {\\n'; the simulator stops after 'claims'"),
    "undeclared-field-via-ssa": (
        "the simulator accepts an undeclared nested field (.spec.replicaz) through apply; the real server refuses: "
        "InternalError/500 'failed to create typed patch object (<ns>/web; apps/v1, Kind=Deployment): "
        ".spec.replicaz: field not declared in schema'"),
}


def _param(name: str):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[name])] if name in KNOWN_DIFFERENCES else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in CASES])
def test_refusal_parity(kube, ns, name, record_property):
    sim, real = both(kube, ns, CASES[name])
    record_property("sim", sim)
    record_property("real", real)
    print(f"\n[{name}]\n  sim : {sim}\n  real: {real}")
    assert real[0] == "error", f"the real API server accepted it: {real}"
    assert sim == real


# ------------------------------------------------------------------ defaulting through SSA ownership

def replicas_after_only_owner_drops_it(c, ns):
    c.apply(deployment(ns, replicas=3), field_manager="flux")
    live = c.apply(deployment(ns, replicas=None), field_manager="flux")
    return live["spec"]["replicas"]


def replicas_after_owner_drops_it_while_hpa_owns_it(c, ns):
    c.apply(deployment(ns, replicas=3), field_manager="flux")
    scale(c, ns, "web", 6, "horizontal-pod-autoscaler")
    c.apply(deployment(ns, replicas=3), field_manager="flux", force=True)  # flux takes it back
    scale(c, ns, "web", 6, "horizontal-pod-autoscaler")  # hpa co-owns it again
    live = c.apply(deployment(ns, replicas=None), field_manager="flux")
    return live["spec"]["replicas"]


def defaults_on_create(c, ns):
    live = c.apply(deployment(ns, replicas=None), field_manager="flux")
    spec = live["spec"]
    return {"replicas": spec.get("replicas"), "revisionHistoryLimit": spec.get("revisionHistoryLimit"),
            "progressDeadlineSeconds": spec.get("progressDeadlineSeconds"),
            "strategy": spec.get("strategy"),
            "imagePullPolicy": spec["template"]["spec"]["containers"][0].get("imagePullPolicy"),
            "restartPolicy": spec["template"]["spec"].get("restartPolicy"),
            "securityContext": spec["template"]["spec"].get("securityContext"),
            "resources": spec["template"]["spec"]["containers"][0].get("resources")}


def job_defaults_on_create(c, ns):
    spec = c.apply(job(ns, "migrate:1"), field_manager="flux")["spec"]
    return {k: spec.get(k) for k in ("backoffLimit", "completions", "parallelism", "completionMode", "suspend",
                                     "podReplacementPolicy", "manualSelector")}


def generation_when_deletion_starts(c, ns):
    """A Deployment held by a finalizer: deletion starts (deletionTimestamp) and bumps metadata.generation."""
    obj = deployment(ns, name="held")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    before = c.apply(obj, field_manager="flux")["metadata"]["generation"]
    c.delete("apps/v1", "Deployment", "held", ns)
    during = c.get("apps/v1", "Deployment", "held", ns)
    # let it go; the Deployment controller may write in between (a 409), so read-modify-write with retry
    from labkit.core.cluster import edit

    edit(c, "apps/v1", "Deployment", "held", ns, lambda o: o["metadata"].update(finalizers=[]), field_manager="operator")
    return {"before": before, "during": during["metadata"]["generation"],
            "deleting": bool(during["metadata"].get("deletionTimestamp"))}


VALUE_CASES = {
    "generation-bumped-when-deletion-starts": generation_when_deletion_starts,
    "replicas-default-after-only-owner-drops": replicas_after_only_owner_drops_it,
    "replicas-kept-when-hpa-co-owns": replicas_after_owner_drops_it_while_hpa_owns_it,
    "deployment-defaults-on-create": defaults_on_create,
    "job-defaults-on-create": job_defaults_on_create,
}


@pytest.mark.parametrize("name", [_param(n) for n in VALUE_CASES])
def test_value_parity(kube, ns, name):
    sim, real = both(kube, ns, VALUE_CASES[name])
    print(f"\n[{name}]\n  sim : {sim}\n  real: {real}")
    assert real[0] == "ok", real
    assert sim == real


def test_replicas_fall_back_to_one_on_the_real_server(kube, ns):
    """The anchor itself, not only agreement: the real server defaults replicas to 1."""
    assert replicas_after_only_owner_drops_it(kube, ns) == 1


# ------------------------------------------------------------------ the engine on both backends

def test_engine_plan_and_apply_agree(kube, ns):
    """apply_staged gives the same change set on both, and a second run is all 'unchanged' on both."""
    import simpy

    from labkit.engine.apply import ApplyOptions, EngineTimings, apply_staged

    def objects(space: str) -> list[dict]:
        return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": space}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": space},
                 "data": {"greeting": "hi"}},
                deployment(space)]

    def run(cluster) -> list[str]:
        env = simpy.Environment()
        out = []
        for _ in range(2):
            proc = env.process(apply_staged(env, cluster, copy.deepcopy(objects(space)),
                                            ApplyOptions(field_manager="kustomize-controller"),
                                            EngineTimings(api_call=0.0, poll_interval=0.5)))
            env.run(until=proc)
            out.append(proc.value.changeset.to_string())
        return out

    space = ns + "-engine"
    sim = SimCluster(seed=0, controllers=False)
    sim_out, real_out = run(sim), run(kube)
    try:
        assert real_out[0] == (f"Namespace/{space} created\nConfigMap/{space}/cfg created\n"
                               f"Deployment/{space}/web created")
        assert real_out[1] == (f"Namespace/{space} unchanged\nConfigMap/{space}/cfg unchanged\n"
                               f"Deployment/{space}/web unchanged")
        assert sim_out == real_out
    finally:
        kube.delete("v1", "Namespace", space)
