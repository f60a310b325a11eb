"""Admission and validation: what the real API server refuses, and how it says so.

GitOps users meet the API server mostly through its refusals: the StatefulSet
whose ``volumeClaimTemplates`` changed, the Job re-applied with a new template,
the selector edited in a refactor.  Flux and Argo CD surface these messages
verbatim in their status, so the simulator reproduces the reason, the HTTP code
and the *message form* of ``k8s.io/kubernetes/pkg/apis/*/validation``:

    StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec
    for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy',
    'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and
    'minReadySeconds' are forbidden

Values inside messages are rendered as the 1.34 API server renders them: compact
JSON (``{"matchLabels":{"app":"web"}}``, ``["10.96.0.20"]``) — checked against a real
kube-apiserver v1.34.2 by ``tests/kube/test_parity.py``.
``validate(info, new, old)`` runs on create (``old`` is None) and on every update,
after defaulting, on the fully merged object — so a dry-run sees exactly the
refusal the real write would get, and a refused write changes nothing.
"""
from __future__ import annotations

import json
import re
from typing import Any

from labkit.core.errors import ApiError, FieldCause, invalid
from labkit.sim.kinds import KindInfo

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
STS_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
STS_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
               "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
PVC_FORBIDDEN = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
WORKLOADS = {("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"), ("apps", "DaemonSet")}


def go_value(v: Any, type_name: str = "") -> str:
    """Render an invalid value as ``field.Invalid`` does since Kubernetes 1.33: compact JSON (map keys sorted)."""
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def go_selector(sel: Any) -> str:
    """A LabelSelector as JSON with the struct's field order and ``omitempty`` (matchLabels, matchExpressions)."""
    sel = sel if isinstance(sel, dict) else {}
    out: dict[str, Any] = {}
    if sel.get("matchLabels"):
        out["matchLabels"] = dict(sorted(sel["matchLabels"].items()))
    if sel.get("matchExpressions"):
        out["matchExpressions"] = [{k: r[k] for k in ("key", "operator", "values") if r.get(k)} for r in sel["matchExpressions"]]
    return json.dumps(out, separators=(",", ":"))


def go_pod_template(tpl: Any) -> str:
    tpl = tpl if isinstance(tpl, dict) else {}
    md = tpl.get("metadata") or {}
    spec = tpl.get("spec") or {}
    labels = go_value(md.get("labels")) if md.get("labels") else "map[string]string(nil)"
    containers = []
    for c in spec.get("containers") or []:
        cmd = c.get("command")
        cmd_s = "[]string{" + ", ".join(json.dumps(x) for x in cmd) + "}" if cmd else "[]string(nil)"
        containers.append(
            f'core.Container{{Name:{json.dumps(c.get("name", ""))}, Image:{json.dumps(c.get("image", ""))}, '
            f"Command:{cmd_s}, ...}}"
        )
    return (
        f"core.PodTemplateSpec{{ObjectMeta:v1.ObjectMeta{{Labels:{labels}, ...}}, "
        f"Spec:core.PodSpec{{Containers:[]core.Container{{{', '.join(containers)}}}, "
        f'RestartPolicy:"{spec.get("restartPolicy", "")}", ...}}}}'
    )


def _name(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def _matches(selector: Any, labels: dict[str, str]) -> bool:
    if not isinstance(selector, dict):
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or []:
        key, op, vals = req.get("key"), req.get("operator"), req.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def validate(info: KindInfo, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise ``ApiError`` (Invalid / Forbidden) when the API server would refuse ``new``."""
    api_version = new.get("apiVersion", "")
    name = _name(new)
    causes: list[FieldCause] = []
    gk = (info.group, info.kind)

    if old is None:
        if info.kind == "Service" and info.group == "":
            pattern, msg = _DNS1035, DNS1035_MSG
        elif info.kind == "Namespace" and info.group == "":
            pattern, msg = _DNS1123_LABEL, LABEL_MSG
        else:
            pattern, msg = _DNS1123_SUBDOMAIN, SUBDOMAIN_MSG
        if not name:
            causes.append(FieldCause("metadata.name", "Required value", "FieldValueRequired"))
        elif len(name) > 253 or not pattern.match(name):
            causes.append(FieldCause("metadata.name", f'Invalid value: "{name}": {msg}'))

    spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    if gk in WORKLOADS or gk == ("batch", "Job"):
        _validate_workload(info, spec, causes, selector_required=gk != ("batch", "Job"))
    if gk == ("autoscaling", "HorizontalPodAutoscaler"):
        mn, mx = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if mx is None:
            causes.append(FieldCause("spec.maxReplicas", "Required value", "FieldValueRequired"))
        elif isinstance(mn, int) and mx < mn:
            causes.append(FieldCause("spec.maxReplicas", f"Invalid value: {mx}: must be greater than or equal to `minReplicas`"))
        if not spec.get("scaleTargetRef"):
            causes.append(FieldCause("spec.scaleTargetRef", "Required value", "FieldValueRequired"))

    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        if gk == ("apps", "StatefulSet"):
            changed = {k for k in set(spec) | set(old_spec) if spec.get(k) != old_spec.get(k)}
            if changed - STS_MUTABLE:
                causes.append(FieldCause("spec", f"Forbidden: {STS_FORBIDDEN}", "FieldValueForbidden"))
        if gk in WORKLOADS or gk == ("batch", "Job"):
            if "selector" in old_spec and spec.get("selector") != old_spec.get("selector"):
                causes.append(FieldCause("spec.selector", f"Invalid value: {go_selector(spec.get('selector'))}: field is immutable"))
        if gk == ("batch", "Job"):
            if _template_core(spec.get("template")) != _template_core(old_spec.get("template")):
                causes.append(FieldCause("spec.template", f"Invalid value: {go_pod_template(spec.get('template'))}: field is immutable"))
            for f in ("completionMode",):
                if spec.get(f) != old_spec.get(f):
                    causes.append(FieldCause(f"spec.{f}", f"Invalid value: {go_value(spec.get(f))}: field is immutable"))
        if gk == ("", "Service"):
            old_ip, new_ip = old_spec.get("clusterIP"), spec.get("clusterIP")
            if old_ip and old_ip != "None" and new_ip != old_ip:
                causes.append(FieldCause("spec.clusterIPs[0]", f'Invalid value: {json.dumps([new_ip or ""])}: may not change once set'))
        if gk == ("", "PersistentVolumeClaim"):
            a = {k: v for k, v in spec.items() if k not in ("resources", "volumeAttributesClassName", "volumeName")}
            b = {k: v for k, v in old_spec.items() if k not in ("resources", "volumeAttributesClassName", "volumeName")}
            if a != b:
                causes.append(FieldCause("spec", f"Forbidden: {PVC_FORBIDDEN}", "FieldValueForbidden"))
        if gk in (("", "ConfigMap"), ("", "Secret")) and old.get("immutable") is True:
            for f in ("data", "binaryData"):
                if new.get(f) != old.get(f):
                    causes.append(FieldCause(f, "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"))

    if causes:
        err = invalid(api_version, info.kind, name, causes)
        raise err


def _template_core(tpl: Any) -> Any:
    """The parts of a Job's pod template the API server treats as immutable."""
    if not isinstance(tpl, dict):
        return tpl
    md = dict(tpl.get("metadata") or {})
    labels = {k: v for k, v in (md.get("labels") or {}).items()
              if k not in ("controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name")}
    return {"labels": labels, "annotations": md.get("annotations"), "spec": tpl.get("spec")}


def _validate_workload(info: KindInfo, spec: dict[str, Any], causes: list[FieldCause], *, selector_required: bool) -> None:
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(FieldCause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    tpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    sel = spec.get("selector")
    if selector_required:
        if not sel:
            causes.append(FieldCause("spec.selector", "Required value", "FieldValueRequired"))
        elif not _matches(sel, labels):
            causes.append(FieldCause("spec.template.metadata.labels",
                                     f"Invalid value: {go_value(labels)}: `selector` does not match template `labels`"))
    containers = (tpl.get("spec") or {}).get("containers")
    if not containers:
        causes.append(FieldCause("spec.template.spec.containers", "Required value", "FieldValueRequired"))
    else:
        for i, c in enumerate(containers):
            if not isinstance(c, dict):
                continue
            if not c.get("name"):
                causes.append(FieldCause(f"spec.template.spec.containers[{i}].name", "Required value", "FieldValueRequired"))
            if not c.get("image"):
                causes.append(FieldCause(f"spec.template.spec.containers[{i}].image", "Required value", "FieldValueRequired"))
