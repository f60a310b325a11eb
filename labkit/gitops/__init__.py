"""GitOps plumbing over real parts: git repositories, push webhooks, kustomize, postBuild.

This package is the "source" and "build" half of a reconcile (see
``shared/DESIGN.md``, data flow): where manifests live and how a revision of
them becomes a list of Kubernetes objects.  It imports only labkit's core
(``errors``, ``events``, ``clock``) and third-party libraries, never the
simulator or the engine, so the Flux and Argo CD dialects can share it.

* ``repo``        -- ``ManifestRepo``: a bare git "remote" plus working clones
  (GitPython), reproducible commits in virtual time, pull requests with
  reviewers, reverts, tags, ``set_image`` on overlays, the deploy record
  (``git log -- <path>``), revision export for rendering.
* ``webhook``     -- GitHub-style HMAC signing and a Flux-style receiver.
* ``render``      -- ``kubectl kustomize`` as a subprocess, Flux's generated
  ``kustomization.yaml`` for plain directories, confinement to the checkout.
* ``substitute``  -- Flux ``postBuild`` variable substitution (a port of
  ``fluxcd/pkg/envsubst``), strict mode, ``substituteFrom`` merging.
"""
from labkit.gitops.render import (
    BuildError,
    KubectlNotFoundError,
    ManifestError,
    PathConfinementError,
    PathNotFoundError,
    RenderError,
    RenderTimeoutError,
    Renderer,
    apply_flux_overrides,
    confine,
    find_kubectl,
    generate_kustomization,
    load_manifests,
    parse_manifests,
    render,
    render_documents,
    split_documents,
)
from labkit.gitops.repo import (
    DEFAULT_BRANCH,
    EPOCH,
    ZERO_SHA,
    Author,
    CommitInfo,
    ManifestRepo,
    MergeConflict,
    NothingToCommit,
    PullRequest,
    PushEvent,
    PushRejected,
    RefNotFound,
    WorkingCopy,
    artifact_revision,
    git_date,
    parse_artifact_revision,
    set_image_in_kustomization,
)
from labkit.gitops.substitute import (
    SubstitutionError,
    collect_variables,
    envsubst,
    gvk_string,
    is_substitution_disabled,
    substitute,
)
from labkit.gitops.webhook import (
    WebhookDelivery,
    WebhookReceiver,
    github_delivery,
    receiver_path,
    sign,
)

__all__ = [
    "DEFAULT_BRANCH", "EPOCH", "ZERO_SHA",
    "Author", "BuildError", "CommitInfo", "KubectlNotFoundError", "ManifestError", "ManifestRepo",
    "MergeConflict", "NothingToCommit", "PathConfinementError", "PathNotFoundError", "PullRequest",
    "PushEvent", "PushRejected", "RefNotFound", "RenderError", "RenderTimeoutError", "Renderer",
    "SubstitutionError", "WebhookDelivery", "WebhookReceiver", "WorkingCopy",
    "apply_flux_overrides", "artifact_revision", "collect_variables", "confine", "envsubst", "find_kubectl",
    "generate_kustomization", "git_date", "github_delivery", "gvk_string", "is_substitution_disabled",
    "load_manifests", "parse_artifact_revision", "parse_manifests", "receiver_path", "render",
    "render_documents", "set_image_in_kustomization", "sign", "split_documents", "substitute",
]
