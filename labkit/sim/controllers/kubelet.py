"""The node: scheduler binding, image pulls, container lifecycle and pod status (kubelet).

The simulated cluster has one node, ``sim-node``, run the way KWOK runs fake
nodes — as *stages* with seeded delays — but with the kubelet's own state
machine for the parts GitOps users meet: image pulls that fail, containers that
crash, readiness that arrives late, and pods that take time to die.  Every pod
gets a ``PodWorker`` (the kubelet's ``podWorkers``: one goroutine per pod),
a SimPy process that walks the pod through:

1. **Scheduling** (component ``default-scheduler``) after ``Timings.schedule``:
   the pod is bound (``spec.nodeName``, an Update by ``kube-scheduler``) and gets
   ``PodScheduled=True`` — event ``Scheduled`` "Successfully assigned ns/pod to
   sim-node".  A pod whose PersistentVolumeClaims are not Bound waits
   (``FailedScheduling`` "pod has unbound immediate PersistentVolumeClaims") and
   is bound as soon as they are, as the scheduler retries on PVC events.
2. **Sandbox**: status ``Pending`` with ``startTime``, a pod IP,
   ``PodReadyToStartContainers=True`` and every container ``waiting:
   ContainerCreating`` (``PodInitializing`` behind init containers).
3. **Init containers**, one at a time, each run to completion.
4. **Containers**, started in spec order (``kuberuntime_manager.SyncPod``), each
   then living on its own: *ensure image* (below), then ``Timings.start`` to
   create and start it — events ``Created`` "Created container: web" and
   ``Started`` "Started container web", state ``running``, phase ``Running``
   once every container has started; then *ready* after the readiness delay
   (``readinessProbe.initialDelaySeconds`` + ``Timings.ready_jitter``), which
   makes the pod ``Ready`` when all containers are.
5. **Exit**: a container that runs to completion (see ``labkit.sim.registry``:
   ``run_seconds``, ``crashing``, ``program``; Job pods and init containers run
   ``Timings.job_run`` by default) terminates with its exit code.  Under
   ``restartPolicy: Never`` the pod becomes ``Succeeded`` or ``Failed``; under
   ``OnFailure`` a failure restarts it; under ``Always`` every exit restarts it.
6. **Termination**: when the API server marks the pod for deletion
   (``deletionTimestamp``, see ``ApiStore.graceful_pods``), the kubelet emits
   ``Killing`` "Stopping container web", marks the pod not ready, stops the
   containers after ``Timings.termination`` (capped by the grace period) and
   finalizes the pod, which removes it from the store.

Image pulls (``pkg/kubelet/images/image_manager.go``)
    ``imagePullPolicy: IfNotPresent`` with the image on the node: ``Pulled``
    "Container image "web:v1" already present on machine", no delay.  Otherwise
    ``Pulling``, then — if the registry has the image — ``Pulled`` "Successfully
    pulled image "web:v1" in 2.5s (2.5s including waiting). Image size: N bytes."
    after the image's pull time (``Timings.pull`` drawn once per image, or the
    registry's ``pull_seconds``; ``Timings.pull_cached`` for ``Always`` when the node
    already has it).  The node's image cache is **one per node, shared by all
    pods**: the first pod to pull an image pays the pull time; pods that want
    the same image while that pull is under way wait for it (their message
    reports the time "including waiting"), and later pods find it present.
    Pulls of different images run in parallel (``serializeImagePulls=false``).
    A missing image fails after ``Timings.pull_error``: ``Failed`` "Failed to
    pull image ...: rpc error: code = NotFound ..." and ``Failed`` "Error:
    ErrImagePull", state ``waiting: ErrImagePull``.  The back-off then works as
    ``flowcontrol.Backoff`` does: each failure doubles the wait (10 s, 20 s, 40 s,
    ... capped at 300 s, ``Timings.backoff_initial/max``), measured from the
    failure; ``Timings.kubelet_resync`` after the failure the next pod sync
    reports ``waiting: ImagePullBackOff`` (``BackOff`` "Back-off pulling image",
    ``Failed`` "Error: ImagePullBackOff"), and when the back-off has passed the
    pull is tried again.

Crash loops (``kuberuntime_manager.doBackOff``)
    A container that exits under a restarting policy is restarted at once the
    first time (the back-off entry is only created then, at 10 s); each later
    exit waits the current back-off, measured from the exit (``finishedAt``),
    and doubles it, capped at 300 s — restarts after 0, 10, 20, 40, ... s.
    ``Timings.kubelet_resync`` after an exit that must wait, the container shows
    ``waiting: CrashLoopBackOff`` "back-off 10s restarting failed
    container=web pod=web-x_default(uid)" with the exit in ``lastState``, and a
    ``BackOff`` "Back-off restarting failed container web in pod ..." event; a
    container that ran for more than 10 minutes resets its back-off.
    ``restartCount`` counts restarts.

Scenario hooks
    Besides the registry's per-image behaviour, a pod (template) can carry the
    annotations ``sim.labkit.io/run-seconds`` (the container runs that long, then
    exits) and ``sim.labkit.io/exit-code`` (the exit code it then reports), which
    take precedence over the registry.  Exit codes are decided when the
    container finishes: a registry ``program`` runs at that moment with a
    ``RunContext`` (see ``labkit.sim.registry``).

Components in the event log: ``default-scheduler`` (Scheduled,
FailedScheduling) and ``kubelet`` (Pulling, Pulled, Failed, BackOff, Created,
Started, Killing), each about the Pod.
"""
from __future__ import annotations

import hashlib
from typing import Any, Generator

import simpy

from labkit.core.errors import ApiError
from labkit.core.events import object_key
from labkit.sim import fieldset
from labkit.sim.controllers.common import go_duration, iso
from labkit.sim.registry import ImageRegistry, RunContext, parse_image
from labkit.sim.timings import Dist, TimingSampler

NODE_NAME = "sim-node"
NODE_IP = "172.18.0.2"
RUN_SECONDS_ANNOTATION = "sim.labkit.io/run-seconds"
EXIT_CODE_ANNOTATION = "sim.labkit.io/exit-code"
_TERMINAL = ("Succeeded", "Failed")


class ContainerState:
    """The kubelet's view of one container (``kubecontainer.Status`` + back-off entries)."""

    __slots__ = ("spec", "name", "image", "init", "state", "reason", "message", "started_at", "finished_at",
                 "exit_code", "last_state", "restarts", "ready", "ever_started", "container_id", "image_id",
                 "pull_backoff", "pull_backoff_updated", "crash_backoff", "crash_backoff_updated", "run")

    def __init__(self, spec: dict, init: bool):
        self.spec = spec
        self.name: str = spec.get("name", "")
        self.image: str = spec.get("image", "")
        self.init = init
        self.state = "waiting"
        self.reason = "ContainerCreating"
        self.message = ""
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.exit_code: int | None = None
        self.last_state: dict | None = None
        self.restarts = 0
        self.ready = False
        self.ever_started = False
        self.container_id = ""
        self.image_id = ""
        self.pull_backoff: float | None = None
        self.pull_backoff_updated = 0.0
        self.crash_backoff: float | None = None
        self.crash_backoff_updated = 0.0
        self.run = 0  # incremented per start: stale timers compare it

    def waiting(self, reason: str, message: str = "") -> None:
        self.state, self.reason, self.message = "waiting", reason, message
        self.ready = False

    def terminated_dict(self) -> dict:
        d = {"exitCode": self.exit_code, "reason": self.reason}
        if self.message:
            d["message"] = self.message
        d["startedAt"] = iso(self.started_at or 0.0)
        d["finishedAt"] = iso(self.finished_at or 0.0)
        d["containerID"] = self.container_id
        return d

    def status(self) -> dict:
        if self.state == "running":
            state = {"running": {"startedAt": iso(self.started_at or 0.0)}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated_dict()}
        else:
            w = {"reason": self.reason}
            if self.message:
                w["message"] = self.message
            state = {"waiting": w}
        out = {"name": self.name, "image": self.image, "imageID": self.image_id}
        if self.container_id:
            out["containerID"] = self.container_id
        out.update(ready=self.ready, restartCount=self.restarts, started=self.state == "running",
                   state=state, lastState=({"terminated": dict(self.last_state)} if self.last_state else {}))
        return out


class Kubelet:
    """The node agent (and the scheduler's binding step) for the simulated node."""

    component = "kubelet"

    def __init__(self, cluster: Any, informers: Any, sampler: TimingSampler):
        self.cluster = cluster
        self.store = cluster.store
        self.env: simpy.Environment = cluster.env
        self.log = cluster.log
        self.sampler = sampler
        self.timings = sampler.timings
        self.registry: ImageRegistry = cluster.registry
        self.node_name = NODE_NAME
        self.workers: dict[str, PodWorker] = {}
        self.images: dict[str, float] = {}  # image ref -> time it landed on the node
        self.pulls_in_flight: dict[str, simpy.Event] = {}
        self._pvc_waiters: dict[tuple[str, str], list[simpy.Event]] = {}
        self._next_ip = 0
        #: callables ``fn(store, namespace, container_spec) -> (reason, message) | None`` consulted before each
        #: container start: a missing Secret/ConfigMap reference is CreateContainerConfigError, as the real kubelet
        #: reports it (``labkit.secrets.podconfig`` registers its check here)
        self.config_checks: list = []
        informers.pods.on_change(self._on_pod)
        informers.pvcs.on_change(self._on_pvc)

    # ------------------------------------------------------------------ watches
    def _on_pod(self, ev: str, obj: dict, info: Any) -> None:
        md = obj["metadata"]
        uid = md["uid"]
        if ev == "ADDED":
            if uid in self.workers or md.get("deletionTimestamp"):
                return
            if (obj.get("status") or {}).get("phase") in _TERMINAL:
                return
            w = PodWorker(self, obj)
            self.workers[uid] = w
            self.env.process(w.run())
        elif ev == "MODIFIED":
            if md.get("deletionTimestamp"):
                w = self.workers.get(uid)
                if w is None:
                    self.env.process(self._finalize_orphan(obj))
                elif not w.terminating:
                    w.terminate()
        else:
            w = self.workers.pop(uid, None)
            if w is not None:
                w.stopping = True

    def _finalize_orphan(self, obj: dict) -> Generator:
        yield self.env.timeout(0)
        live = self.store.ref("", "Pod", obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if live is not None and live["metadata"]["uid"] == obj["metadata"]["uid"]:
            self.store.finalize(live)

    def _on_pvc(self, ev: str, obj: dict, info: Any) -> None:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        waiters = self._pvc_waiters.pop(key, None)
        for w in waiters or ():
            if not w.triggered:
                w.succeed()

    def wait_pvc(self, namespace: str, name: str) -> simpy.Event:
        ev = self.env.event()
        self._pvc_waiters.setdefault((namespace, name), []).append(ev)
        return ev

    def pvc_bound(self, namespace: str, name: str) -> bool:
        pvc = self.store.ref("", "PersistentVolumeClaim", namespace, name)
        return pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound" \
            and not pvc["metadata"].get("deletionTimestamp")

    # ------------------------------------------------------------------ helpers
    def allocate_ip(self) -> str:
        self._next_ip += 1
        n = self._next_ip
        return f"10.244.{n // 250}.{n % 250 + 2}"

    def event(self, component: str, reason: str, obj: str, message: str, type: str = "Normal") -> None:
        self.log.record(component, reason, obj, detail={"type": type, "message": message})


class PodWorker:
    """One pod's life on the node (see the module docstring)."""

    def __init__(self, kubelet: Kubelet, pod: dict):
        self.k = kubelet
        self.env = kubelet.env
        md, spec = pod["metadata"], pod.get("spec") or {}
        self.uid: str = md["uid"]
        self.ns: str = md.get("namespace", "")
        self.name: str = md["name"]
        self.key = object_key("Pod", self.ns, self.name)
        self.annotations: dict = md.get("annotations") or {}
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.grace: float = spec.get("terminationGracePeriodSeconds", 30)
        self.init_containers = [ContainerState(c, True) for c in spec.get("initContainers") or []]
        self.containers = [ContainerState(c, False) for c in spec.get("containers") or []]
        self.claims = [v["persistentVolumeClaim"].get("claimName", "") for v in spec.get("volumes") or []
                       if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)]
        self.bound_node = spec.get("nodeName") or ""
        self.stopping = False
        self.terminating = False
        self.synced = False
        self.initialized = not self.init_containers
        self.phase = "Pending"
        self.start_time: float | None = None
        self.pod_ip = ""
        self.scheduled_at: float | None = None
        self._conds: dict[str, list] = {}
        self.qos = _qos_class(spec)
        if self.init_containers:
            for c in self.containers:
                c.reason = "PodInitializing"

    # ------------------------------------------------------------------ store access
    def live(self) -> dict | None:
        pod = self.k.store.ref("", "Pod", self.ns, self.name)
        if pod is None or pod["metadata"]["uid"] != self.uid:
            return None
        return pod

    def event(self, reason: str, message: str, type: str = "Normal", component: str = "kubelet") -> None:
        self.k.event(component, reason, self.key, message, type)

    # ------------------------------------------------------------------ status
    def _cond(self, ctype: str, status: str, reason: str = "", message: str = "") -> dict:
        now_iso = iso(self.env.now)
        cur = self._conds.get(ctype)
        if cur is None or cur[0] != status:
            cur = self._conds[ctype] = [status, now_iso]
        c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": cur[1]}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c

    def compute_phase(self) -> str:
        """``kubelet.getPhase`` for the containers' current states (terminal phases are sticky)."""
        if self.phase in _TERMINAL:
            return self.phase
        if not self.initialized:
            return "Pending"
        waiting = running = stopped = succeeded = 0
        for c in self.containers:
            if c.state == "running":
                running += 1
            elif c.state == "terminated":
                stopped += 1
                if c.exit_code == 0:
                    succeeded += 1
            elif c.last_state is not None:
                stopped += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if not self.containers:
            return "Pending"
        if self.restart_policy == "Always":
            return "Running"
        if self.restart_policy == "OnFailure":
            return "Succeeded" if stopped == succeeded else "Running"
        return "Succeeded" if stopped == succeeded else "Failed"

    def build_status(self) -> dict:
        phase = self.phase = self.compute_phase()
        status: dict[str, Any] = {"phase": phase}
        conds = []
        if self.synced:
            conds.append(self._cond("PodReadyToStartContainers", "False" if phase in _TERMINAL else "True"))
            if self.initialized:
                conds.append(self._cond("Initialized", "True"))
            else:
                pending = [c.name for c in self.init_containers if not (c.state == "terminated" and c.exit_code == 0)]
                conds.append(self._cond("Initialized", "False", "ContainersNotInitialized",
                                        f"containers with incomplete status: [{' '.join(pending)}]"))
            unready = [c.name for c in self.containers if not c.ready]
            if phase == "Succeeded":
                ready = self._cond("Ready", "False", "PodCompleted")
                cready = self._cond("ContainersReady", "False", "PodCompleted")
            elif phase == "Failed":
                ready = self._cond("Ready", "False", "PodFailed")
                cready = self._cond("ContainersReady", "False", "PodFailed")
            elif unready or not self.containers:
                msg = f"containers with unready status: [{' '.join(unready)}]"
                ready = self._cond("Ready", "False", "ContainersNotReady", msg)
                cready = self._cond("ContainersReady", "False", "ContainersNotReady", msg)
            else:
                ready = self._cond("Ready", "True")
                cready = self._cond("ContainersReady", "True")
            conds.append(ready)
            conds.append(cready)
        if self.scheduled_at is not None:
            conds.append(self._cond("PodScheduled", "True"))
        status["conditions"] = conds
        if self.synced:
            status["hostIP"] = NODE_IP
            status["hostIPs"] = [{"ip": NODE_IP}]
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
            status["startTime"] = iso(self.start_time or 0.0)
            if self.init_containers:
                status["initContainerStatuses"] = [c.status() for c in self.init_containers]
            status["containerStatuses"] = [c.status() for c in self.containers]
        status["qosClass"] = self.qos
        return status

    def sync_status(self) -> None:
        pod = self.live()
        if pod is None:
            return
        try:
            self.k.store.update_status(pod, self.build_status(), field_manager="kubelet")
        except ApiError:
            pass

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> Generator:
        if not (yield from self._schedule()):
            return
        self.synced = True
        self.start_time = self.env.now
        self.pod_ip = self.k.allocate_ip()
        self.sync_status()
        for c in self.init_containers:
            code = yield from self._container_loop(c, None)
            if self.stopping or code is None:
                return
            if code != 0:
                self.phase = "Failed"
                self.sync_status()
                return
        if not self.initialized:
            self.initialized = True
            for c in self.containers:
                if c.state == "waiting" and c.reason == "PodInitializing":
                    c.reason = "ContainerCreating"
            self.sync_status()
        for c in self.containers:
            done = self.env.event()
            self.env.process(self._container_loop(c, done))
            yield done
            if self.stopping:
                return

    def _schedule(self) -> Generator:
        k = self.k
        yield self.env.timeout(k.sampler.draw("schedule"))
        if self.stopping:
            return False
        reported = False
        while True:
            unbound = [c for c in self.claims if not k.pvc_bound(self.ns, c)]
            if not unbound:
                break
            if not reported:
                reported = True
                self.event("FailedScheduling",
                           "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                           "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                           "Warning", component="default-scheduler")
            yield k.wait_pvc(self.ns, unbound[0])
            if self.stopping:
                return False
        pod = self.live()
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return False
        if not self.bound_node:
            bound = dict(pod)  # the store copies what it is given: only the edited map needs to be new
            bound["spec"] = dict(pod["spec"])
            bound["spec"]["nodeName"] = k.node_name
            try:
                k.store.update(bound, field_manager="kube-scheduler", render=False)
            except ApiError:
                return False
            self.bound_node = k.node_name
        self.scheduled_at = self.env.now
        self.event("Scheduled", f"Successfully assigned {self.ns}/{self.name} to {k.node_name}",
                   component="default-scheduler")
        return not self.stopping

    def _ensure_image(self, c: ContainerState) -> Generator:
        """``imageManager.EnsureImageExists``: True when the image is on the node."""
        k, env = self.k, self.env
        image = c.image
        policy = c.spec.get("imagePullPolicy", "IfNotPresent")
        present = image in k.images
        if present and policy != "Always":
            self.event("Pulled", f'Container image "{image}" already present on machine')
            c.image_id = self._image_id(image)
            return True
        if policy == "Never":
            msg = f'Container image "{image}" is not present with pull policy of Never'
            c.waiting("ErrImageNeverPull", msg)
            self.event("Failed", "Error: ErrImageNeverPull", "Warning")
            self.sync_status()
            return False
        self.event("Pulling", f'Pulling image "{image}"')
        t0 = env.now
        if not k.registry.has(image):
            yield env.timeout(k.sampler.draw("pull_error"))
            if self.stopping:
                return False
            err = k.registry.not_found_message(image)
            self.event("Failed", f'Failed to pull image "{image}": {err}', "Warning")
            self.event("Failed", "Error: ErrImagePull", "Warning")
            c.waiting("ErrImagePull", err)
            self._pull_backoff_next(c)
            self.sync_status()
            return False
        if present:
            pull = k.sampler.draw("pull_cached")
            if pull:
                yield env.timeout(pull)
            own = pull
        else:
            inflight = k.pulls_in_flight.get(image)
            if inflight is not None:
                yield inflight
                own = 0.0
            else:
                spec = k.registry.lookup(image)
                pull = k.sampler.pull_time(image, spec.pull_seconds if spec is not None else None)
                ev = k.pulls_in_flight[image] = env.event()
                if pull:
                    yield env.timeout(pull)
                k.images[image] = env.now
                del k.pulls_in_flight[image]
                ev.succeed()
                own = pull
        if self.stopping:
            return False
        waited = env.now - t0
        self.event("Pulled", f'Successfully pulled image "{image}" in {go_duration(own if own else waited)} '
                             f"({go_duration(waited)} including waiting). Image size: {k.registry.size(image)} bytes.")
        c.image_id = self._image_id(image)
        return True

    def _image_id(self, image: str) -> str:
        ref = parse_image(image)
        repo = ref.canonical.rsplit("@", 1)[0]
        if ":" in repo.rsplit("/", 1)[-1]:
            repo = repo.rsplit(":", 1)[0]
        return f"{repo}@{self.k.registry.digest(image)}"

    def _pull_backoff_next(self, c: ContainerState) -> None:
        """``Backoff.Next`` at a pull failure: 10 s, doubling, capped; reset after 2×max without failures."""
        t, now = self.k.timings, self.env.now
        if c.pull_backoff is None or now - c.pull_backoff_updated > 2 * t.backoff_max:
            c.pull_backoff = t.backoff_initial
        else:
            c.pull_backoff = min(c.pull_backoff * 2, t.backoff_max)
        c.pull_backoff_updated = now

    def _run_seconds(self, c: ContainerState) -> float | None:
        ann = self.annotations.get(RUN_SECONDS_ANNOTATION)
        if ann is not None:
            try:
                return float(ann)
            except ValueError:
                pass
        spec = self.k.registry.lookup(c.image)
        s = self.k.sampler
        if spec is not None and spec.run_seconds is not None:
            return s.draw_dist(Dist.parse(spec.run_seconds, name="run_seconds"), "run:" + c.image)
        if spec is not None and spec.crashing:
            return s.draw("crash_after")
        if c.init or self.restart_policy != "Always":
            return s.draw("job_run")
        return None

    def _ready_delay(self, c: ContainerState) -> float:
        probe = c.spec.get("readinessProbe")
        base = float((probe or {}).get("initialDelaySeconds", 0) or 0) if isinstance(probe, dict) else 0.0
        return base + self.k.sampler.draw("ready_jitter")

    def _exit(self, c: ContainerState) -> tuple[int, str]:
        """The exit code (and termination message) of a container that finished running."""
        ann = self.annotations.get(EXIT_CODE_ANNOTATION)
        if ann is not None:
            try:
                return int(ann), ""
            except ValueError:
                pass
        spec = self.k.registry.lookup(c.image)
        if spec is None:
            return 0, ""
        if spec.program is not None:
            pod = self.live()
            env = {e["name"]: str(e.get("value", "")) for e in c.spec.get("env") or []
                   if isinstance(e, dict) and "name" in e and "value" in e}
            ctx = RunContext(pod=fieldset.copy(pod) if pod is not None else {}, container=c.spec, image=c.image,
                             attempt=c.restarts, now=self.env.now, env=env, cluster=self.k.cluster)
            try:
                result = spec.program(ctx)
            except Exception as exc:  # the program's failure is the container's failure
                return 1, f"{type(exc).__name__}: {exc}"
            return _exit_of(result)
        if spec.crashing:
            return 1, ""
        return spec.exit_code, ""

    def _container_loop(self, c: ContainerState, first_done: simpy.Event | None) -> Generator:
        """One container's life; returns the exit code of a container that is not restarted."""
        env, k, t = self.env, self.k, self.k.timings
        try:
            while True:
                ok = yield from self._ensure_image(c)
                if self.stopping:
                    return None
                if not ok:
                    if first_done is not None and not first_done.triggered:
                        first_done.succeed()
                    if c.reason == "ErrImageNeverPull":
                        return None
                    wait = c.pull_backoff or t.backoff_initial
                    resync = min(t.kubelet_resync, wait)
                    yield env.timeout(resync)
                    if self.stopping:
                        return None
                    c.waiting("ImagePullBackOff", f'Back-off pulling image "{c.image}": ErrImagePull: '
                                                  f"{k.registry.not_found_message(c.image)}")
                    self.event("BackOff", f'Back-off pulling image "{c.image}"')
                    self.event("Failed", "Error: ImagePullBackOff", "Warning")
                    self.sync_status()
                    yield env.timeout(wait - resync)
                    if self.stopping:
                        return None
                    continue
                blocked = next((r for r in (fn(k.store, self.ns, c.spec) for fn in k.config_checks) if r), None)
                if blocked is not None:
                    reason, message = blocked
                    c.waiting(reason, message)
                    self.event("Failed", f"Error: {message}", "Warning")
                    self.sync_status()
                    if first_done is not None and not first_done.triggered:
                        first_done.succeed()
                    yield env.timeout(t.kubelet_resync)
                    if self.stopping:
                        return None
                    continue
                yield env.timeout(k.sampler.draw("start"))
                if self.stopping:
                    return None
                if c.ever_started:
                    c.restarts += 1
                c.ever_started = True
                c.run += 1
                c.state, c.reason, c.message = "running", "", ""
                c.started_at = env.now
                c.container_id = "containerd://" + hashlib.sha256(
                    f"{self.uid}/{c.name}/{c.restarts}".encode()).hexdigest()
                self.event("Created", f"Created container: {c.name}")
                self.event("Started", f"Started container {c.name}")
                if first_done is not None and not first_done.triggered:
                    first_done.succeed()
                self.sync_status()
                run_for = self._run_seconds(c)
                if not c.init:
                    delay = self._ready_delay(c)
                    if run_for is None or delay < run_for:
                        if delay:
                            yield env.timeout(delay)
                            if self.stopping:
                                return None
                        c.ready = True
                        self.sync_status()
                        if run_for is not None:
                            run_for -= delay
                if run_for is None:
                    return None  # a server: runs until the pod is terminated
                if run_for > 0:
                    yield env.timeout(run_for)
                if self.stopping:
                    return None
                code, message = self._exit(c)
                c.state, c.ready = "terminated", False
                c.exit_code, c.message = code, message
                c.reason = "Completed" if code == 0 else "Error"
                c.finished_at = env.now
                if c.init:
                    restart = code != 0 and self.restart_policy != "Never"
                    if code == 0:
                        c.ready = True
                else:
                    restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
                if not restart:
                    self.sync_status()
                    return code
                # doBackOff: first exit restarts at once (the entry is created now); later exits wait.
                finished = env.now
                if c.crash_backoff is None or finished - c.crash_backoff_updated > 2 * t.backoff_max:
                    c.crash_backoff, c.crash_backoff_updated = t.backoff_initial, finished
                    wait = 0.0
                else:
                    wait = c.crash_backoff
                c.last_state = c.terminated_dict()
                self.sync_status()
                if wait > 0:
                    resync = min(t.kubelet_resync, wait)
                    yield env.timeout(resync)
                    if self.stopping:
                        return None
                    c.waiting("CrashLoopBackOff", f"back-off {go_duration(wait)} restarting failed "
                                                  f"container={c.name} pod={self.name}_{self.ns}({self.uid})")
                    self.event("BackOff", f"Back-off restarting failed container {c.name} in pod "
                                          f"{self.name}_{self.ns}({self.uid})", "Warning")
                    self.sync_status()
                    yield env.timeout(wait - resync)
                    if self.stopping:
                        return None
                    c.crash_backoff = min(c.crash_backoff * 2, t.backoff_max)
                    c.crash_backoff_updated = env.now
                c.waiting("ContainerCreating")
        finally:
            if first_done is not None and not first_done.triggered:
                first_done.succeed()

    # ------------------------------------------------------------------ termination
    def terminate(self) -> None:
        if self.terminating:
            return
        self.terminating = True
        self.stopping = True
        self.env.process(self._terminate())

    def _terminate(self) -> Generator:
        k = self.k
        pod = self.live()
        if pod is None:
            return
        if not self.bound_node or self.phase in _TERMINAL:
            k.store.finalize(pod)
            return
        running = [c for c in self.init_containers + self.containers if c.state == "running"]
        for c in running:
            self.event("Killing", f"Stopping container {c.name}")
        for c in self.containers:
            c.ready = False
        self.sync_status()
        grace = pod["metadata"].get("deletionGracePeriodSeconds", self.grace)
        delay = min(k.sampler.draw("termination"), grace) if running else 0.0
        if delay > 0:
            yield self.env.timeout(delay)
        pod = self.live()
        if pod is not None:
            k.store.finalize(pod)
        k.workers.pop(self.uid, None)


def _exit_of(result: Any) -> tuple[int, str]:
    if result is None or result is True:
        return 0, ""
    if result is False:
        return 1, ""
    if isinstance(result, tuple) and len(result) == 2:
        return int(result[0]), str(result[1])
    if isinstance(result, int):
        return result, ""
    return 0, str(result)


def _qos_class(spec: dict) -> str:
    requests = limits = 0
    guaranteed = True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {} if isinstance(c, dict) else {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        requests += len(req)
        limits += len(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if requests == 0 and limits == 0:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
