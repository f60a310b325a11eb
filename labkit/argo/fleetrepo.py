"""The fleet repository: services as plain-YAML directories, and the ApplicationSet over them.

The fleet scenario (``labkit.scenarios.fleet``) and the fault soak of Argo CD
(``labkit.faults.argo.run_fleet_under_faults``) reconcile the same repository:
``services/<svc>/`` holding a Deployment, a Service and a ConfigMap per service
(optionally with a ``kustomization.yaml``), and one ApplicationSet whose git
directories generator turns every ``services/*`` directory into an automated
Application with prune and ``CreateNamespace=true``.  Building that repository
is library work, so it lives here, next to the dialect, where both the notebook
logic and the fault library can import it without one importing the other.
"""
from __future__ import annotations

from typing import Any

import yaml

from labkit.argo.api import API_VERSION, APPLICATIONSET_KIND, RESOURCES_FINALIZER
from labkit.argo.destinations import IN_CLUSTER_SERVER

__all__ = ["APP_API", "FLEET_NS", "IMAGE_PREFIX", "service_name", "service_files", "app_template",
           "applicationset_yaml"]

APP_API = API_VERSION
FLEET_NS = "services"
IMAGE_PREFIX = "ghcr.io/labkit"


def service_name(i: int) -> str:
    """The ``i``-th service of the fleet: ``svc-000``, ``svc-001``, ..."""
    return f"svc-{i:03d}"


def _objects(name: str, *, namespace: str | None = None, tag: str = "1.0.0",
             log_level: str = "info") -> dict[str, dict[str, Any]]:
    md: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": name}}
    if namespace:
        md["namespace"] = namespace
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(md),
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}},
                                 "spec": {"containers": [{"name": "app", "image": f"{IMAGE_PREFIX}/{name}:{tag}",
                                                          "ports": [{"containerPort": 8080}],
                                                          "envFrom": [{"configMapRef": {"name": name}}],
                                                          "resources": {"requests": {"cpu": "50m",
                                                                                     "memory": "64Mi"}}}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": dict(md),
           "spec": {"selector": {"app.kubernetes.io/name": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(md), "data": {"LOG_LEVEL": log_level}}
    return {"deployment.yaml": dep, "service.yaml": svc, "configmap.yaml": cm}


def service_files(prefix: str, name: str, *, kustomize: bool = False, namespace: str | None = None,
                  tag: str = "1.0.0", log_level: str = "info") -> dict[str, str]:
    """One service directory: Deployment, Service, ConfigMap (and a kustomization.yaml when ``kustomize``)."""
    out = {f"{prefix}/{f}": yaml.safe_dump(o, sort_keys=False)
           for f, o in _objects(name, namespace=namespace, tag=tag, log_level=log_level).items()}
    if kustomize:
        out[f"{prefix}/kustomization.yaml"] = ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                                              "resources:\n- deployment.yaml\n- service.yaml\n- configmap.yaml\n")
    return out


def app_template(repo_url: str, path: str, namespace: str, *, name: str, finalizer: bool = True) -> dict[str, Any]:
    """An automated Application's ``metadata`` and ``spec`` (prune on, ``CreateNamespace=true``) for ``path``."""
    md: dict[str, Any] = {"name": name}
    if finalizer:
        md["finalizers"] = [RESOURCES_FINALIZER]
    return {"metadata": md,
            "spec": {"project": "default",
                     "source": {"repoURL": repo_url, "targetRevision": "HEAD", "path": path},
                     "destination": {"server": IN_CLUSTER_SERVER, "namespace": namespace},
                     "syncPolicy": {"automated": {"prune": True}, "syncOptions": ["CreateNamespace=true"]}}}


def applicationset_yaml(name: str, repo_url: str, pattern: str, *, app_name: str = "{{path.basename}}",
                        namespace: str = FLEET_NS) -> dict[str, Any]:
    """An ApplicationSet with the git directories generator over ``pattern`` (``services/*``)."""
    return {"apiVersion": APP_API, "kind": APPLICATIONSET_KIND, "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"generators": [{"git": {"repoURL": repo_url, "revision": "HEAD",
                                             "directories": [{"path": pattern}]}}],
                     "template": app_template(repo_url, "{{path}}", namespace, name=app_name)}}
