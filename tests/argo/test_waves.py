"""Sync order: phase, then wave (negative first), then Helm's kind order, then name; 2 s between waves.

Argo applies each wave, sleeps ARGOCD_SYNC_WAVE_DELAY (2 s) unless it was the
last one, and starts the next wave only when every resource of the previous one
is Healthy.  The order is read from the API server's ``Created`` records.
"""
from tests.argo.argo_support import configmap, deployment


def test_negative_waves_first_then_kind_order_within_a_wave(lab):
    svc = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"
           "  selector:\n    app: web\n")
    lab.commit({
        "app/a-deploy.yaml": deployment("web"),                      # wave 0, kind Deployment
        "app/b-svc.yaml": svc,                                        # wave 0, kind Service (before Deployment)
        "app/c-cm.yaml": configmap("zz-config"),                      # wave 0, kind ConfigMap (before Service)
        "app/d-cm.yaml": configmap("aa-config"),                      # wave 0, same kind: by name
        "app/e-first.yaml": configmap("first", wave=-5),              # negative wave: before everything
        "app/f-late.yaml": configmap("late", wave=3),                 # after the Deployment is Healthy
    }, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    lab.argo.sync("web")
    lab.env.run(until=60)
    created = [(t, o) for t, o in lab.created() if o.startswith(("ConfigMap/default", "Service/", "Deployment/"))]
    # wave -5 at 1; wave 0 after the 2 s wave delay (ConfigMaps have no health: ready at once);
    # the Deployment is Healthy 5 s after creation (3 + 5 = 8), so wave 3 runs at 8
    assert created == [
        (1.0, "ConfigMap/default/first"),
        (3.0, "ConfigMap/default/aa-config"),
        (3.0, "ConfigMap/default/zz-config"),
        (3.0, "Service/default/web"),
        (3.0, "Deployment/default/web"),
        (8.0, "ConfigMap/default/late"),
    ]
    st = lab.argo.status("web")
    assert st["operationState"]["phase"] == "Succeeded"
    assert st["operationState"]["message"] == "successfully synced (all tasks run)"
    assert st["operationState"]["finishedAt"] == "2026-01-01T00:00:08Z"
    msgs = {r["name"]: r["message"] for r in st["operationState"]["syncResult"]["resources"]}
    assert msgs["web"] in ("deployment.apps/web created", "service/web created")
    assert msgs["late"] == "configmap/late created"


def test_running_message_names_what_the_wave_waits_for(lab):
    lab.commit({"app/d.yaml": deployment("web"), "app/c.yaml": configmap("after", wave=1)}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    lab.argo.sync("web")
    lab.env.run(until=4)  # Deployment applied at 1, wave delay to 3, Healthy only at 6
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Running"
    assert op["message"] == "waiting for healthy state of apps/Deployment/web"
    lab.env.run(until=10)
    assert lab.argo.status("web")["operationState"]["phase"] == "Succeeded"
    assert (6.0, "ConfigMap/default/after") in lab.created()


def test_a_degraded_resource_in_an_earlier_wave_fails_the_sync(tmp_path):
    from tests.argo.argo_support import Lab

    lab = Lab(tmp_path, deploy_degraded=lambda name: name == "web")
    lab.commit({"app/d.yaml": deployment("web"), "app/c.yaml": configmap("after", wave=1)}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    lab.argo.sync("web")
    lab.env.run(until=30)
    op = lab.argo.status("web")["operationState"]
    assert op["phase"] == "Failed"
    assert op["message"] == "one or more synchronization tasks completed unsuccessfully"
    assert not any(o == "ConfigMap/default/after" for _, o in lab.created())
    web = next(r for r in op["syncResult"]["resources"] if r["name"] == "web")
    assert web["hookPhase"] == "Failed" and web["message"] == 'Deployment "web" exceeded its progress deadline'


def test_final_wave_is_not_waited_for(lab):
    lab.commit({"app/d.yaml": deployment("web")}, when=0)
    lab.argo.apply(lab.app_yaml("web", "app"), file="web.yaml")
    lab.env.run(until=1)
    lab.argo.sync("web")
    lab.env.run(until=2)
    op = lab.argo.status("web")["operationState"]
    # a single wave: the operation succeeds as soon as the apply is accepted, before the rollout is done
    assert op["phase"] == "Succeeded" and op["finishedAt"] == "2026-01-01T00:00:01Z"
    assert op["syncResult"]["resources"][0]["hookPhase"] == "Running"
    assert lab.argo.status("web")["health"]["status"] == "Progressing"
    lab.env.run(until=10)
    assert lab.argo.status("web")["health"]["status"] == "Healthy"
