"""push-vs-pull exercises: the pull model's lead time, and the push model's credential blast radius.

``push-vs-pull-lead-time``
    The pull model without a webhook: Flux (``gitops/shop.yaml``: a
    ``GitRepository`` and a ``Kustomization``) reconciles ``app/`` by polling
    git.  After the participant's commits, CI commits five new image tags to
    ``app/kustomization.yaml`` (``kustomize edit set image``) at seeded times,
    20–30 minutes apart.  For each, the judge measures the lead time from the
    commit to the rollout being complete on that tag (the Deployment's
    template on the tag, every replica updated and available — sampled every
    2 s), and splits it at source-controller's ``NewArtifact`` event for the
    commit: the wait for the fetch, then build, apply and rollout.  Solved when
    every lead time is at most 3 minutes.
``push-vs-pull-ci-credential``
    The push model: a CI pipeline applies ``app/`` server-side with the
    ``ci/ci-deployer`` ServiceAccount's token, then waits for the rollout.
    ``ci/rbac.yaml`` is that token's RBAC, applied by the platform team at
    every commit (objects removed from the file are deleted).  The cluster
    runs an organisation of 20 other services and the platform's own
    workloads (``labkit.delivery.blast``).  The judge runs the pipeline for
    each commit and then for release 1.1.0 through the RBAC authorizer
    (``labkit.delivery.rbac``), and then plays the attacker who stole the
    token: every live object the token may update, patch or delete is
    counted.  Solved when release 1.1.0 deployed and rolled out, and the
    token can change nothing outside namespace ``shop``.
"""
from __future__ import annotations

from typing import Any, Mapping

import yaml

from labkit.workshop.model import Change, Exercise, History, Verdict
from labkit.workshop.replay import AppReplay, flux_gitops_yaml
from labkit.workshop.replay_extra import docs_of, dump_docs, edit_docs, fmt_s
from labkit.workshop.yamltext import yaml_dump

SCENARIO = "push-vs-pull"
NS = "shop"
APP = "shop"
IMAGE = "ghcr.io/labkit/shop"
FIX_AT, GAP = 300.0, 60.0


def _deployment(tag: str = "1.0.0") -> dict[str, Any]:
    labels = {"app": APP}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NS},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": f"{IMAGE}:{tag}",
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}}}


# ------------------------------------------------------------------ lead time

CI_TAGS = ("1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5")
LEAD_GOAL = 180.0
GITOPS = "gitops/shop.yaml"


def _lead_start() -> dict[str, str]:
    docs = docs_of(flux_gitops_yaml(APP, "app", interval="10m"))
    for d in docs:
        if d["kind"] == "GitRepository":
            d["spec"]["interval"] = "10m"
    return {
        "README.md": ("# push-vs-pull-lead-time\n\nCI builds an image and commits its tag to `app/kustomization.yaml`; "
                      "Flux (`gitops/shop.yaml`) pulls and deploys. There is no webhook from the git host. Make every "
                      "CI commit run in production within 3 minutes.\n"),
        "app/namespace.yaml": dump_docs([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]),
        "app/deployment.yaml": dump_docs([_deployment()]),
        "app/kustomization.yaml": yaml_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1",
                                                  "kind": "Kustomization",
                                                  "resources": ["namespace.yaml", "deployment.yaml"],
                                                  "images": [{"name": IMAGE, "newTag": "1.0.0"}]}, sort_keys=False),
        GITOPS: dump_docs(docs),
    }


def _rolled_out(lab: Any, tag: str) -> bool:
    dep = lab.get("apps/v1", "Deployment", APP, NS)
    if dep is None or dep["spec"]["template"]["spec"]["containers"][0]["image"] != f"{IMAGE}:{tag}":
        return False
    st = dep.get("status") or {}
    want = dep["spec"].get("replicas", 1)
    return (st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
            and st.get("updatedReplicas") == want and st.get("availableReplicas") == want
            and st.get("replicas") == want)


def _judge_lead(history: History) -> Verdict:
    from labkit.core.clock import rng_for
    from labkit.sim.registry import ImageRegistry

    ex = "push-vs-pull-lead-time"
    registry = ImageRegistry()
    registry.add(IMAGE, ["1.0.0", *CI_TAGS])
    rep = AppReplay.run(history, dialect="flux", first_at=FIX_AT, gap=GAP, registry=registry, webhook=False)
    lab = rep.lab
    try:
        if rep.refused:
            return Verdict(ex, False, f"the platform could not apply your change: {rep.refused[0]}")
        rng = rng_for(0, ex)
        base = lab.now + 300.0
        plan = [base + i * 1500.0 + rng.uniform(0.0, 300.0) for i in range(len(CI_TAGS))]
        done: dict[str, float] = {}

        def sampler():
            while True:
                for tag in CI_TAGS:
                    if tag not in done and _rolled_out(lab, tag):
                        done[tag] = lab.env.now
                yield lab.env.timeout(2.0)

        lab.env.process(sampler())
        commits: list[tuple[str, str, float]] = []
        for tag, at in zip(CI_TAGS, plan):
            lab.run(at)
            sha = lab.repo.set_image("app", IMAGE, tag, author="ci", when=lab.now, message=f"ci: {APP} {tag}")
            commits.append((tag, sha, lab.now))
        lab.run(lab.now + 1500.0)
        rows = []
        for tag, sha, at in commits:
            fetched = next((e.time for e in lab.events(component="source-controller", event="NewArtifact", since=at)
                            if sha in (e.revision or "")), None)
            lead = done.get(tag)
            rows.append({"tag": tag, "lead_s": None if lead is None else round(lead - at, 1),
                         "fetch_wait_s": None if fetched is None else round(fetched - at, 1),
                         "after_fetch_s": None if lead is None or fetched is None else round(lead - fetched, 1)})
        leads = [r["lead_s"] for r in rows]
        figures = {"ci_commits": rows, "commits": len(history.commits)}
        missing = [r["tag"] for r in rows if r["lead_s"] is None]
        worst = max((r for r in rows if r["lead_s"] is not None), key=lambda r: r["lead_s"], default=None)
        shown = ", ".join("never" if x is None else fmt_s(x) for x in leads)
        text = f"lead times of the {len(CI_TAGS)} CI commits (commit → rollout complete): {shown}"
        if worst is not None and worst["fetch_wait_s"] is not None:
            text += (f"; the slowest ({worst['tag']}) waited {fmt_s(worst['fetch_wait_s'])} for source-controller to "
                     f"fetch the commit, then {fmt_s(worst['after_fetch_s'])} to build, apply and roll out")
        if not history.commits:
            return Verdict(ex, False, f"no commit yet: {text}", figures=figures)
        if missing:
            return Verdict(ex, False, f"{text} — {', '.join(missing)} never reached production", figures=figures)
        if worst is not None and worst["lead_s"] > LEAD_GOAL:
            late = sum(1 for x in leads if x is not None and x > LEAD_GOAL)
            return Verdict(ex, False, f"{text} — {late} of {len(leads)} over the goal of {fmt_s(LEAD_GOAL)}",
                           figures=figures)
        return Verdict(ex, True, f"{text}: all within {fmt_s(LEAD_GOAL)}", figures=figures)
    finally:
        lab.close()


def _flux(kind: str, fn):
    return edit_docs(GITOPS, lambda d: fn(d["spec"]), kind=kind)


# ------------------------------------------------------------------ CI credential

RBAC_FILE = "ci/rbac.yaml"
SA_NS, SA = "ci", "ci-deployer"
SERVICES = 20
EDIT_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def _app_objects(tag: str = "1.0.0") -> list[dict[str, Any]]:
    from labkit.delivery.blast import service_objects

    objs = [o for o in service_objects(APP) if o["kind"] not in ("Namespace", "Secret", "Deployment")]
    return [_deployment(tag), *objs]


def _cluster_role() -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": SA},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": EDIT_VERBS},
                      {"apiGroups": [""], "resources": ["services", "configmaps", "secrets", "serviceaccounts"],
                       "verbs": EDIT_VERBS},
                      {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": EDIT_VERBS}]}


def _subjects() -> list[dict[str, Any]]:
    return [{"kind": "ServiceAccount", "name": SA, "namespace": SA_NS}]


def _cluster_binding() -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": SA},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": SA},
            "subjects": _subjects()}


def _role_binding(role_kind: str = "ClusterRole", role: str = SA) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": SA, "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": _subjects()}


def _cred_start() -> dict[str, str]:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": SA_NS}}
    return {
        "README.md": ("# push-vs-pull-ci-credential\n\nThe push pipeline deploys `app/` with the token of the "
                      f"ServiceAccount `{SA_NS}/{SA}` (`kubectl apply --server-side -f app/`, then `kubectl rollout "
                      f"status`). `{RBAC_FILE}` is what that token may do; the platform team applies it on every "
                      "commit. Shrink the blast radius of a leaked token to the shop namespace.\n"),
        RBAC_FILE: dump_docs([sa, _cluster_role(), _cluster_binding()]),
        **{f"app/{o['kind'].lower()}.yaml": dump_docs([o]) for o in _app_objects()},
    }


def _rbac_docs(files: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for p, t in sorted(files.items()):
        if p.startswith("ci/") and p.endswith((".yaml", ".yml")):
            out += docs_of(t)
    return out


def _app_docs(files: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for p, t in sorted(files.items()):
        if p.startswith("app/") and p.endswith((".yaml", ".yml")):
            out += docs_of(t)
    return out


def _key(d: Mapping[str, Any]) -> tuple[str, str, str, str]:
    md = d.get("metadata") or {}
    return (d.get("apiVersion", ""), d.get("kind", ""), md.get("namespace") or "", md.get("name", ""))


def _judge_cred(history: History) -> Verdict:
    from labkit.delivery import blast
    from labkit.delivery.push import deploy_step
    from labkit.delivery.rbac import Authorizer, AuthorizedCluster, Request, resource_of, service_account_user
    from labkit.core.errors import ApiError, LabkitError
    from labkit.sim.cluster import SimCluster
    from labkit.sim.registry import ImageRegistry

    ex = "push-vs-pull-ci-credential"
    registry = ImageRegistry()
    cluster = SimCluster(seed=0, registry=registry)
    env = cluster.env
    org = blast.build_organisation(SERVICES, image_automation=False)
    blast.load(cluster, org)
    for ns in (NS, SA_NS):
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, field_manager="platform")
    user, groups = service_account_user(SA_NS, SA)
    ci = AuthorizedCluster(cluster, user, groups)
    refused: list[str] = []

    def platform_applies(files: Mapping[str, str], previous: Mapping[str, str]) -> None:
        try:
            now, before = _rbac_docs(files), _rbac_docs(previous)
        except Exception as err:  # noqa: BLE001 - YAML the platform cannot read
            refused.append(f"ci/: {str(err).splitlines()[0]}")
            return
        keys = {_key(d) for d in now}
        for d in before:
            if _key(d) not in keys:
                api, kind, ns, name = _key(d)
                try:
                    cluster.delete(api, kind, name, ns or None)
                except (ApiError, LabkitError):
                    pass
        for d in now:
            try:
                cluster.apply(d, field_manager="kubectl", force=True)
            except (ApiError, LabkitError) as err:
                refused.append(f"{RBAC_FILE}: {_key(d)[1]}/{_key(d)[3]}: {err}")

    def pipeline(objects: list[dict[str, Any]]) -> tuple[bool, str]:
        result: dict[str, Any] = {}

        def run():
            try:
                ok, detail = yield from deploy_step(env, ci, objects, rollout_timeout=300.0)()
                result["ok"], result["detail"] = ok, detail.get("error") or detail.get("message") or ""
            except (ApiError, LabkitError) as err:
                result["ok"], result["detail"] = False, str(err)
        proc = env.process(run())
        env.run(until=proc)
        return bool(result.get("ok")), str(result.get("detail", ""))

    deploys: list[tuple[bool, str]] = []
    platform_applies(history.start, {})
    deploys.append(pipeline(_app_docs(history.start)))
    previous = history.start
    for i, c in enumerate(history.commits):
        env.run(until=max(env.now, FIX_AT + i * GAP))
        platform_applies(c.files, previous)
        deploys.append(pipeline(_app_docs(c.files)))
        previous = c.files
    env.run(until=env.now + 300)
    release = [_deployment("1.1.0") if (o.get("kind"), (o.get("metadata") or {}).get("name")) == ("Deployment", APP)
               else o for o in _app_docs(history.final)]
    seen_refusals = len(ci.refused)
    ok, detail = pipeline(release)
    release_refused = ci.refused[seen_refusals:]
    dep = cluster.get("apps/v1", "Deployment", APP, NS) or {}
    image = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("image", "")

    # the attacker holds the token: what can it change?
    auth = Authorizer(cluster)
    inside, outside, namespaces = 0, 0, set()
    kinds = list(blast.KINDS) + [("rbac.authorization.k8s.io/v1", k, "rbac.authorization.k8s.io", resource_of(k))
                                 for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")]
    for api_version, kind, group, resource in kinds:
        for o in cluster.list(api_version, kind):
            md = o.get("metadata") or {}
            ns = md.get("namespace")
            if any(auth.allowed(user, groups, Request(v, group, resource, ns, md.get("name", "")))
                   for v in blast.WRITE_VERBS):
                if ns == NS:
                    inside += 1
                else:
                    outside += 1
                    namespaces.add(ns or "(cluster scope)")
    figures = {"objects_outside_shop": outside, "objects_in_shop": inside, "namespaces_outside": len(namespaces),
               "release_deployed": ok, "image": image, "commits": len(history.commits)}
    reach = (f"a leaked {SA} token can change {outside} objects outside namespace shop"
             + (f" (in {len(namespaces)} other namespaces or cluster-wide)" if outside else "")
             + f" and {inside} in shop")
    deployed = (f"the pipeline deployed release 1.1.0 ({image}, rolled out)" if ok and image.endswith(":1.1.0")
                else f"the pipeline's deploy of release 1.1.0 was refused: {release_refused[0]}"
                + (f" (and {len(set(release_refused)) - 1} more requests)" if len(set(release_refused)) > 1 else "")
                if release_refused else
                f"the pipeline's deploy of release 1.1.0 failed: {' '.join(detail.split())[:300]}")
    if not history.commits:
        return Verdict(ex, False, f"no commit yet: {reach}; {deployed}", figures=figures)
    if refused:
        return Verdict(ex, False, f"the platform could not apply your RBAC: {refused[0]}", figures=figures)
    problems = []
    if not (ok and image.endswith(":1.1.0")):
        problems.append(deployed)
    if outside:
        problems.append(reach)
    if problems:
        return Verdict(ex, False, "; and ".join(problems) + ("" if outside else f" ({reach})"), figures=figures)
    return Verdict(ex, True, f"{deployed}; {reach} — a leak is confined to the shop namespace", figures=figures)


def _rbac_edit(fn):
    def edit(files: Mapping[str, str]) -> dict[str, str]:
        return {RBAC_FILE: dump_docs(fn(docs_of(files[RBAC_FILE])))}
    return edit


def _namespaced(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] != "ClusterRoleBinding"] + [_role_binding()]


def _added_binding(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return docs + [_role_binding()]


def _read_only_role(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": SA, "namespace": NS},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["", "autoscaling"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]}
    return [d for d in docs if d["kind"] not in ("ClusterRoleBinding", "ClusterRole")] + [role,
                                                                                           _role_binding("Role", SA)]


EXERCISES = (
    Exercise(
        id="push-vs-pull-lead-time",
        scenario=SCENARIO,
        title="Pull without a webhook: lead time under 3 minutes",
        goal=f"Each of {len(CI_TAGS)} CI commits of a new image tag is running in production (rollout complete) "
             f"within {fmt_s(LEAD_GOAL)} of the commit — with no webhook from the git host.",
        task="Edit the Flux objects in fleet/push-vs-pull-lead-time/gitops/shop.yaml, commit, then "
             "`labkit check push-vs-pull-lead-time`. The judge then plays five CI commits.",
        start=_lead_start,
        judge=_judge_lead,
        solution=Change("GitRepository interval 1m", "gitops: fetch the repository every minute",
                        _flux("GitRepository", lambda s: s.__setitem__("interval", "1m"))),
        wrong=(
            Change("Kustomization interval 1m", "gitops: reconcile every minute",
                   _flux("Kustomization", lambda s: s.__setitem__("interval", "1m")),
                   expect="for source-controller to fetch the commit"),
            Change("GitRepository interval 5m", "gitops: fetch every 5 minutes",
                   _flux("GitRepository", lambda s: s.__setitem__("interval", "5m")), expect="over the goal"),
        ),
        hints=("Read the verdict's split of the slowest lead time: most of it is spent before Flux has even seen the "
               "commit.",
               "Without a webhook, source-controller learns about a commit only when it fetches, once per "
               "GitRepository interval; a new artifact triggers the Kustomization at once, whatever its own "
               "interval.",
               "GitRepository spec.interval: 1m (flux bootstrap's default) — or a webhook Receiver, when the git "
               "host can reach the cluster."),
        minutes=10,
    ),
    Exercise(
        id="push-vs-pull-ci-credential",
        scenario=SCENARIO,
        title="Push: confine the CI deployer's token",
        goal="A leaked ci-deployer token can change nothing outside namespace shop (0 objects), and the push "
             "pipeline still deploys release 1.1.0 of shop (apply and rollout succeed).",
        task="Edit the RBAC in fleet/push-vs-pull-ci-credential/ci/rbac.yaml, commit, then "
             "`labkit check push-vs-pull-ci-credential`. The judge then runs the pipeline for release 1.1.0 and "
             "counts what the token can change.",
        start=_cred_start,
        judge=_judge_cred,
        solution=Change("a RoleBinding in shop instead of the ClusterRoleBinding",
                        "ci: ci-deployer may deploy to shop only", _rbac_edit(_namespaced)),
        wrong=(
            Change("add a RoleBinding, keep the ClusterRoleBinding", "ci: bind ci-deployer in shop",
                   _rbac_edit(_added_binding), expect="objects outside namespace shop"),
            Change("a read-only Role in shop", "ci: least privilege for ci-deployer", _rbac_edit(_read_only_role),
                   expect="is forbidden"),
        ),
        hints=("RBAC only adds: a narrower binding does nothing while a broader one still exists. Which binding "
               "makes the token valid in every namespace?",
               "A RoleBinding grants its role's rules in its own namespace only — and it may reference a "
               "ClusterRole. "
               "The pipeline applies (patch) and then watches the rollout (get).",
               "Replace the ClusterRoleBinding by a RoleBinding named ci-deployer in namespace shop, roleRef "
               "ClusterRole ci-deployer, subject ServiceAccount ci/ci-deployer."),
        minutes=15,
    ),
)
