"""The Argo CD dialect: Application and ApplicationSet controllers over the labkit engine.

Start with ``ArgoSystem`` (``labkit.argo.controller``)::

    from labkit.argo import ArgoSystem, ArgoTimings
    argo = ArgoSystem(mgmt_cluster, seed=1)
    argo.add_cluster("prod", "https://prod.example", prod_cluster, labels={"env": "prod"})
    argo.add_repo(repo)               # a labkit.gitops.repo.ManifestRepo
    argo.install()
    argo.apply(open("apps/web.yaml").read(), file="apps/web.yaml")
    argo.run(until=300)
    argo.status("web")["sync"]["status"]

Modules: ``api`` (YAML validation), ``state`` (compare), ``diff`` (ignore
rules), ``sync`` (phases, waves, hooks), ``apply`` (apply strategies),
``app_controller`` (refresh, auto-sync, self-heal, retries, deletion),
``appset`` and ``template`` (ApplicationSets), ``repo_server``, ``tracking``,
``hooks``, ``jqpath``, ``tree`` (resource-tree view: ``from labkit.argo.tree
import resource_tree, draw_tree`` — kept out of this namespace so importing
the dialect does not import networkx).
"""
from labkit.argo.controller import ArgoSystem, ArgoTimings

__all__ = ["ArgoSystem", "ArgoTimings"]
