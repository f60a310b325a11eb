"""Resource hooks: which objects are hooks, in which phases they run, and when they are deleted.

An object annotated ``argocd.argoproj.io/hook`` is not a managed resource but a
*hook*: it is created afresh by every sync, in the phases the annotation lists
(comma-separated) — ``PreSync`` (before anything is applied), ``Sync`` (with the
resources, in their waves), ``PostSync`` (after every resource is applied and
Healthy), ``SyncFail`` (only when the sync fails) — or it is ``Skip``-ped
entirely (``Skip`` alone: the object is neither applied nor tracked).
``PreDelete`` / ``PostDelete`` hooks are recognised but not run by labkit (see
``labkit.argo.controller``).  Hooks are not part of the Application's sync
status or health; they show up in the operation's ``syncResult`` with their
``hookType`` and ``hookPhase``.

Names: a hook with a ``metadata.name`` keeps it; one with only
``metadata.generateName`` is given ``<generateName><revision[:7]>-<phase>-<unix
start time>`` (lower-cased), as gitops-engine does, so each sync creates a new
object.

Delete policies (``argocd.argoproj.io/hook-delete-policy``, comma-separated;
default ``BeforeHookCreation``, as in ``hook.DeletePolicies``):

* ``BeforeHookCreation`` — an existing hook of the same name is deleted (and
  waited for) before the new one is created; without it, re-applying a Job
  with a changed template fails with ``field is immutable`` (argo-cd #7430);
* ``HookSucceeded`` — deleted when the whole sync operation succeeds;
* ``HookFailed`` — deleted when the sync operation fails.

Helm's ``helm.sh/hook`` annotations are read too when no Argo annotation is
present (``pre-install``/``pre-upgrade`` → PreSync, ``post-install``/
``post-upgrade`` → PostSync), as gitops-engine maps them.

An unknown hook type is an error here (gitops-engine silently drops it, and
the hook then never runs): ``validate_hook`` reports it naming the object and
the annotation, so a typo such as ``PreSinc`` is caught before anything is
applied.
"""
from __future__ import annotations

from typing import Any, Mapping

from labkit.core.errors import LabkitError

__all__ = [
    "HOOK_ANNOTATION",
    "DELETE_POLICY_ANNOTATION",
    "HELM_HOOK_ANNOTATION",
    "HOOK_TYPES",
    "RUN_PHASES",
    "DELETE_POLICIES",
    "hook_types",
    "is_hook",
    "is_skipped",
    "delete_policies",
    "validate_hook",
    "hook_name",
]

HOOK_ANNOTATION = "argocd.argoproj.io/hook"
DELETE_POLICY_ANNOTATION = "argocd.argoproj.io/hook-delete-policy"
HELM_HOOK_ANNOTATION = "helm.sh/hook"
HELM_DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy"
HOOK_TYPES = ("PreSync", "Sync", "PostSync", "SyncFail", "Skip", "PreDelete", "PostDelete")
RUN_PHASES = ("PreSync", "Sync", "PostSync", "SyncFail")
DELETE_POLICIES = ("HookSucceeded", "HookFailed", "BeforeHookCreation")
_HELM_TYPES = {"pre-install": "PreSync", "pre-upgrade": "PreSync", "post-install": "PostSync",
               "post-upgrade": "PostSync", "pre-delete": "PreDelete", "post-delete": "PostDelete"}
_HELM_POLICIES = {"before-hook-creation": "BeforeHookCreation", "hook-succeeded": "HookSucceeded",
                  "hook-failed": "HookFailed"}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _csv(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def hook_types(obj: Mapping[str, Any]) -> list[str]:
    """The hook types an object declares (Argo's annotation first, Helm's as a fallback)."""
    ann = _annotations(obj)
    if HOOK_ANNOTATION in ann:
        return [t for t in _csv(ann[HOOK_ANNOTATION]) if t in HOOK_TYPES]
    return [_HELM_TYPES[t] for t in _csv(ann.get(HELM_HOOK_ANNOTATION)) if t in _HELM_TYPES]


def is_skipped(obj: Mapping[str, Any]) -> bool:
    """``argocd.argoproj.io/hook: Skip`` alone: the object takes no part in the sync."""
    types = hook_types(obj)
    return types == ["Skip"]


def is_hook(obj: Mapping[str, Any]) -> bool:
    ann = _annotations(obj)
    if HOOK_ANNOTATION in ann:
        return not is_skipped(obj)
    return bool(hook_types(obj))


def delete_policies(obj: Mapping[str, Any]) -> list[str]:
    ann = _annotations(obj)
    out = [p for p in _csv(ann.get(DELETE_POLICY_ANNOTATION)) if p in DELETE_POLICIES]
    out += [_HELM_POLICIES[p] for p in _csv(ann.get(HELM_DELETE_POLICY_ANNOTATION)) if p in _HELM_POLICIES]
    return out or ["BeforeHookCreation"]


def validate_hook(obj: Mapping[str, Any], *, source: str | None = None) -> None:
    """Refuse unknown hook types and delete policies, naming the object and annotation."""
    ann = _annotations(obj)
    md = obj.get("metadata") or {}
    ident = f"{obj.get('kind')}/{md.get('namespace') + '/' if md.get('namespace') else ''}{md.get('name') or md.get('generateName') or ''}"
    for key, allowed in ((HOOK_ANNOTATION, HOOK_TYPES), (DELETE_POLICY_ANNOTATION, DELETE_POLICIES)):
        if key not in ann:
            continue
        values = _csv(ann[key])
        if not values:
            raise LabkitError(f"{ident}: empty value", file=source, field=f'metadata.annotations["{key}"]')
        for v in values:
            if v not in allowed:
                what = "hook type" if key == HOOK_ANNOTATION else "hook delete policy"
                raise LabkitError(f'{ident}: unknown {what} "{v}" (expected one of {", ".join(allowed)})',
                                  file=source, field=f'metadata.annotations["{key}"]')
    if is_hook(obj) and not md.get("name") and not md.get("generateName"):
        raise LabkitError(f"{ident}: a hook needs metadata.name or metadata.generateName", file=source,
                          field="metadata.name")


def hook_name(obj: Mapping[str, Any], revision: str, phase: str, started_unix: int) -> str:
    """The object name of a hook for one sync (generateName hooks get a per-sync suffix)."""
    md = obj.get("metadata") or {}
    if md.get("name"):
        return md["name"]
    rev = revision[:7] if len(revision) >= 8 else revision
    return f"{md.get('generateName', '')}{rev}-{phase}-{started_unix}".lower()
