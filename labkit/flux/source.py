"""source-controller's GitRepository reconciler.

A ``GitRepository`` is fetched on its ``interval`` (plus the controller's interval
jitter, ±5 % by default as ``--interval-jitter-percentage`` gives), or at once when
its ``reconcile.fluxcd.io/requestedAt`` annotation changes — which is what a
webhook ``Receiver`` does on a push.  Each fetch resolves the reference
(``commit`` wins, then ``name``, ``semver``, ``tag``, ``branch``; default branch
``master``) against the remote.  A new revision becomes a new *artifact*: the
tree of that commit, exported to the controller's storage, announced with its
revision in Flux's format (``main@sha1:<sha>``, ``v1.0.0@sha1:<sha>``, or
``sha1:<sha>`` for a bare commit), a ``NewArtifact`` event, and a wake-up of every
Kustomization that uses this source.

A failed fetch (the remote unreachable, a ref that does not exist, a ref that
points at a commit the remote cannot produce so the revision cannot be
exported) sets ``Ready=False`` with reason ``GitOperationFailed`` and keeps the
last artifact: the Kustomizations go on serving the last good revision.  The
fetch is retried on the next interval.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Generator

from labkit.core.workqueue import DONE, Outcome, RequeueAfter
from labkit.core.duration import format_duration
from labkit.core.errors import LabkitError, TemporaryError
from labkit.flux import conditions as C
from labkit.flux.api import GitRepositorySpec
from labkit.flux.services import FluxServices

API_VERSION = "source.toolkit.fluxcd.io/v1"
KIND = "GitRepository"
COMPONENT = "source-controller"


def ref_name(spec: GitRepositorySpec) -> tuple[str, str]:
    """``(label, ref)``: the revision label Flux prints and the ref to resolve."""
    r = spec.ref
    if r.commit:
        return "", r.commit
    if r.name:
        return r.name, r.name
    if r.semver:
        return r.semver, r.semver
    if r.tag:
        return r.tag, r.tag
    branch = r.branch or "master"
    return branch, branch


def artifact_revision(label: str, sha: str) -> str:
    return f"{label}@sha1:{sha}" if label else f"sha1:{sha}"


class GitRepositoryReconciler:
    """One GitRepository's reconcile (driven by ``FluxSystem`` on the reconcile driver)."""

    def __init__(self, system: FluxServices, namespace: str, name: str):
        self.system = system
        self.namespace = namespace
        self.name = name
        self.key = f"{KIND}/{namespace}/{name}"
        self.rng = system.rng(f"gitrepo:{namespace}/{name}")

    def reconcile(self, obj: dict[str, Any]) -> Generator[Any, Any, Outcome]:
        sys_ = self.system
        env = sys_.env
        try:
            spec = GitRepositorySpec.from_obj(obj)
        except LabkitError as err:
            self._status(obj, False, "InvalidSpec", str(err))
            return DONE
        if spec.suspend:
            sys_.log.record(COMPONENT, "Suspended", self.key, detail={"message": "Reconciliation is suspended for this object"})
            return DONE
        started = env.now
        yield env.timeout(sys_.timings.draw(self.rng, "git_fetch"))
        label, ref = ref_name(spec)
        status = dict(obj.get("status") or {})
        current = (status.get("artifact") or {}).get("revision", "")
        try:
            repo = sys_.git_remote(spec.url)
            sha = repo.fetch(ref)
        except TemporaryError as err:
            msg = err.message
            sys_.log.record(COMPONENT, C.GIT_OPERATION_FAILED, self.key, revision=current, detail={"message": msg})
            self._status(obj, False, C.GIT_OPERATION_FAILED, msg)
            return self._next(spec)
        except LabkitError as err:
            msg = f"failed to checkout and determine revision: {err}"
            sys_.log.record(COMPONENT, C.GIT_OPERATION_FAILED, self.key, revision=current, detail={"message": msg})
            self._status(obj, False, C.GIT_OPERATION_FAILED, msg)
            return self._next(spec)
        revision = artifact_revision(label, sha)
        sys_.log.record(COMPONENT, "Fetched", self.key, revision=revision,
                        detail={"stage": "fetch", "started": started, "duration": env.now - started})
        known = sys_.artifact_for(KIND, self.namespace, self.name)
        if revision != current or known is None:
            try:
                exported = repo.export(sha)
            except LabkitError as err:  # e.g. the remote named a commit it does not have
                msg = f"failed to checkout and determine revision: {err}"
                sys_.log.record(COMPONENT, C.GIT_OPERATION_FAILED, self.key, revision=current, detail={"message": msg})
                self._status(obj, False, C.GIT_OPERATION_FAILED, msg)
                return self._next(spec)
            sys_.store_artifact(self.namespace, self.name, sha, exported)
            status["artifact"] = {
                "path": f"gitrepository/{self.namespace}/{self.name}/{sha}.tar.gz",
                "revision": revision,
                "lastUpdateTime": sys_.timestamp(),
                "url": f"http://source-controller.flux-system.svc.cluster.local./gitrepository/{self.namespace}/{self.name}/{sha}.tar.gz",
            }
            sys_.log.record(COMPONENT, "NewArtifact", self.key, revision=revision,
                            detail={"message": f"stored artifact for commit '{sha[:7]}'"})
            obj = dict(obj, status=status)
            self._status(obj, True, "Succeeded", f"stored artifact for revision '{revision}'")
            sys_.source_changed(self.namespace, self.name)
        else:
            self._status(obj, True, "Succeeded", f"stored artifact for revision '{revision}'")
        return self._next(spec)

    def report_error(self, obj: dict[str, Any], err: Any, retry_in: float) -> None:
        """Report an API error the driver caught (``Ready=False``, ``ReconciliationFailed``)."""
        self._status(obj, False, C.FAILED,
                     f"reconciliation failed ({err.reason}): {err.message}; retrying in {format_duration(retry_in)}")

    def _next(self, spec: GitRepositorySpec) -> RequeueAfter:
        jitter = self.system.interval_jitter
        return RequeueAfter(spec.interval * (1 + self.rng.uniform(-jitter, jitter)) if jitter else spec.interval)

    def _status(self, obj: dict[str, Any], ready: bool, reason: str, message: str) -> None:
        sys_ = self.system
        status = dict(obj.get("status") or {})
        status["conditions"] = [dict(c) for c in status.get("conditions") or []]
        gen = (obj.get("metadata") or {}).get("generation")
        now = sys_.timestamp()
        C.set_condition(status, C.READY, ready, reason, message, now, gen)
        if ready:
            C.set_condition(status, "ArtifactInStorage", True, "Succeeded", message, now, gen)
        status["observedGeneration"] = gen
        requested = ((obj.get("metadata") or {}).get("annotations") or {}).get("reconcile.fluxcd.io/requestedAt")
        if requested:
            status["lastHandledReconcileAt"] = requested
        sys_.write_status(API_VERSION, KIND, self.name, self.namespace, status)
