"""The Kustomization reconcile's stages: one status patch per reconcile, failures as result objects.

Fixed timings as in ``test_reconcile.py`` (fetch 1 s, build 0.5 s, API 0 s).
"""
from labkit.flux.kustomize import KIND
from tests.flux.conftest import cm

FILES = {"apps/a.yaml": cm("a", greeting="hi"), "apps/b.yaml": cm("b", x="1")}


def record_status_patches(lab) -> list[tuple[float, str]]:
    """(time, what it says) of every Kustomization status patch, in order: "Reconciling" or Ready's reason."""
    patches: list[tuple[float, str]] = []
    write = lab.flux.write_status

    def spy(api_version, kind, name, namespace, status):
        if kind == KIND:
            conds = {c["type"]: c for c in status["conditions"]}
            patches.append((lab.env.now, "Reconciling" if "Reconciling" in conds else conds["Ready"]["reason"]))
        return write(api_version, kind, name, namespace, status)

    lab.flux.write_status = spy
    return patches


def test_status_is_patched_once_at_the_end_plus_reconciling_on_a_new_revision(make_lab):
    lab = make_lab(FILES)
    patches = record_status_patches(lab)
    lab.source()
    lab.kustomization(interval="10m")
    lab.run(5)
    # no artifact yet at 0 (one patch); the new revision is marked Reconciling when fetched (1.0),
    # and the outcome is patched once when done (1.5)
    assert patches == [(0.0, "ArtifactFailed"), (1.0, "Reconciling"), (1.5, "ReconciliationSucceeded")]
    lab.run(1.5 + 600 + 5)  # the same revision again: one patch, at the end
    assert patches[3:] == [(602.0, "ReconciliationSucceeded")]


def test_a_stage_failure_is_one_patch_with_its_reason_and_requeues_on_retry_interval(make_lab):
    lab = make_lab({"apps/kustomization.yaml": "resources:\n- missing.yaml\n", "apps/b.yaml": cm("b", x="1")})
    patches = record_status_patches(lab)
    lab.source()
    lab.kustomization(retryInterval="2m")
    lab.run(5)
    assert patches == [(0.0, "ArtifactFailed"), (1.0, "Reconciling"), (1.5, "BuildFailed")]
    rec = lab.flux.reconcilers[f"{KIND}/flux-system/apps"]
    assert rec.last_result["ok"] is False and rec.last_result["reason"] == "BuildFailed"
    lab.run(1.5 + 120 + 1)
    assert patches[3:] == [(122.0, "BuildFailed")]  # retried 2m after the failure, built 0.5 s

