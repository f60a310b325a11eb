"""Defaulting: what the API server fills in when a field is omitted.

Defaults matter to GitOps in one sharp way: under server-side apply a field that
its only owner stops sending is *removed*, and the type's default then takes its
place.  Drop ``replicas`` from a Deployment that ``kustomize-controller`` alone
owned and the Deployment goes to ``replicas: 1`` until the HPA acts — the subtlety
behind the "drop the field" fix in the hpa-conflict scenario.  So defaulting runs
after every merge, never records ownership, and mirrors the upstream
``SetDefaults_*`` functions for the fields the simulator's controllers read.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, Callable


def _containers(pod_spec: dict[str, Any]) -> None:
    pod_spec.setdefault("restartPolicy", "Always")
    pod_spec.setdefault("terminationGracePeriodSeconds", 30)
    pod_spec.setdefault("dnsPolicy", "ClusterFirst")
    pod_spec.setdefault("schedulerName", "default-scheduler")
    # SetDefaults_PodSpec allocates an empty PodSecurityContext; a container's ``resources`` is a
    # non-pointer struct, which Go's JSON always writes: a real server returns both as ``{}``
    pod_spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for c in pod_spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            c.setdefault("resources", {})
            image = c.get("image") or ""
            tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
            latest = image.endswith(":latest") or not tagged
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")


def _template(spec: dict[str, Any]) -> None:
    tpl = spec.get("template")
    if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
        _containers(tpl["spec"])


def deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec)


def replicaset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template(spec)


def statefulset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    us = spec.setdefault("updateStrategy", {})
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for pvc in spec.get("volumeClaimTemplates") or []:
        if isinstance(pvc, dict):
            pvc.setdefault("apiVersion", "v1")
            pvc.setdefault("kind", "PersistentVolumeClaim")
            pvc.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    _template(spec)


def job(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    # JobPodReplacementPolicy (GA): recreate pods only once they are fully terminated, unless a
    # podFailurePolicy asks for Failed
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    if "selector" not in spec:  # the API server generates the selector (labkit.sim.store): not a manual one
        spec.setdefault("manualSelector", False)
    tpl = spec.get("template")
    if isinstance(tpl, dict):
        tpl.setdefault("spec", {}).setdefault("restartPolicy", "Never")
    _template(spec)


def service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])


def hpa(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("minReplicas", 1)


def namespace(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def pvc(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


#: what the DefaultTolerationSeconds admission plugin adds to every pod (300 s, its flag's default)
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String's


def _token_volume_name(obj: dict[str, Any]) -> str:
    """``kube-api-access-<5 chars>``: random upstream, here a hash of the pod's name (seeded runs stay equal)."""
    md = obj.get("metadata") or {}
    digest = hashlib.sha256(f"{md.get('namespace', '')}/{md.get('name') or md.get('generateName', '')}".encode()).digest()
    return "kube-api-access-" + "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:5])


def _mount_service_account_token(obj: dict[str, Any], spec: dict[str, Any]) -> None:
    """The ServiceAccount admission plugin's ``mountServiceAccountToken`` (a projected token volume)."""
    if spec.get("automountServiceAccountToken") is False:
        return
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    name = next((v.get("name") for v in volumes if isinstance(v, dict)
                 and str(v.get("name", "")).startswith("kube-api-access-")), None)
    has_volume = name is not None
    name = name or _token_volume_name(obj)
    needs = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
            if not any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                c["volumeMounts"] = mounts + [{"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
                needs = True
    if needs and not has_volume:
        spec["volumes"] = volumes + [{"name": name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}}]


def pod(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    _containers(spec)
    # what a real API server adds to a Pod (not to pod templates), checked against kube-apiserver
    # v1.34 by tests/kube/test_controller_parity.py: the pod strategy's enableServiceLinks, the
    # ServiceAccount admission plugin's service account and projected token volume, the Priority
    # plugin's priority / preemptionPolicy and DefaultTolerationSeconds' tolerations
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    _mount_service_account_token(obj, spec)
    if "priorityClassName" not in spec:
        spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if tolerations is None or isinstance(tolerations, list):
        tolerations = list(tolerations or [])
        for default in DEFAULT_TOLERATIONS:
            if not any(isinstance(t, dict) and t.get("key") == default["key"] and t.get("effect") in (None, "", "NoExecute")
                       for t in tolerations):
                tolerations.append(dict(default))
        spec["tolerations"] = tolerations
    obj.setdefault("status", {}).setdefault("phase", "Pending")


DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("apps", "Deployment"): deployment,
    ("apps", "ReplicaSet"): replicaset,
    ("apps", "StatefulSet"): statefulset,
    ("batch", "Job"): job,
    ("", "Service"): service,
    ("autoscaling", "HorizontalPodAutoscaler"): hpa,
    ("", "Namespace"): namespace,
    ("", "Secret"): secret,
    ("", "PersistentVolumeClaim"): pvc,
    ("", "Pod"): pod,
}


def apply_defaults(group: str, kind: str, obj: dict[str, Any]) -> None:
    fn = DEFAULTERS.get((group, kind))
    if fn is not None:
        fn(obj)
