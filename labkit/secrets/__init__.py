"""Secrets the GitOps way: sealed secrets, SOPS with age, external secrets, and a plaintext guard.

Git is not a secret store, and this is where real GitOps adoptions stall.  The
lab therefore uses the real cryptography and the real tools for the three
answers the ecosystem gives, plus the guard that keeps the fourth answer —
"just commit it" — out:

``labkit.secrets.sealed``
    Bitnami Sealed Secrets: ``kubeseal`` seals each value for the controller's
    public certificate (RSA-OAEP-SHA256 wrapping a one-time AES-256-GCM key,
    scope bound as the OAEP label, upstream's exact wire format); the
    controller (``install_sealed_secrets``) unseals into owned Secrets, adds a
    key every renewal period, and cannot open anything once its keys are lost.
``labkit.secrets.sops``
    Mozilla/CNCF SOPS with age keys, run as the real ``sops`` binary; Flux's
    Kustomization ``decryption`` (``flux_decrypt``, called by
    ``labkit.flux.kustomize`` during the build) with Flux's own failure messages.
``labkit.secrets.external``
    The External Secrets Operator's ``SecretStore`` / ``ExternalSecret``
    reconcile (``install_external_secrets``) against an in-lab secrets manager
    with versions, rotation and an access policy — or against AWS Secrets
    Manager's real API served by moto on 127.0.0.1.
``labkit.secrets.guard``
    ``check_changes`` / ``guarded_commit`` / ``GuardedRepo``: a pre-commit
    check that refuses plaintext Secrets and credential-looking base64, and
    ``scan_history`` for what got in before.
``labkit.secrets.podconfig``
    The kubelet's view of a missing Secret at container start
    (``CreateContainerConfigError``), for the simulator's kubelet hook.

Layering: this package imports the core (``labkit.core.errors``, ``events``,
``clock``, ``cluster``) and the simulator's work queue
(``labkit.core.workqueue``) for its operators, which run as SimPy
processes like the built-in controllers.  The operators reach the cluster only
through the ``labkit.core.cluster`` seam (get, list, create, update, patch_status,
watch), never a backend's store, so they run on ``SimCluster`` and on a real
API server (``KubeCluster`` bound to a clock) alike; the Flux dialect imports
``labkit.secrets.sops``.  No secret value is ever written to the event log,
a status or an error message.
"""
from __future__ import annotations

from labkit.secrets.external import (ExternalSecretsOperator, MotoSecretsManagerServer, SecretsManager,
                                     install_external_secrets)
from labkit.secrets.guard import (Finding, GuardedRepo, PlaintextSecretRefused, check_changes, guarded_commit,
                                  scan_history)
from labkit.secrets.sealed import SealedSecretsController, install_sealed_secrets, seal, unseal
from labkit.secrets.sops import AgeKey, CreationRule, flux_decrypt, sops_config

__all__ = [
    "AgeKey", "CreationRule", "ExternalSecretsOperator", "Finding", "GuardedRepo", "MotoSecretsManagerServer",
    "PlaintextSecretRefused", "SealedSecretsController", "SecretsManager", "check_changes", "flux_decrypt",
    "guarded_commit", "install_external_secrets", "install_sealed_secrets", "scan_history", "seal", "sops_config",
    "unseal",
]
