"""The secrets scenario end to end (small keys): outcomes follow from the mechanisms and the parameters."""
from __future__ import annotations

from labkit.scenarios import secrets


def test_secrets_scenario_with_a_key_backup_and_a_short_refresh(tmp_path):
    r = secrets.run_secrets(seed=3, key_bits=2048, refresh_interval="15m", backup_keys=True, workdir=tmp_path)
    m = r.metrics
    assert m["plaintext_commit_refused"] and "stringData.password" in r.refusal
    assert m["history_findings"] == 1 and r.history[0].path == "apps/legacy-config.yaml"
    assert m["sealed_secret_synced"] and m["sealed_old_seal_synced_after_rotation"]
    assert m["sealed_keys_generated"] == 3  # day 0, 30, 60
    assert m["sealed_after_key_loss_synced"] and m["sealed_key_loss_message"] == ""
    assert m["sops_without_decryption_error"].endswith("configuring decryption is required for this secret to be reconciled")
    assert m["sops_missing_key_error"] == 'secrets "sops-age" not found'
    assert m["sops_decrypted_in_cluster"]
    assert 0 < m["rotation_propagated_after_s"] <= 900 and m["rotation_within_refresh_interval"]
    assert m["store_outage_reason"] == "SecretSyncedError" and not m["store_outage_target_secret_present"]
    assert m["secret_values_in_events"] == 0
