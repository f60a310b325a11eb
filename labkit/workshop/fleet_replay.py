"""Replaying a participant's history into the sample fleet (``FleetLab``), on a schedule of virtual time.

The exercise folder of the FleetLab exercises (tour, promotion, drift,
rollback) is the root of the fleet repository, as ``flux bootstrap`` leaves it
and as ``FleetLab`` seeds it from the project's ``clusters/`` tree:
``staging/`` and ``prod/`` (each cluster's ``flux-system`` bootstrap objects
and its ``apps`` Kustomization) and ``apps/podinfo/`` (base and overlays).
``fleet_files()`` is that tree, the starting point every exercise edits.

``FleetReplay.run`` builds a fresh ``FleetLab`` (Flux bootstrapped in each
environment from the lab's own repository), commits the exercise's start
state over the seeded tree at t = 0 — before any controller has run, so Flux's
first fetch already sees it — and then pushes the participant's commits one by
one at ``first_at``, ``first_at + gap`` ...; between pushes the clock runs.
Nothing the participant wrote is interpreted here: Flux fetches, builds with
real kustomize, applies and health-checks it, and what a controller refuses
(a build error, an invalid spec) is in the event log like anything else.

**Webhooks.**  ``flux bootstrap`` installs notification-controller; a Flux
``Receiver`` in git (``notification.toolkit.fluxcd.io/v1``) is how a cluster
gets push webhooks.  ``NotificationController`` models that part: it installs
the ``Receiver`` CRD, the platform team's ``webhook-token`` Secret (created
out of band, never in git), and the git host's webhook, which the platform team
pointed at ``/hook/<sha256(token + "github-receiver" + "flux-system")>`` — the
path notification-controller serves for a Receiver named ``github-receiver`` in
``flux-system`` whose ``secretRef`` holds that token.  Each push is delivered
(signed, after a seeded network delay) to that path: with no such Receiver in
the cluster the answer is 404; otherwise the delivery is verified against the
Receiver's ``type``, token and ``events`` (``labkit.gitops.webhook``) and every
object in its ``resources`` is annotated with ``reconcile.fluxcd.io/requestedAt``
(a missing one is logged, as the controller does).  So whether a commit is
picked up at once follows from what is in the cluster, applied from git.
"""
from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import yaml

from labkit.workshop.model import History
from labkit.workshop.yamltext import yaml_dump, yaml_dump_all

__all__ = ["FLEET_DIRS", "RECEIVER_API", "RECEIVER_NAME", "TOKEN_SECRET", "FleetReplay", "NotificationController",
           "fleet_files", "receiver_yaml", "add_receiver", "set_in_yaml", "failures", "deliveries",
           "podinfo_status", "restored", "pod_problem", "DeploymentTrace", "webhook_story", "fmt_s", "fmt_min"]

#: The parts of ``clusters/`` that are the fleet repository (the rest are cluster definitions).
FLEET_DIRS = ("apps/", "staging/", "prod/")
RECEIVER_API = "notification.toolkit.fluxcd.io/v1"
RECEIVER_NAME = "github-receiver"
TOKEN_SECRET = "webhook-token"
FLUX_NS = "flux-system"
NC = "notification-controller"


def fleet_files() -> dict[str, str]:
    """The sample fleet's repository: every file under ``clusters/{apps,staging,prod}`` (path → text)."""
    from labkit.scenarios.lab import clusters_dir

    root = clusters_dir()
    files: dict[str, str] = {}
    for top in FLEET_DIRS:
        for p in sorted((root / top).rglob("*")):
            if p.is_file():
                files[p.relative_to(root).as_posix()] = p.read_text(encoding="utf-8")
    return files


def _repo_files(files: Mapping[str, str]) -> dict[str, str]:
    """What of the exercise folder goes into the lab's repository (its instructions do not)."""
    return {p: t for p, t in files.items() if not p.endswith(".md")}


# ---------------------------------------------------------------------- editing helpers (solutions, wrong answers)

def set_in_yaml(text: str, kind: str, fn: Callable[[dict], None]) -> str:
    """Apply ``fn`` to every document of ``kind`` in ``text`` (a ``---``-separated file), keeping comments above."""
    head = []
    for line in text.splitlines():
        if line.startswith("#") or line.strip() in ("", "---"):
            head.append(line)
            continue
        break
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        if d.get("kind") == kind:
            fn(d)
    body = yaml_dump_all(docs, sort_keys=False)
    prefix = "\n".join(h for h in head if h.startswith("#"))
    return (prefix + "\n---\n" if prefix else "") + body


def receiver_yaml(*, name: str = RECEIVER_NAME, events: Iterable[str] | None = ("ping", "push"),
                  resources: Iterable[tuple[str, str]] = (("GitRepository", "flux-system"),),
                  secret: str = TOKEN_SECRET, kind_api: str = "source.toolkit.fluxcd.io/v1") -> str:
    """A Flux ``Receiver`` of type ``github`` as Flux's docs write it."""
    spec: dict[str, Any] = {"type": "github"}
    if events is not None:
        spec["events"] = list(events)
    spec["secretRef"] = {"name": secret}
    spec["resources"] = [{"apiVersion": kind_api, "kind": k, "name": n} for k, n in resources]
    return yaml_dump({"apiVersion": RECEIVER_API, "kind": "Receiver",
                           "metadata": {"name": name, "namespace": FLUX_NS}, "spec": spec}, sort_keys=False)


def add_receiver(files: Mapping[str, str], environment: str = "staging", *, listed: bool = True,
                 **receiver: Any) -> dict[str, str]:
    """The changes that add ``<env>/flux-system/receiver.yaml`` (and list it in that folder's kustomization.yaml)."""
    out = {f"{environment}/flux-system/receiver.yaml": receiver_yaml(**receiver)}
    if listed:
        kpath = f"{environment}/flux-system/kustomization.yaml"
        k = yaml.safe_load(files[kpath])
        if "receiver.yaml" not in k["resources"]:
            k["resources"].append("receiver.yaml")
        out[kpath] = yaml_dump(k, sort_keys=False)
    return out


# ---------------------------------------------------------------------- notification-controller

def _receiver_crd() -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "receivers.notification.toolkit.fluxcd.io",
                         "labels": {"app.kubernetes.io/part-of": "flux"}},
            "spec": {"group": "notification.toolkit.fluxcd.io", "scope": "Namespaced",
                     "names": {"kind": "Receiver", "listKind": "ReceiverList", "plural": "receivers",
                               "singular": "receiver", "shortNames": ["rcv"]},
                     "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


class NotificationController:
    """Receivers in one cluster, and the git host's webhook pointed at them (see the module docstring)."""

    def __init__(self, lab: Any, environment: str, *, token: str | None = None, receiver: str = RECEIVER_NAME,
                 namespace: str = FLUX_NS):
        from labkit.gitops.webhook import receiver_path
        from labkit.scenarios.lab import WEBHOOK_TOKEN

        self.lab = lab
        self.environment = environment
        self.cluster = lab.cluster(environment)
        self.flux = lab.flux[environment]
        self.log = self.cluster.log
        self._token = token or WEBHOOK_TOKEN
        self.cluster.apply(_receiver_crd(), field_manager="flux")
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": TOKEN_SECRET, "namespace": FLUX_NS},
                  "type": "Opaque", "data": {"token": base64.b64encode(self._token.encode()).decode()}}
        self.cluster.apply(secret, field_manager="kubectl-client-side-apply")  # `kubectl create secret`, by hand
        #: what the platform team configured in the git host's webhook settings
        self.hook_path = receiver_path(self._token, receiver, namespace)
        self._rng = self.flux.rng("github-webhook")
        lab.repo.on_push(self._on_push)

    # the git host's side
    def _on_push(self, event: Any) -> None:
        from labkit.gitops.webhook import github_delivery

        headers, body = github_delivery(event.payload, self._token)
        self.lab.env.process(self._deliver(headers, body, event.after))

    def _deliver(self, headers: dict, body: bytes, after: str):
        yield self.lab.env.timeout(self.flux.timings.draw(self._rng, "webhook_delivery"))
        self.receive(self.hook_path, headers, body, after)

    # notification-controller's side
    def _token_of(self, rcv: dict) -> str | None:
        ref = ((rcv.get("spec") or {}).get("secretRef") or {}).get("name")
        ns = rcv["metadata"].get("namespace", FLUX_NS)
        secret = self.cluster.get("v1", "Secret", ref, ns) if ref else None
        raw = ((secret or {}).get("data") or {}).get("token")
        if not raw:
            return None
        try:
            return base64.b64decode(raw).decode()
        except ValueError:
            return None

    def receive(self, path: str, headers: dict, body: bytes, after: str = "") -> bool:
        from labkit.gitops.webhook import WebhookReceiver, receiver_path

        for rcv in self.cluster.list(RECEIVER_API, "Receiver"):
            token = self._token_of(rcv)
            md = rcv["metadata"]
            if token is None or receiver_path(token, md["name"], md.get("namespace", FLUX_NS)) != path:
                continue
            spec = rcv.get("spec") or {}
            key = f"Receiver/{md.get('namespace', FLUX_NS)}/{md['name']}"
            if spec.get("type") != "github":
                self.log.record(NC, "WebhookRejected", key, after,
                                {"status": 400, "reason": f"the Receiver's type is {spec.get('type')!r}: a GitHub "
                                 "delivery is only verified by a 'github' Receiver"})
                return False
            receiver = WebhookReceiver(token, self.log, name=md["name"], namespace=md.get("namespace", FLUX_NS),
                                       events=[str(e) for e in spec.get("events") or ()], component=NC)
            receiver.subscribe(lambda _d, rcv=rcv: self._dispatch(rcv, after))
            return receiver.receive(headers, body, time=self.lab.now)
        self.log.record(NC, "WebhookRejected", f"Receiver/{FLUX_NS}/?", after,
                        {"status": 404, "reason": f"no Receiver serves {path[:18]}…: 404 page not found"})
        return False

    def _dispatch(self, rcv: dict, after: str) -> None:
        md = rcv["metadata"]
        ns = md.get("namespace", FLUX_NS)
        for res in (rcv.get("spec") or {}).get("resources") or []:
            kind, name = res.get("kind", ""), res.get("name", "")
            obj = None
            if kind in ("GitRepository", "Kustomization"):
                api = "source.toolkit.fluxcd.io/v1" if kind == "GitRepository" else "kustomize.toolkit.fluxcd.io/v1"
                obj = self.cluster.get(api, kind, name, res.get("namespace") or ns)
            if obj is None:
                self.log.record(NC, "WebhookDispatchFailed", f"Receiver/{ns}/{md['name']}", after,
                                {"reason": f"unable to annotate resource '{kind}/{res.get('namespace') or ns}/{name}': "
                                 "not found"})
                continue
            self.flux.request_reconcile(kind, name, res.get("namespace") or ns)
            self.log.record(NC, "ResourceAnnotated", f"{kind}/{res.get('namespace') or ns}/{name}", after,
                            {"receiver": md["name"]})


class TreeKeyedRenderer:
    """A Flux render cache keyed by the revision's *tree* instead of its commit.

    A render depends only on the files of the revision (and the Kustomization's
    build settings), so a revert — which brings a tree back — or a second bad
    release identical to the first need not run kustomize again.  Everything
    else is delegated to the Flux system's own ``Renderer``.
    """

    def __init__(self, inner: Any, repo: Any):
        self._inner = inner
        self._repo = repo
        self._trees: dict[str, str] = {}
        self._cache: dict[tuple[str, str, str, str], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _key(self, how: str, directory: Any, key: str | None, overrides: Any) -> tuple[str, str, str, str] | None:
        if key is None:
            return None
        tree = self._trees.get(key)
        if tree is None:
            try:
                tree = self._repo.git.commit(key).tree.hexsha
            except Exception:  # noqa: BLE001 - not a commit of this repository: no sharing
                return None
            self._trees[key] = tree
        return (how, tree, str(directory), json.dumps(overrides or {}, sort_keys=True, default=str))

    def _cached(self, how: str, directory: Any, root: Any, key: str | None, overrides: Any) -> Any:
        ck = self._key(how, directory, key, overrides)
        if ck is not None and ck in self._cache:
            hit = self._cache[ck]
            if isinstance(hit, BaseException):
                raise hit
            return copy.deepcopy(hit)
        from labkit.gitops.render import BuildError, PathConfinementError, PathNotFoundError
        from labkit.gitops.sandbox import RemoteRefused

        fn = getattr(self._inner, how)
        try:
            out = fn(directory, root=root, key=key, overrides=overrides)
        except (BuildError, PathConfinementError, PathNotFoundError, RemoteRefused) as exc:
            # deterministic for a tree, as the inner Renderer treats them (a timeout is not remembered)
            if ck is not None:
                self._cache[ck] = exc
            raise
        if ck is not None:
            self._cache[ck] = copy.deepcopy(out)
        return out

    def render(self, directory: Any, *, root: Any = None, key: str | None = None, overrides: Any = None) -> Any:
        return self._cached("render", directory, root, key, overrides)

    def render_documents(self, directory: Any, *, root: Any = None, key: str | None = None,
                         overrides: Any = None) -> Any:
        return self._cached("render_documents", directory, root, key, overrides)


# ---------------------------------------------------------------------- the replay

@dataclass
class FleetReplay:
    """The history replayed into a ``FleetLab`` (see the module docstring)."""

    lab: Any
    pushed_at: list[float] = field(default_factory=list)  # virtual time of each participant commit
    shas: list[str] = field(default_factory=list)  # the lab-repository commit of each participant commit
    notifications: dict[str, NotificationController] = field(default_factory=dict)

    @classmethod
    def start(cls, history: History, *, environments: Iterable[str] = ("staging",), seed: int = 0,
              registry: Any = None, **lab_kwargs: Any) -> "FleetReplay":
        """A fresh lab with the exercise's start state committed at t = 0 (no participant commit yet)."""
        from labkit.scenarios.lab import FleetLab

        lab = FleetLab(seed=seed, environments=tuple(environments), registry=registry, **lab_kwargs)
        rep = cls(lab)
        try:
            for env_name in lab.clusters:
                lab.flux[env_name].renderer = TreeKeyedRenderer(lab.flux[env_name].renderer, lab.repo)
                rep.notifications[env_name] = NotificationController(lab, env_name)
            seeded = {p: lab.repo.read(p) for p in lab.repo.files()}
            rep._commit(_repo_files(history.start), seeded, "exercise start", author="platform")
        except BaseException:
            lab.close()
            raise
        return rep

    @classmethod
    def run(cls, history: History, *, first_at: float, gap: float = 600.0, environments: Iterable[str] = ("staging",),
            seed: int = 0, registry: Any = None, on_start: Callable[[Any], None] | None = None,
            **lab_kwargs: Any) -> "FleetReplay":
        """``start``, then each participant commit pushed at ``first_at + i * gap``; the clock stops at the last."""
        rep = cls.start(history, environments=environments, seed=seed, registry=registry, **lab_kwargs)
        try:
            if on_start is not None:
                on_start(rep.lab)
            rep.push_commits(history, first_at=first_at, gap=gap)
        except BaseException:
            rep.lab.close()
            raise
        return rep

    def push_commits(self, history: History, *, first_at: float, gap: float = 600.0) -> None:
        previous = _repo_files(history.start)
        for i, commit in enumerate(history.commits):
            self.lab.run(first_at + i * gap)
            files = _repo_files(commit.files)
            sha = self._commit(files, previous, commit.message or "participant commit", author="participant")
            self.pushed_at.append(self.lab.now)
            self.shas.append(sha or self.lab.repo.head())
            previous = files

    def _commit(self, files: Mapping[str, str], previous: Mapping[str, str], message: str, *,
                author: str) -> str | None:
        from labkit.gitops.repo import NothingToCommit

        changes: dict[str, str | None] = {p: t for p, t in files.items() if previous.get(p) != t}
        changes.update({p: None for p in previous if p not in files})
        if not changes:
            return None
        try:
            return self.lab.repo.commit(changes, message=message, author=author, when=self.lab.now)
        except NothingToCommit:
            return None

    def close(self) -> None:
        self.lab.close()


# ---------------------------------------------------------------------- reading the outcome

def failures(lab: Any, environment: str, since: float = 0.0, until: float | None = None) -> list[dict[str, Any]]:
    """Failed reconciles of Flux objects in ``environment`` (time, object, reason, message), oldest first."""
    out = []
    for e in lab.cluster(environment).log.filter(event="ReconciliationFailed", since=since):
        if until is not None and e.time > until:
            continue
        out.append({"time": e.time, "object": e.object, "reason": e.detail.get("reason", ""),
                    "message": _short(str(e.detail.get("message", "")))})
    for e in lab.cluster(environment).log.filter(component="source-controller", event="GitOperationFailed",
                                                 since=since):
        if until is None or e.time <= until:
            out.append({"time": e.time, "object": e.object, "reason": "GitOperationFailed",
                        "message": _short(str(e.detail.get("message", "")))})
    return sorted(out, key=lambda r: r["time"])


def _short(message: str, limit: int = 240) -> str:
    """A controller message for one line of feedback: the lab's artifact paths dropped, cut at ``limit``."""
    text = re.sub(r"\S*/artifacts/[0-9a-f]{40}/", "", message.strip().splitlines()[0] if message.strip() else "")
    if len(text) <= limit:
        return text
    head = limit // 3  # where it failed is at the start, why at the end (kustomize nests its errors)
    return text[:head] + " … " + text[len(text) - (limit - head - 3):]


def deliveries(lab: Any, environment: str, since: float = 0.0) -> dict[str, Any]:
    """What notification-controller did with the git host's deliveries since ``since``: counts and the last reasons."""
    log = lab.cluster(environment).log
    received = log.filter(component=NC, event="WebhookReceived", since=since)
    rejected = log.filter(component=NC, event="WebhookRejected", since=since)
    failed = log.filter(component=NC, event="WebhookDispatchFailed", since=since)
    annotated = log.filter(component=NC, event="ResourceAnnotated", since=since)
    return {"received": len(received), "rejected": len(rejected), "annotated": len(annotated),
            "receiver": received[-1].object.rsplit("/", 1)[-1] if received else "",
            "rejected_reason": rejected[-1].detail.get("reason", "") if rejected else "",
            "dispatch_failed": failed[-1].detail.get("reason", "") if failed else ""}


def webhook_story(d: Mapping[str, Any]) -> str:
    """One clause on what became of the webhook deliveries (``deliveries``' result)."""
    if d["annotated"]:
        return f"{d['annotated']} webhook deliveries refreshed the source"
    if d["received"] and d["dispatch_failed"]:
        return (f"Receiver {d.get('receiver') or '?'} accepted {d['received']} deliveries but refreshed nothing: "
                f"{d['dispatch_failed']}")
    if d["rejected"]:
        return f"{d['rejected']} webhook deliveries were rejected: {d['rejected_reason']}"
    return "no webhook delivery arrived"


def podinfo_status(lab: Any, environment: str) -> dict[str, Any]:
    """podinfo's Deployment in ``environment``: tag, kstatus, replicas ready/updated/wanted."""
    from labkit.core.health import kstatus

    dep = lab.deployment(environment)
    if dep is None:
        return {"tag": None, "status": "NotFound", "ready": 0, "updated": 0, "replicas": 0}
    st = dep.get("status") or {}
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    return {"tag": image.rsplit(":", 1)[-1], "status": kstatus(dep).status, "ready": int(st.get("readyReplicas") or 0),
            "updated": int(st.get("updatedReplicas") or 0), "replicas": int(dep["spec"].get("replicas") or 0)}


def restored(lab: Any, environment: str, tag: str) -> bool:
    """podinfo runs ``tag`` on every replica, the rollout complete (kstatus Current)."""
    s = podinfo_status(lab, environment)
    return s["tag"] == tag and s["status"] == "Current"


def pod_problem(lab: Any, environment: str) -> str:
    """Why podinfo's newest pods are not ready, in the kubelet's words (``ImagePullBackOff: ...``), or ''."""
    ns = f"podinfo-{environment}"
    for pod in sorted(lab.cluster(environment).list("v1", "Pod", ns),
                      key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                msg = str(waiting.get("message", "")).strip()
                return waiting["reason"] + (f" ({_short(msg, 120)})" if msg else "")
    return ""


class DeploymentTrace:
    """Every change of podinfo's Deployment in one environment: time, tag, memory limit, kstatus (a watch)."""

    def __init__(self, lab: Any, environment: str):
        self.lab = lab
        self.environment = environment
        self.rows: list[dict[str, Any]] = []
        self._name, self._ns = "podinfo", f"podinfo-{environment}"
        lab.cluster(environment).watch("apps/v1", "Deployment", self._on)

    def _on(self, event_type: str, obj: dict) -> None:
        from labkit.core.health import kstatus

        md = obj.get("metadata") or {}
        if md.get("name") != self._name or md.get("namespace") != self._ns:
            return
        if event_type == "DELETED":
            self.rows.append({"time": self.lab.now, "tag": None, "memory": None, "status": "Deleted", "ready": 0})
            return
        c = obj["spec"]["template"]["spec"]["containers"][0]
        row = {"time": self.lab.now, "tag": c["image"].rsplit(":", 1)[-1],
               "memory": ((c.get("resources") or {}).get("limits") or {}).get("memory"),
               "status": kstatus(obj).status, "ready": int((obj.get("status") or {}).get("readyReplicas") or 0)}
        last = self.rows[-1] if self.rows else None
        if last is None or any(last[k] != row[k] for k in ("tag", "memory", "status", "ready")):
            self.rows.append(row)

    def first(self, since: float = 0.0, **match: Any) -> float | None:
        """The first time at or after ``since`` the Deployment matched every ``key=value`` (None if never)."""
        for r in self.rows:
            if r["time"] >= since and all(r[k] == v for k, v in match.items()):
                return r["time"]
        return None

    def value_at(self, t: float, key: str) -> Any:
        val = None
        for r in self.rows:
            if r["time"] > t:
                break
            val = r[key]
        return val


def fmt_s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f} s"


def fmt_min(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds / 60:.1f} min"

