"""KWOK Stage definitions for the local control plane: the fake kubelet's behaviour.

KWOK (``sigs.k8s.io/kwok``) plays every kubelet of a cluster: it keeps fake Nodes
Ready and moves Pods through their lifecycle by applying **Stages** — documented
``kwok.x-k8s.io/v1alpha1`` objects that say *which* objects a step applies to (a
selector of jq expressions over the object), *when* (a delay with jitter: a duration
drawn uniformly from ``[durationMilliseconds, jitterDurationMilliseconds)``) and
*what* happens (a Go template rendering the new ``status``, finalizer edits, events,
deletion).  Standalone ``kwok`` has no built-in stages: ``kwokctl`` injects its defaults
(``kustomize/stage/node/fast``, ``node/heartbeat-with-lease``, ``pod/fast`` in the
pinned module, ``labkit.kube.versions.KWOK``), and whoever runs ``kwok`` directly — as ``labkit.kube.controlplane``
does — must pass a complete set with ``--config``.  This module writes that set.

Node stages are KWOK's own defaults, unchanged: ``node-initialize`` (conditions,
addresses, allocatable/capacity when the Node has none, nodeInfo, phase Running) and
``node-heartbeat-with-lease`` (heartbeats every ~10 minutes, liveness through the Lease
that ``kwok --node-lease-duration-seconds`` renews).

Pod stages are labkit's, written in KWOK's format and modelled on its ``pod/fast`` and
``pod/general`` sets, with the behaviour the lab needs to compare with the simulator
(``labkit.sim.controllers.kubelet``):

``pod-ready``
    A scheduled pod whose images all exist becomes Running and Ready after a delay
    with jitter (``StageTimings.ready_ms`` .. ``ready_jitter_ms``).  A pod can override
    the delay with the annotation ``labkit.dev/ready-delay`` (a Go duration, e.g.
    ``"30s"``), as KWOK's own stages read ``pod-*.stage.kwok.x-k8s.io/delay``.
``pod-image-pull-failed`` / ``pod-image-pull-backoff`` / ``pod-image-pull-retry``
    A pod with a *missing* image goes to ``waiting: ErrImagePull`` with containerd's
    "not found" message (the same text the simulator's registry uses), emits the
    kubelet's ``Failed`` events, turns to ``ImagePullBackOff`` after
    ``backoff_ms``, then retries (``ErrImagePull`` again) after ``retry_ms`` — a fixed
    cycle: KWOK stages cannot express the kubelet's doubling back-off (10 s up to
    5 min), which the simulator models exactly.  An image is missing when it is in
    the ``missing_images`` list given at cluster creation, or when its tag matches
    ``missing_tag_pattern`` (by default tags starting with ``missing`` or equal to
    ``does-not-exist`` / ``nonexistent``), so scenarios can name a bad tag without
    restarting KWOK.  Selection is by a jq expression that evaluates to the string
    ``"missing"`` or ``"present"`` for the whole pod, so exactly one branch matches.
``pod-complete``
    A running pod owned by a Job (``restartPolicy`` Never/OnFailure) succeeds after
    ``job_run_ms`` .. ``job_run_jitter_ms``.
``pod-fail``
    The same for a Job pod whose template carries the annotation ``sim.labkit.io/exit-code``
    with a non-zero value — the simulator's own scenario hook
    (``labkit.sim.controllers.kubelet``), so one manifest fails the same way on both: the
    container terminates with that exit code (reason ``Error``) and the pod is ``Failed``
    (``Ready=False/PodFailed``), which the real Job controller counts against
    ``backoffLimit``.  ``pod-complete`` only takes pods without it (or with ``"0"``).
``pod-delete``
    A pod with ``deletionTimestamp`` has its finalizers emptied and is deleted (what
    the kubelet's graceful termination amounts to with no containers), after
    ``delete_ms``.

Pods are only seen by KWOK once they are bound to a Node it manages: scheduling is the
real ``kube-scheduler``'s job (KWOK v0.8 never binds pods), so the control plane runs
it too.

Metrics (``metrics_configs``): KWOK's documented resource-metrics emulation — the
``Metric`` object ``metrics-resource`` (kubelet's ``/metrics/resource`` format, served
by kwok at ``/metrics/nodes/{nodeName}/metrics/resource``) and the
``ClusterResourceUsage`` ``usage-from-annotation`` that reads a pod's CPU and memory
from the annotations ``kwok.x-k8s.io/usage-cpu`` / ``kwok.x-k8s.io/usage-memory``.
That gives every fake pod a CPU usage the lab controls.  The Horizontal Pod Autoscaler
does not read kubelets: it reads the ``metrics.k8s.io`` API, served by metrics-server,
which the control plane runs and points at KWOK (see ``labkit.kube.controlplane``).  Note
the difference from the simulator's load model (``labkit.sim.load``): there a workload's
demand is *shared* among its ready pods, here each pod uses what its annotation says, so
scaling out does not lower the per-pod usage and the real HPA keeps scaling up to
``maxReplicas`` under a constant annotation.

``stages_yaml()`` returns the multi-document YAML that ``kwok --config`` reads.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

API_VERSION = "kwok.x-k8s.io/v1alpha1"
READY_DELAY_ANNOTATION = "labkit.dev/ready-delay"
USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
#: the simulator's exit-code hook (labkit.sim.controllers.kubelet.EXIT_CODE_ANNOTATION), honoured for Job pods
EXIT_CODE_ANNOTATION = "sim.labkit.io/exit-code"
DEFAULT_MISSING_TAG_PATTERN = r"^(missing.*|does-not-exist|nonexistent)$"


@dataclass
class StageTimings:
    """Delays of the pod stages, in milliseconds (KWOK draws uniformly in ``[ms, jitter_ms)``)."""

    ready_ms: int = 1000
    ready_jitter_ms: int = 5000
    pull_fail_ms: int = 500
    pull_fail_jitter_ms: int = 2000
    backoff_ms: int = 10000  # ErrImagePull -> ImagePullBackOff
    retry_ms: int = 20000  # ImagePullBackOff -> ErrImagePull (a fixed cycle; see module docstring)
    job_run_ms: int = 1000
    job_run_jitter_ms: int = 5000
    delete_ms: int = 0

    @classmethod
    def fast(cls) -> "StageTimings":
        """Short delays for tests."""
        return cls(ready_ms=200, ready_jitter_ms=800, pull_fail_ms=200, pull_fail_jitter_ms=400,
                   backoff_ms=2000, retry_ms=4000, job_run_ms=500, job_run_jitter_ms=1000)


@dataclass
class StageOptions:
    """What the lab configures about the fake kubelets."""

    timings: StageTimings = field(default_factory=StageTimings)
    missing_images: list[str] = field(default_factory=list)
    missing_tag_pattern: str = DEFAULT_MISSING_TAG_PATTERN
    metrics: bool = True


# ------------------------------------------------------------------ image references

def canonical_image(ref: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as containerd names an image in its errors."""
    name, sep, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = name.rsplit(":", 1)
    else:
        repo, tag = name, "latest"
    first = repo.split("/", 1)[0]
    if "/" not in repo or ("." not in first and ":" not in first and first != "localhost"):
        repo = "docker.io/" + (repo if "/" in repo else "library/" + repo)
    if sep:
        return f"{repo}@{digest}"
    return f"{repo}:{tag}"


def image_tag(ref: str) -> str:
    name, sep, digest = ref.partition("@")
    if sep:
        return digest
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def is_missing(ref: str, options: StageOptions) -> bool:
    """Python twin of the jq test KWOK runs (used by tests and to explain a stage choice)."""
    listed = {canonical_image(i) for i in options.missing_images}
    if canonical_image(ref) in listed or ref in options.missing_images:
        return True
    return bool(options.missing_tag_pattern) and re.search(options.missing_tag_pattern, image_tag(ref)) is not None


def _jq_string(s: str) -> str:
    return json.dumps(s)


def missing_expression(options: StageOptions) -> str:
    """A jq expression over a Pod that is ``"missing"`` if any container image is missing, else ``"present"``."""
    listed = sorted({i for i in options.missing_images} | {canonical_image(i) for i in options.missing_images})
    listed_jq = "[" + ", ".join(_jq_string(i) for i in listed) + "]"
    # the tag: after '@' for digests, else after the last ':' of the last path segment, else "latest"
    tag_jq = ('(if test("@") then sub("^[^@]*@"; "") else (split("/") | last | '
              'if test(":") then sub("^[^:]*:"; "") else "latest" end) end)')
    checks = [f"(. as $i | {listed_jq} | index([$i]) != null)"]
    if options.missing_tag_pattern:
        checks.append(f"({tag_jq} | test({_jq_string(options.missing_tag_pattern)}))")
    test = " or ".join(checks)
    return f'if ([.spec.containers[].image | {test}] | any) then "missing" else "present" end'


# ------------------------------------------------------------------ stage objects

def _stage(name: str, kind: str, selector: list[dict[str, Any]], *, next_: dict[str, Any],
           delay: dict[str, Any] | None = None, weight: int | None = None,
           immediate: bool | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"resourceRef": {"apiGroup": "v1", "kind": kind},
                            "selector": {"matchExpressions": selector}}
    if weight is not None:
        spec["weight"] = weight
    if delay:
        spec["delay"] = delay
    spec["next"] = next_
    if immediate is not None:
        spec["immediateNextStage"] = immediate
    return {"apiVersion": API_VERSION, "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def _expr(key: str, operator: str, values: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = values
    return out


def _delay(ms: int, jitter_ms: int | None = None, *, from_annotation: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"durationMilliseconds": int(ms)}
    if from_annotation:
        d["durationFrom"] = {"expressionFrom": f'.metadata.annotations["{from_annotation}"]'}
    if jitter_ms is not None and jitter_ms > ms:
        d["jitterDurationMilliseconds"] = int(jitter_ms)
    return d


NODE_INITIALIZE_TEMPLATE = """\
{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type  | Quote}}
{{ end }}

{{ $hasInternalIP := false }}
{{ $hasHostname := false }}
{{ range .status.addresses }}
  {{ if eq .type "InternalIP" }}
    {{ $hasInternalIP = true }}
  {{ end }}
  {{ if eq .type "Hostname" }}
    {{ $hasHostname = true }}
  {{ end }}
{{ end }}
{{ if or (not $hasInternalIP) (not $hasHostname) }}
addresses:
{{ end }}
{{ if not $hasInternalIP }}
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ end }}
{{ if not $hasHostname }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
{{ end }}

{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}

allocatable:
{{ with .status.allocatable }}
{{ YAML . 1 }}
{{ else }}
  cpu: 1k
  memory: 1Ti
  pods: 1M
{{ end }}
capacity:
{{ with .status.capacity }}
{{ YAML . 1 }}
{{ else }}
  cpu: 1k
  memory: 1Ti
  pods: 1M
{{ end }}

{{ $nodeInfo := .status.nodeInfo }}
{{ $kwokVersion := printf "kwok-%s" Version }}
nodeInfo:
  architecture: {{ or $nodeInfo.architecture "amd64" }}
  bootID: {{ or $nodeInfo.bootID `""` }}
  containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
  kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
  kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
  kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
  machineID: {{ or $nodeInfo.machineID `""` }}
  operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
  osImage: {{ or $nodeInfo.osImage `""` }}
  systemUUID: {{ or $nodeInfo.systemUUID `""` }}
phase: Running
"""

NODE_HEARTBEAT_TEMPLATE = """\
{{ $now := Now }}
{{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $lastTransitionTime | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}

addresses:
{{ with .status.addresses }}
{{ YAML . 1 }}
{{ else }}
{{ with NodeIP }}
- address: {{ . | Quote }}
  type: InternalIP
{{ end }}
{{ with NodeName }}
- address: {{ . | Quote }}
  type: Hostname
{{ end }}
{{ end }}

{{ with NodePort }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ . }}
{{ end }}
"""

POD_READY_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodReadyToStartContainers
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""

# __REASON__ and __MESSAGE__ are substituted in Python; the image is canonicalised in the template
# (``web:v9`` -> ``docker.io/library/web:v9``) because containerd's messages use the full name.
POD_PULL_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodReadyToStartContainers
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  message: 'containers with unready status: [{{ range $i, $c := .spec.containers }}{{ if $i }} {{ end }}{{ $c.name }}{{ end }}]'
  reason: ContainersNotReady
  status: "False"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  message: 'containers with unready status: [{{ range $i, $c := .spec.containers }}{{ if $i }} {{ end }}{{ $c.name }}{{ end }}]'
  reason: ContainersNotReady
  status: "False"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
containerStatuses:
{{ range .spec.containers }}
{{ $ref := .image }}
{{ $segs := splitList "/" $ref }}
{{ if not (or (contains "@" $ref) (contains ":" (last $segs))) }}{{ $ref = printf "%s:latest" $ref }}{{ end }}
{{ if eq (len $segs) 1 }}{{ $ref = printf "docker.io/library/%s" $ref }}{{ else if not (or (contains "." (first $segs)) (contains ":" (first $segs)) (eq (first $segs) "localhost")) }}{{ $ref = printf "docker.io/%s" $ref }}{{ end }}
{{ $err := printf "rpc error: code = NotFound desc = failed to pull and unpack image \\"%s\\": failed to resolve reference \\"%s\\": %s: not found" $ref $ref $ref }}
- image: {{ .image | Quote }}
  imageID: ""
  name: {{ .name | Quote }}
  ready: false
  started: false
  restartCount: 0
  state:
    waiting:
      reason: __REASON__
      message: {{ __MESSAGE__ | Quote }}
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Pending
startTime: {{ or .status.startTime $now | Quote }}
"""

POD_COMPLETE_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: PodReadyToStartContainers
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  reason: PodCompleted
  status: "False"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  reason: PodCompleted
  status: "False"
  type: ContainersReady
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: PodScheduled
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


# a Job pod whose container exits non-zero (``sim.labkit.io/exit-code``): as the kubelet reports it
POD_FAIL_TEMPLATE = POD_COMPLETE_TEMPLATE.replace(
    "reason: PodCompleted", "reason: PodFailed").replace(
    "exitCode: 0", f'exitCode: {{{{ index $.metadata.annotations "{EXIT_CODE_ANNOTATION}" }}}}').replace(
    "reason: Completed", "reason: Error").replace("phase: Succeeded", "phase: Failed")


def node_stages() -> list[dict[str, Any]]:
    """The pinned KWOK release's default node stages (``node/fast`` initialize + ``heartbeat-with-lease``)."""
    ready_status = '.status.conditions.[] | select( .type == "Ready" ) | .status'
    return [
        _stage("node-initialize", "Node", [_expr(ready_status, "NotIn", ["True"])],
               next_={"statusTemplate": NODE_INITIALIZE_TEMPLATE}),
        _stage("node-heartbeat-with-lease", "Node",
               [_expr(".status.phase", "In", ["Running"]), _expr(ready_status, "In", ["True"])],
               delay=_delay(600000, 610000), next_={"statusTemplate": NODE_HEARTBEAT_TEMPLATE}),
    ]


def _pull_template(reason: str) -> str:
    """ErrImagePull carries containerd's error; ImagePullBackOff the kubelet's back-off text around it."""
    if reason == "ErrImagePull":
        message = "$err"
    else:
        message = 'printf "Back-off pulling image \\"%s\\": ErrImagePull: %s" .image $err'
    return POD_PULL_TEMPLATE.replace("__REASON__", reason).replace("__MESSAGE__", message)


def pod_stages(options: StageOptions | None = None) -> list[dict[str, Any]]:
    """labkit's pod lifecycle (see module docstring)."""
    o = options or StageOptions()
    t = o.timings
    missing = missing_expression(o)
    not_deleted = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    waiting_reason = ".status.containerStatuses.[].state.waiting.reason"
    exit_code = f'((.metadata.annotations // {{}})["{EXIT_CODE_ANNOTATION}"] // "0")'
    return [
        _stage("pod-ready", "Pod", [
            not_deleted,
            _expr(".status.podIP", "DoesNotExist"),
            _expr(waiting_reason, "DoesNotExist"),
            _expr(missing, "In", ["present"]),
        ], delay=_delay(t.ready_ms, t.ready_jitter_ms, from_annotation=READY_DELAY_ANNOTATION),
            next_={"statusTemplate": POD_READY_TEMPLATE}),
        _stage("pod-image-pull-failed", "Pod", [
            not_deleted,
            _expr(".status.containerStatuses", "DoesNotExist"),
            _expr(missing, "In", ["missing"]),
        ], delay=_delay(t.pull_fail_ms, t.pull_fail_jitter_ms),
            next_={"statusTemplate": _pull_template("ErrImagePull"),
                   "event": {"type": "Warning", "reason": "Failed", "message": "Error: ErrImagePull"}}),
        _stage("pod-image-pull-backoff", "Pod", [
            not_deleted,
            _expr(waiting_reason, "In", ["ErrImagePull"]),
        ], delay=_delay(t.backoff_ms),
            next_={"statusTemplate": _pull_template("ImagePullBackOff"),
                   "event": {"type": "Normal", "reason": "BackOff", "message": "Back-off pulling image"}}),
        _stage("pod-image-pull-retry", "Pod", [
            not_deleted,
            _expr(waiting_reason, "In", ["ImagePullBackOff"]),
            _expr(missing, "In", ["missing"]),
        ], delay=_delay(t.retry_ms),
            next_={"statusTemplate": _pull_template("ErrImagePull"),
                   "event": {"type": "Warning", "reason": "Failed", "message": "Error: ErrImagePull"}}),
        _stage("pod-complete", "Pod", [
            not_deleted,
            _expr(".status.phase", "In", ["Running"]),
            _expr(".metadata.ownerReferences.[].kind", "In", ["Job"]),
            _expr(".spec.restartPolicy", "In", ["Never", "OnFailure"]),
            _expr(exit_code, "In", ["0"]),
        ], delay=_delay(t.job_run_ms, t.job_run_jitter_ms),
            next_={"statusTemplate": POD_COMPLETE_TEMPLATE}),
        _stage("pod-fail", "Pod", [
            not_deleted,
            _expr(".status.phase", "In", ["Running"]),
            _expr(".metadata.ownerReferences.[].kind", "In", ["Job"]),
            _expr(".spec.restartPolicy", "In", ["Never"]),
            _expr(exit_code, "NotIn", ["0"]),
        ], delay=_delay(t.job_run_ms, t.job_run_jitter_ms),
            next_={"statusTemplate": POD_FAIL_TEMPLATE}),
        _stage("pod-delete", "Pod", [
            _expr(".metadata.deletionTimestamp", "Exists"),
        ], delay=_delay(t.delete_ms) if t.delete_ms else None,
            next_={"finalizers": {"empty": True}, "delete": True}),
    ]


def metrics_configs() -> list[dict[str, Any]]:
    """KWOK's resource-metrics emulation: the kubelet ``/metrics/resource`` Metric and usage from annotations."""
    def container_metric(name: str, help_: str, kind: str, value: str) -> dict[str, Any]:
        return {"name": name, "dimension": "container", "help": help_, "kind": kind, "value": value,
                "labels": [{"name": "container", "value": "container.name"},
                           {"name": "namespace", "value": "pod.metadata.namespace"},
                           {"name": "pod", "value": "pod.metadata.name"}]}

    def pod_metric(name: str, help_: str, kind: str, value: str) -> dict[str, Any]:
        return {"name": name, "dimension": "pod", "help": help_, "kind": kind, "value": value,
                "labels": [{"name": "namespace", "value": "pod.metadata.namespace"},
                           {"name": "pod", "value": "pod.metadata.name"}]}

    metric = {
        "apiVersion": API_VERSION, "kind": "Metric", "metadata": {"name": "metrics-resource"},
        "spec": {"path": "/metrics/nodes/{nodeName}/metrics/resource", "metrics": [
            {"name": "scrape_error", "dimension": "node", "kind": "gauge", "value": "0",
             "help": "[ALPHA] 1 if there was an error while getting metrics from the node, 0 otherwise"},
            container_metric("container_start_time_seconds", "[ALPHA] Start time of the container since unix epoch in seconds",
                             "gauge", "pod.SinceSecond()"),
            container_metric("container_cpu_usage_seconds_total",
                             "[ALPHA] Cumulative cpu time consumed by the container in core-seconds",
                             "counter", 'pod.CumulativeUsage("cpu", container.name)'),
            container_metric("container_memory_working_set_bytes", "[ALPHA] Current working set of the container in bytes",
                             "gauge", 'pod.Usage("memory", container.name)'),
            pod_metric("pod_cpu_usage_seconds_total", "[ALPHA] Cumulative cpu time consumed by the pod in core-seconds",
                       "counter", 'pod.CumulativeUsage("cpu")'),
            pod_metric("pod_memory_working_set_bytes", "[ALPHA] Current working set of the pod in bytes",
                       "gauge", 'pod.Usage("memory")'),
            {"name": "node_cpu_usage_seconds_total", "dimension": "node", "kind": "counter",
             "help": "[ALPHA] Cumulative cpu time consumed by the node in core-seconds",
             "value": 'node.CumulativeUsage("cpu")'},
            {"name": "node_memory_working_set_bytes", "dimension": "node", "kind": "gauge",
             "help": "[ALPHA] Current working set of the node in bytes", "value": 'node.Usage("memory")'},
        ]},
    }
    usage = {
        "apiVersion": API_VERSION, "kind": "ClusterResourceUsage", "metadata": {"name": "usage-from-annotation"},
        "spec": {"usages": [{"usage": {
            "cpu": {"expression": f'"{USAGE_CPU_ANNOTATION}" in pod.metadata.annotations ? '
                                  f'Quantity(pod.metadata.annotations["{USAGE_CPU_ANNOTATION}"]) : Quantity("1m")'},
            "memory": {"expression": f'"{USAGE_MEMORY_ANNOTATION}" in pod.metadata.annotations ? '
                                     f'Quantity(pod.metadata.annotations["{USAGE_MEMORY_ANNOTATION}"]) : Quantity("1Mi")'},
        }}]},
    }
    return [metric, usage]


def all_configs(options: StageOptions | None = None) -> list[dict[str, Any]]:
    o = options or StageOptions()
    return node_stages() + pod_stages(o) + (metrics_configs() if o.metrics else [])


def stages_yaml(options: StageOptions | None = None) -> str:
    """The multi-document YAML ``kwok --config`` reads."""
    return yaml.safe_dump_all(all_configs(options), sort_keys=False, width=1000)
