"""What the kubelet checks about Secrets before it starts a container (for a kubelet hook).

Before starting a container the kubelet builds its environment
(``kubelet_pods.go``, ``makeEnvironmentVariables``).  An ``env[].valueFrom.secretKeyRef``
or ``envFrom[].secretRef`` naming a Secret that does not exist — and is not
``optional: true`` — stops it: the container stays ``waiting`` with reason
``CreateContainerConfigError`` and message ``secret "db-credentials" not found``
(a missing key: ``couldn't find key password in Secret podinfo/db-credentials``),
the kubelet records a ``Warning`` event ``Failed`` "Error: secret
\\"db-credentials\\" not found", and it retries on every pod sync, starting the
container as soon as the Secret (or key) appears.  A missing Secret *volume*
blocks earlier, at mount time (``FailedMount``: ``MountVolume.SetUp failed for
volume "creds" : secret "db-credentials" not found``), with the container in
``ContainerCreating``.

``container_config_error`` computes exactly that verdict from the API store;
the simulator's kubelet calls it when its ``config_checks`` hook is present
(see ``install_pod_secret_checks``).  Nothing here reads or returns a value.
"""
from __future__ import annotations

import base64
from typing import Any, Mapping

__all__ = ["container_config_error", "volume_mount_error", "install_pod_secret_checks"]


def _secret(store: Any, namespace: str, name: str) -> dict | None:
    return store.ref("", "Secret", namespace, name)


def container_config_error(store: Any, namespace: str, container: Mapping[str, Any]) -> tuple[str, str] | None:
    """``("CreateContainerConfigError", message)`` when the container's env cannot be built, else None."""
    for src in container.get("envFrom") or ():
        ref = (src or {}).get("secretRef")
        if not ref:
            continue
        if _secret(store, namespace, ref.get("name", "")) is None and not ref.get("optional"):
            return "CreateContainerConfigError", f'secret "{ref.get("name", "")}" not found'
    for env in container.get("env") or ():
        ref = ((env or {}).get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            continue
        name, key = ref.get("name", ""), ref.get("key", "")
        secret = _secret(store, namespace, name)
        if secret is None:
            if ref.get("optional"):
                continue
            return "CreateContainerConfigError", f'secret "{name}" not found'
        data = dict(secret.get("data") or {})
        for k, v in (secret.get("stringData") or {}).items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        if key not in data and not ref.get("optional"):
            return "CreateContainerConfigError", f"couldn't find key {key} in Secret {namespace}/{name}"
    return None


def volume_mount_error(store: Any, namespace: str, pod_spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """``("FailedMount", message)`` for the first secret volume whose Secret is missing, else None."""
    for vol in pod_spec.get("volumes") or ():
        sv = (vol or {}).get("secret")
        if not sv:
            continue
        name = sv.get("secretName", "")
        if _secret(store, namespace, name) is None and not sv.get("optional"):
            return "FailedMount", f'MountVolume.SetUp failed for volume "{vol.get("name", "")}" : secret "{name}" not found'
    return None


def install_pod_secret_checks(cluster: Any) -> bool:
    """Register ``container_config_error`` with the kubelet's ``config_checks`` hook, if it has one.

    Returns whether the kubelet took it.  (The hook is a list of callables
    ``fn(store, namespace, container) -> (reason, message) | None`` consulted
    before each container start; see the labkit issue "Secrets the GitOps way".)
    """
    kubelet = getattr(cluster, "kubelet", None)
    checks = getattr(kubelet, "config_checks", None)
    if not isinstance(checks, list):
        return False
    if container_config_error not in checks:
        checks.append(container_config_error)
    return True
