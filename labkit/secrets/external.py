"""External secrets: an in-lab secrets manager and the External Secrets Operator's reconcile loop.

The pattern
===========

With the External Secrets Operator (ESO, github.com/external-secrets/external-secrets)
nothing secret is in git at all: git holds a ``SecretStore`` (how to reach an
external secrets manager, as whom) and ``ExternalSecret`` objects (which remote
keys to copy into which Kubernetes Secret, and how often).  The operator reads
the remote values and writes the target Secret; rotating a value in the
manager reaches the cluster at the next refresh, with **no commit**.  The price
is a runtime dependency: when the manager is unreachable the operator cannot
create the Secret, and pods that reference it cannot start.

The external secrets manager
============================

``SecretsManager`` is an in-lab model of AWS Secrets Manager's data model:
named secrets, each a list of versions (``VersionId`` — a seeded UUID) with
staging labels ``AWSCURRENT`` / ``AWSPREVIOUS`` (``put_secret_value`` moves
``AWSCURRENT`` to the new version and ``AWSPREVIOUS`` to the old one);
``get_secret_value`` by name, ``VersionId`` or ``VersionStage``; an access
policy — which principal may read which names (``allow(principal, "staging/*")``,
fnmatch patterns) — whose refusal reads like IAM's (``AccessDeniedException:
User: … is not authorized to perform: secretsmanager:GetSecretValue on resource:
…``); and ``available`` (False models the network or the service being down:
``Could not connect to the endpoint URL: …`` as botocore says it).  Every
successful or refused read is recorded in the event log under component
``secrets-manager`` (an audit trail like CloudTrail's: who read which name and
version — never the value).

``AwsSecretsManager`` adapts a real boto3 ``secretsmanager`` client to the same
interface; ``MotoSecretsManagerServer`` starts moto's server mode on
127.0.0.1 (the ``aws`` extra: ``moto[server]``, ``boto3``), so the operator can
talk to a real AWS Secrets Manager API over HTTP.  moto does not enforce IAM,
so the access policy is the in-lab manager's only.

The operator (``externalsecret_controller.go``, ``v1beta1``)
=============================================================

``ExternalSecretsOperator`` watches ``SecretStore`` and ``ExternalSecret``
objects (``external-secrets.io/v1beta1``; CRDs registered by
``install_external_secrets``) and follows ESO's reconcile:

* the refresh interval is ``spec.refreshInterval`` (CRD default ``1h``; ``0``
  syncs once); a reconcile within the interval, with an unchanged spec
  (``syncedResourceVersion`` = ``<generation>-<hash of labels+annotations>``)
  and a valid target Secret (its ``reconcile.external-secrets.io/data-hash``
  annotation matches its data), does nothing and requeues for
  ``interval - elapsed + 5s``; otherwise it fetches every ``data[]``
  (``remoteRef: {key, property, version}``: ``property`` picks a JSON field,
  ``version`` ``uuid/<id>`` a VersionId, anything else a stage) and every
  ``dataFrom[].extract`` (all JSON fields), then creates or updates the target;
* success: ``Ready=True`` reason ``SecretSynced`` "Secret was synced",
  ``status.refreshTime`` (the reconcile's start, to the second),
  ``syncedResourceVersion``, events ``Created`` "Created Secret" / ``Updated``
  "Updated Secret", and a requeue after the refresh interval — so refreshes
  happen exactly every interval (an exactly elapsed interval counts as elapsed,
  the simulator's convention for times real clocks always overshoot);
* failure to read the provider: ``Ready=False`` reason ``SecretSyncedError``
  message "could not get secret data from provider", a ``Warning`` event
  ``UpdateFailed`` carrying the provider's error (``error processing
  spec.data[0] (key: staging/db), err: …``), the target Secret left as it was
  (absent if it never existed) and a retry with the work queue's exponential
  back-off (5 ms doubling to 1000 s, controller-runtime's default);
* ``target``: ``name`` (default: the ExternalSecret's name),
  ``creationPolicy`` ``Owner`` (default: controller ownerReference, so the
  Secret is garbage-collected with the ExternalSecret), ``Orphan``, ``Merge``
  (patch an existing Secret; absent → "the desired secret x was not found.
  With creationPolicy=Merge the secret won't be created"), ``None``;
  ``immutable``.  Secrets are written under field manager
  ``externalsecrets.external-secrets.io/<name>``.  A change to the target
  Secret (or its deletion) re-triggers a reconcile, which restores it.

``SecretStore``: validated on every change and every 5 minutes
(``--store-requeue-interval``): ``Ready=True`` reason ``Valid`` "store
validated", or ``Ready=False`` reason ``ValidationFailed`` "unable to validate
store".  The principal the operator reads as is ``spec.provider.aws.role`` if
set, else the service account of ``auth.jwt.serviceAccountRef``
(``system:serviceaccount:<ns>:<name>``), else the controller's own
(``system:serviceaccount:external-secrets:external-secrets``).

Not modelled: ``ClusterSecretStore``, templates (``target.template``),
``dataFrom.find`` / rewrite / generators, ``deletionPolicy`` other than Retain,
``PushSecret``, the refresh policies of newer API versions.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import simpy

from labkit.core.clock import parse_time, rng_for, timestamp
from labkit.core.duration import parse_duration
from labkit.core.errors import ApiError, LabkitError
from labkit.core.events import EventLog, object_key
from labkit.core.workqueue import WorkQueue

__all__ = [
    "GROUP", "API_VERSION", "SecretsManagerError", "SecretVersion", "SecretsManager", "SecretsBackend",
    "AwsSecretsManager", "MotoSecretsManagerServer", "ExternalSecretsOperator", "install_external_secrets",
    "external_secrets_crds", "DEFAULT_REFRESH", "CONTROLLER_PRINCIPAL",
]

GROUP = "external-secrets.io"
API_VERSION = f"{GROUP}/v1beta1"
COMPONENT = "external-secrets"
MANAGER_COMPONENT = "secrets-manager"
DEFAULT_REFRESH = 3600.0
STORE_REQUEUE = 300.0
CONTROLLER_PRINCIPAL = "system:serviceaccount:external-secrets:external-secrets"
DATA_HASH_ANNOTATION = "reconcile.external-secrets.io/data-hash"
OWNER_LABEL = "reconcile.external-secrets.io/created-by"
FIELD_OWNER = "externalsecrets.external-secrets.io/{}"
ERR_GET_SECRET_DATA = "could not get secret data from provider"
ERR_UPDATE_SECRET = "could not update Secret"


# ------------------------------------------------------------------ the manager

class SecretsManagerError(Exception):
    """An error answer of the secrets manager: AWS error ``code`` and message."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if code else message)


@dataclass
class SecretVersion:
    version_id: str
    value: str = field(repr=False)
    created: float
    stages: set[str] = field(default_factory=set)


class SecretsBackend(Protocol):
    """What the operator needs from a secrets manager."""

    def get_secret_value(self, name: str, *, version_id: str | None = None, version_stage: str | None = None,
                         principal: str = CONTROLLER_PRINCIPAL) -> tuple[str, str]:
        """``(SecretString, VersionId)``; ``SecretsManagerError`` on refusal."""
        ...

    def check_available(self) -> None:
        """Raise ``SecretsManagerError`` when the service cannot be reached."""
        ...


class SecretsManager:
    """An in-lab secrets manager with AWS Secrets Manager's data model (see the module docstring)."""

    def __init__(self, env: simpy.Environment | None = None, log: EventLog | None = None, *, seed: int = 0,
                 region: str = "eu-west-1", account: str = "123456789012"):
        self.env = env
        self.log = log
        self.region = region
        self.account = account
        self.available = True
        self._rng = rng_for(seed, "secrets-manager")
        self._secrets: dict[str, list[SecretVersion]] = {}
        self._policy: dict[str, list[str]] = {}
        #: (time, name, version_id) of every version created: the store side of a rotation timeline
        self.versions_created: list[tuple[float, str, str]] = []

    @property
    def endpoint(self) -> str:
        return f"https://secretsmanager.{self.region}.amazonaws.com/"

    def _now(self) -> float:
        return float(self.env.now) if self.env is not None else 0.0

    def _record(self, event: str, name: str, detail: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.record(MANAGER_COMPONENT, event, f"Secret/{name}", detail=detail)

    def _reachable(self) -> None:
        if not self.available:
            raise SecretsManagerError("", f'Could not connect to the endpoint URL: "{self.endpoint}"')

    def check_available(self) -> None:
        self._reachable()

    # -- administration (the platform team's console / terraform): not subject to the policy
    def allow(self, principal: str, *patterns: str) -> None:
        """Let ``principal`` read secrets whose names match any of ``patterns`` (fnmatch)."""
        self._policy.setdefault(principal, []).extend(patterns)

    def _new_version(self, name: str, value: str | Mapping[str, Any]) -> str:
        text = value if isinstance(value, str) else json.dumps(dict(value), sort_keys=True)
        vid = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        versions = self._secrets.setdefault(name, [])
        for v in versions:
            if "AWSPREVIOUS" in v.stages:
                v.stages.discard("AWSPREVIOUS")
        for v in versions:
            if "AWSCURRENT" in v.stages:
                v.stages.discard("AWSCURRENT")
                v.stages.add("AWSPREVIOUS")
        versions.append(SecretVersion(vid, text, self._now(), {"AWSCURRENT"}))
        self.versions_created.append((self._now(), name, vid))
        return vid

    def create_secret(self, name: str, value: str | Mapping[str, Any]) -> str:
        """``CreateSecret``: a new secret with its first version; returns the VersionId."""
        if name in self._secrets:
            raise SecretsManagerError("ResourceExistsException",
                                      f"The operation failed because the secret {name} already exists.")
        vid = self._new_version(name, value)
        self._record("SecretCreated", name, {"version": vid})
        return vid

    def put_secret_value(self, name: str, value: str | Mapping[str, Any]) -> str:
        """``PutSecretValue`` (a rotation): a new AWSCURRENT version; returns its VersionId."""
        if name not in self._secrets:
            raise SecretsManagerError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        vid = self._new_version(name, value)
        self._record("SecretRotated", name, {"version": vid})
        return vid

    rotate = put_secret_value

    def current_version(self, name: str) -> str:
        return next(v.version_id for v in self._secrets[name] if "AWSCURRENT" in v.stages)

    def _allowed(self, principal: str, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self._policy.get(principal, ()))

    def get_secret_value(self, name: str, *, version_id: str | None = None, version_stage: str | None = None,
                         principal: str = CONTROLLER_PRINCIPAL) -> tuple[str, str]:
        """``GetSecretValue`` as ``principal``: ``(SecretString, VersionId)``."""
        self._reachable()
        if not self._allowed(principal, name):
            self._record("AccessDenied", name, {"principal": principal})
            raise SecretsManagerError(
                "AccessDeniedException",
                f"User: {principal} is not authorized to perform: secretsmanager:GetSecretValue on resource: {name} "
                "because no identity-based policy allows the secretsmanager:GetSecretValue action")
        versions = self._secrets.get(name)
        if not versions:
            raise SecretsManagerError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        if version_id is not None:
            found = [v for v in versions if v.version_id == version_id]
        else:
            stage = version_stage or "AWSCURRENT"
            found = [v for v in versions if stage in v.stages]
        if not found:
            raise SecretsManagerError("ResourceNotFoundException",
                                      "Secrets Manager can't find the specified secret value for "
                                      + (f"VersionId: {version_id}" if version_id else f"staging label: {version_stage}"))
        v = found[0]
        self._record("GetSecretValue", name, {"principal": principal, "version": v.version_id})
        return v.value, v.version_id


class AwsSecretsManager:
    """A boto3 ``secretsmanager`` client behind the ``SecretsBackend`` interface (moto or real AWS)."""

    def __init__(self, client: Any, *, env: simpy.Environment | None = None):
        self.client = client
        self.env = env
        self.available = True  # False simulates a network partition in front of the endpoint
        self.versions_created: list[tuple[float, str, str]] = []

    def _call(self, op: str, **kw: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.available:
            raise SecretsManagerError("", f'Could not connect to the endpoint URL: "{self.client.meta.endpoint_url}/"')
        try:
            return getattr(self.client, op)(**kw)
        except ClientError as err:
            e = err.response.get("Error", {})
            raise SecretsManagerError(e.get("Code", "ClientError"), e.get("Message", str(err))) from None
        except BotoCoreError as err:
            raise SecretsManagerError("", str(err)) from None

    def check_available(self) -> None:
        self._call("list_secrets", MaxResults=1)

    def _text(self, value: str | Mapping[str, Any]) -> str:
        return value if isinstance(value, str) else json.dumps(dict(value), sort_keys=True)

    def create_secret(self, name: str, value: str | Mapping[str, Any]) -> str:
        vid = self._call("create_secret", Name=name, SecretString=self._text(value))["VersionId"]
        self.versions_created.append((float(self.env.now) if self.env else 0.0, name, vid))
        return vid

    def put_secret_value(self, name: str, value: str | Mapping[str, Any]) -> str:
        vid = self._call("put_secret_value", SecretId=name, SecretString=self._text(value))["VersionId"]
        self.versions_created.append((float(self.env.now) if self.env else 0.0, name, vid))
        return vid

    rotate = put_secret_value

    def current_version(self, name: str) -> str:
        return self._call("get_secret_value", SecretId=name)["VersionId"]

    def get_secret_value(self, name: str, *, version_id: str | None = None, version_stage: str | None = None,
                         principal: str = CONTROLLER_PRINCIPAL) -> tuple[str, str]:
        kw: dict[str, Any] = {"SecretId": name}
        if version_id:
            kw["VersionId"] = version_id
        elif version_stage:
            kw["VersionStage"] = version_stage
        out = self._call("get_secret_value", **kw)
        return out["SecretString"], out["VersionId"]


class MotoSecretsManagerServer:
    """moto's AWS API server on 127.0.0.1 (a free port) and a boto3 client for it.

    ``with MotoSecretsManagerServer() as server: backend = server.backend(env)``.
    Needs the ``aws`` extra (``moto[server]``, ``boto3``); ``LabkitError`` otherwise.
    """

    def __init__(self, region: str = "eu-west-1"):
        try:
            import boto3  # noqa: F401
            from moto.server import ThreadedMotoServer
        except ImportError:
            raise LabkitError("the AWS Secrets Manager backend needs the 'aws' extra: pip install 'labkit[aws]'",
                              field="backend") from None
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.started = False

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MotoSecretsManagerServer":
        self._server.start()
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._server.stop()
            self.started = False

    def __enter__(self) -> "MotoSecretsManagerServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def client(self) -> Any:
        import boto3

        return boto3.client("secretsmanager", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def backend(self, env: simpy.Environment | None = None) -> AwsSecretsManager:
        return AwsSecretsManager(self.client(), env=env)


# ------------------------------------------------------------------ CRDs

def _crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
                 "versions": [{"name": "v1beta1", "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def external_secrets_crds() -> list[dict[str, Any]]:
    return [_crd("SecretStore", "secretstores"), _crd("ExternalSecret", "externalsecrets")]


# ------------------------------------------------------------------ the operator

def _hash(value: Any) -> str:
    return hashlib.md5(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()  # noqa: S324 - a change marker, as ESO's ObjectHash


def _b64(text: str | bytes) -> str:
    import base64

    return base64.b64encode(text if isinstance(text, bytes) else text.encode()).decode()


class _SyncFailed(Exception):
    def __init__(self, condition_message: str, error: str):
        self.condition_message = condition_message
        self.error = error
        super().__init__(error)


class ExternalSecretsOperator:
    """ESO's ExternalSecret and SecretStore reconcilers (see the module docstring).

    Like the sealed-secrets controller it talks to the cluster only through the
    ``labkit.core.cluster`` seam (get, list, create, update, patch_status, watch), so it
    runs on the simulator and on a real API server alike; time and events come
    from ``env`` / ``log`` (default: the cluster's own).  Like controller-runtime's
    informers, the SecretStores and the ExternalSecrets' target names are read
    from what the watch delivered rather than fetched again at every periodic
    re-validation (in the simulator the watch is synchronous, so the two agree).
    """

    component = COMPONENT

    def __init__(self, cluster: Any, backend: SecretsBackend, *, env: simpy.Environment | None = None,
                 log: Any = None):
        self.cluster = cluster
        self.env: simpy.Environment = env if env is not None else cluster.env
        self.log = log if log is not None else cluster.log
        self.backend = backend
        self.queue = WorkQueue(self.env)
        self.store_queue = WorkQueue(self.env)
        self._gen: dict[tuple[str, str], Any] = {}
        self._targets: dict[tuple[str, str], str] = {}  # ExternalSecret key -> the Secret it writes
        self._stores: dict[tuple[str, str], dict] = {}  # SecretStores as last watched (an informer cache)
        cluster.watch(API_VERSION, "ExternalSecret", self._on_es)
        cluster.watch(API_VERSION, "SecretStore", self._on_store)
        cluster.watch("v1", "Secret", self._on_secret)
        self.env.process(self._worker(self.queue, self.sync))
        self.env.process(self._worker(self.store_queue, self.sync_store))
        for o in cluster.list(API_VERSION, "SecretStore"):
            self._on_store("ADDED", o)
        for o in cluster.list(API_VERSION, "ExternalSecret"):
            self._on_es("ADDED", o)

    # -------------------------------------------------------------- watches
    def _on_es(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        marker = (md.get("generation"), json.dumps([md.get("labels"), md.get("annotations")], sort_keys=True))
        if ev == "DELETED":
            self._targets.pop(key, None)
        else:
            self._targets[key] = ((obj.get("spec") or {}).get("target") or {}).get("name") or md["name"]
        if ev == "MODIFIED" and self._gen.get(key) == marker:
            return  # a status write of ours
        self._gen[key] = None if ev == "DELETED" else marker
        self.queue.add(key)

    def _on_store(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if ev == "DELETED":
            self._stores.pop(key, None)
        else:
            self._stores[key] = obj
            self.store_queue.add(key)

    def _on_secret(self, ev: str, obj: dict) -> None:
        md = obj["metadata"]
        ns = md.get("namespace", "")
        for (es_ns, es_name), target in self._targets.items():  # from the ExternalSecret watch: no list per event
            if es_ns == ns and target == md["name"]:
                self.queue.add((ns, es_name))

    def _worker(self, queue: Any, sync: Any):
        while True:
            key = queue.pop()
            if key is None:
                yield queue.wait()
                continue
            try:
                again = sync(key)
            except (_SyncFailed, ApiError):
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if again is not None:
                    queue.add_after(key, again)
            if len(queue):
                yield self.env.timeout(0)

    def _event(self, kind: str, key: tuple[str, str], reason: str, message: str, type: str = "Normal") -> None:
        self.log.record(COMPONENT, reason, object_key(kind, key[0], key[1]), detail={"type": type, "message": message})

    # -------------------------------------------------------------- SecretStore
    @staticmethod
    def principal_of(store: Mapping[str, Any]) -> str:
        aws = (((store.get("spec") or {}).get("provider") or {}).get("aws") or {})
        if aws.get("role"):
            return str(aws["role"])
        sa = (((aws.get("auth") or {}).get("jwt") or {}).get("serviceAccountRef") or {})
        if sa.get("name"):
            ns = sa.get("namespace") or store["metadata"].get("namespace", "")
            return f"system:serviceaccount:{ns}:{sa['name']}"
        return CONTROLLER_PRINCIPAL

    def sync_store(self, key: tuple[str, str]) -> float | None:
        store = self._stores.get(key)  # re-validated every STORE_REQUEUE: read from the watch, not the server
        if store is None:
            return None
        provider = (store.get("spec") or {}).get("provider") or {}
        ok, reason, message = True, "Valid", "store validated"
        if "aws" not in provider or (provider["aws"] or {}).get("service", "SecretsManager") != "SecretsManager":
            ok, reason, message = False, "InvalidProviderConfig", "invalid provider spec: only aws SecretsManager is served in the lab"
        else:
            try:
                self.backend.check_available()
            except SecretsManagerError:
                ok, reason, message = False, "ValidationFailed", "unable to validate store"
        cond = {"type": "Ready", "status": "True" if ok else "False", "reason": reason, "message": message}
        old = next((c for c in (store.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if old is None or any(old.get(k) != cond[k] for k in ("status", "reason", "message")):
            cond["lastTransitionTime"] = timestamp(self.env.now)
            self._event("SecretStore", key, reason, message, "Normal" if ok else "Warning")
            self.cluster.patch_status(API_VERSION, "SecretStore", key[1], key[0], {"conditions": [cond]},
                                      field_manager="external-secrets")
        return STORE_REQUEUE

    # -------------------------------------------------------------- ExternalSecret
    @staticmethod
    def refresh_interval(es: Mapping[str, Any]) -> float:
        v = (es.get("spec") or {}).get("refreshInterval", "1h")
        return parse_duration(v, field="spec.refreshInterval") if isinstance(v, str) else float(v)

    @staticmethod
    def _resource_version(es: Mapping[str, Any]) -> str:
        md = es["metadata"]
        return f"{md.get('generation', 1)}-{_hash([md.get('annotations') or {}, md.get('labels') or {}])}"

    def sync(self, key: tuple[str, str]) -> float | None:
        """One reconcile of an ExternalSecret; returns the requeue delay (None: no requeue)."""
        es = self.cluster.get(API_VERSION, "ExternalSecret", key[1], key[0])
        if es is None or es["metadata"].get("deletionTimestamp"):
            return None
        now = float(self.env.now)
        spec = es.get("spec") or {}
        status = es.get("status") or {}
        interval = self.refresh_interval(es)
        target = spec.get("target") or {}
        secret_name = target.get("name") or key[1]
        existing = self.cluster.get("v1", "Secret", secret_name, key[0])
        refreshed = parse_time(status.get("refreshTime"))
        since = 0.0 if refreshed is None else now - refreshed
        if not self._should_refresh(es, interval, refreshed, now) and self._secret_valid(existing):
            return interval - since + 5.0
        if target.get("immutable") and any(c.get("reason") == "SecretSynced" for c in status.get("conditions") or []):
            return None
        try:
            data = self._provider_data(es, key)
            self._write_target(es, key, secret_name, data)
        except _SyncFailed as failed:
            self._event("ExternalSecret", key, "UpdateFailed", failed.error, "Warning")
            self._set_status(es, {"type": "Ready", "status": "False", "reason": "SecretSyncedError",
                                  "message": failed.condition_message}, None)
            raise
        self._set_status(es, {"type": "Ready", "status": "True", "reason": "SecretSynced",
                              "message": "Secret was synced"}, now, secret_name)
        return interval if interval > 0 else None

    @classmethod
    def _should_refresh(cls, es: Mapping[str, Any], interval: float, refreshed: float | None, now: float) -> bool:
        status = es.get("status") or {}
        if status.get("syncedResourceVersion") != cls._resource_version(es):
            return True
        if interval == 0 and status.get("syncedResourceVersion"):
            return False
        if refreshed is None:
            return True
        return refreshed + interval <= now  # exactly elapsed counts as elapsed (see controllers.common)

    @staticmethod
    def _secret_valid(secret: Mapping[str, Any] | None) -> bool:
        if secret is None:
            return False
        ann = secret["metadata"].get("annotations") or {}
        return DATA_HASH_ANNOTATION in ann and ann[DATA_HASH_ANNOTATION] == _hash(secret.get("data") or {})

    def _principal(self, es: Mapping[str, Any], key: tuple[str, str]) -> str:
        ref = (es.get("spec") or {}).get("secretStoreRef") or {}
        if ref.get("kind", "SecretStore") != "SecretStore":
            raise _SyncFailed(ERR_GET_SECRET_DATA, f"ClusterSecretStore \"{ref.get('name')}\" is not served in the lab")
        store = self._stores.get((key[0], ref.get("name", "")))
        if store is None:
            raise _SyncFailed(ERR_GET_SECRET_DATA, f'SecretStore.external-secrets.io "{ref.get("name", "")}" not found')
        return self.principal_of(store)

    def _get(self, ref: Mapping[str, Any], principal: str) -> str:
        version = ref.get("version") or ""
        kw: dict[str, Any] = {}
        if version.startswith("uuid/"):
            kw["version_id"] = version[5:]
        elif version:
            kw["version_stage"] = version
        value, _vid = self.backend.get_secret_value(ref.get("key", ""), principal=principal, **kw)
        return value

    def _provider_data(self, es: Mapping[str, Any], key: tuple[str, str]) -> dict[str, str]:
        spec = es.get("spec") or {}
        principal = self._principal(es, key)
        out: dict[str, str] = {}
        for i, item in enumerate(spec.get("dataFrom") or []):
            ref = (item or {}).get("extract") or {}
            try:
                parsed = json.loads(self._get(ref, principal))
            except SecretsManagerError as err:
                raise _SyncFailed(ERR_GET_SECRET_DATA, f"error processing spec.dataFrom[{i}].extract, err: {err}") from None
            except ValueError:
                raise _SyncFailed(ERR_GET_SECRET_DATA,
                                  f"error processing spec.dataFrom[{i}].extract, err: unable to unmarshal secret "
                                  f"{ref.get('key')}: not a JSON object") from None
            if not isinstance(parsed, dict):
                raise _SyncFailed(ERR_GET_SECRET_DATA, f"error processing spec.dataFrom[{i}].extract, err: "
                                                       f"unable to unmarshal secret {ref.get('key')}: not a JSON object")
            for k, v in parsed.items():
                out[k] = v if isinstance(v, str) else json.dumps(v)
        for i, item in enumerate(spec.get("data") or []):
            ref = item.get("remoteRef") or {}
            try:
                value = self._get(ref, principal)
            except SecretsManagerError as err:
                raise _SyncFailed(ERR_GET_SECRET_DATA,
                                  f"error processing spec.data[{i}] (key: {ref.get('key', '')}), err: {err}") from None
            prop = ref.get("property")
            if prop:
                try:
                    doc = json.loads(value)
                except ValueError:
                    doc = None
                if not isinstance(doc, dict) or prop not in doc:
                    raise _SyncFailed(ERR_GET_SECRET_DATA, f"error processing spec.data[{i}] (key: {ref.get('key', '')}), "
                                                           f"err: key {prop} does not exist in secret {ref.get('key', '')}")
                v = doc[prop]
                value = v if isinstance(v, str) else json.dumps(v)
            out[item.get("secretKey", "")] = value
        return out

    def _write_target(self, es: Mapping[str, Any], key: tuple[str, str], name: str, values: dict[str, str]) -> None:
        spec = es.get("spec") or {}
        target = spec.get("target") or {}
        policy = target.get("creationPolicy", "Owner")
        if policy == "None":
            return
        ns = key[0]
        manager = FIELD_OWNER.format(key[1])
        data = {k: _b64(v) for k, v in values.items()}
        live = self.cluster.get("v1", "Secret", name, ns)
        if policy == "Merge" and live is None:
            raise _SyncFailed(ERR_UPDATE_SECRET, f"the desired secret {name} was not found. "
                                                 "With creationPolicy=Merge the secret won't be created")
        if live is None:
            md: dict[str, Any] = {"name": name, "namespace": ns, "labels": {}, "annotations": {}}
            if policy == "Owner":
                md["ownerReferences"] = [{"apiVersion": API_VERSION, "kind": "ExternalSecret", "name": key[1],
                                          "uid": es["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
                md["labels"][OWNER_LABEL] = _hash(f"{ns}/{key[1]}")
            md["annotations"][DATA_HASH_ANNOTATION] = _hash(data)
            obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": md, "type": "Opaque", "data": data}
            if target.get("immutable"):
                obj["immutable"] = True
            try:
                self.cluster.create(obj, field_manager=manager)
            except ApiError as err:
                raise _SyncFailed(ERR_UPDATE_SECRET, err.message) from None
            self._event("ExternalSecret", key, "Created", "Created Secret")
            return
        merged = dict(live.get("data") or {}) if policy == "Merge" else {}
        merged.update(data)
        new = {**live, "metadata": {k: v for k, v in live["metadata"].items() if k != "managedFields"}, "data": merged}
        new["metadata"]["annotations"] = {**(live["metadata"].get("annotations") or {}),
                                          DATA_HASH_ANNOTATION: _hash(merged)}
        if new == {**live, "metadata": {k: v for k, v in live["metadata"].items() if k != "managedFields"}}:
            return
        try:
            self.cluster.update(new, field_manager=manager)
        except ApiError as err:
            raise _SyncFailed(ERR_UPDATE_SECRET, err.message) from None
        self._event("ExternalSecret", key, "Updated", "Updated Secret")

    def _set_status(self, es: dict, cond: dict[str, Any], refreshed: float | None, binding: str | None = None) -> None:
        status = json.loads(json.dumps(es.get("status") or {}))
        conds = status.setdefault("conditions", [])
        old = next((c for c in conds if c.get("type") == cond["type"]), None)
        if old is None or old.get("status") != cond["status"]:
            cond["lastTransitionTime"] = timestamp(self.env.now)
        else:
            cond["lastTransitionTime"] = old.get("lastTransitionTime")
        status["conditions"] = [c for c in conds if c.get("type") != cond["type"]] + [cond]
        if refreshed is not None:
            status["refreshTime"] = timestamp(refreshed)
            status["syncedResourceVersion"] = self._resource_version(es)
        if binding:
            status["binding"] = {"name": binding}
        md = es["metadata"]
        self.cluster.patch_status(API_VERSION, "ExternalSecret", md["name"], md.get("namespace"), status,
                                  field_manager="external-secrets")

    # -------------------------------------------------------------- reading
    def ready(self, namespace: str, name: str) -> dict[str, Any]:
        es = self.cluster.get(API_VERSION, "ExternalSecret", name, namespace)
        for c in ((es or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                return dict(c)
        return {}


def install_external_secrets(cluster: Any, backend: SecretsBackend, *, env: simpy.Environment | None = None,
                             log: Any = None) -> ExternalSecretsOperator:
    """Register the ESO CRDs and start the operator against ``backend``; attached as ``cluster.external_secrets``."""
    for crd in external_secrets_crds():
        if cluster.get(crd["apiVersion"], "CustomResourceDefinition", crd["metadata"]["name"]) is None:
            cluster.create(crd, field_manager="helm")
    op = ExternalSecretsOperator(cluster, backend, env=env, log=log)
    from labkit.secrets.podconfig import install_pod_secret_checks

    install_pod_secret_checks(cluster)  # a missing Secret blocks container start, when the kubelet has the hook
    cluster.external_secrets = op
    return op
