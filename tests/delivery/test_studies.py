"""The scenario functions produce exactly the metric keys their scenario YAML declares."""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from labkit.core import report
from labkit.scenarios import spec as scenario  # noqa: E402
from labkit.delivery import plots, studies  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def declared(name: str) -> list[str]:
    return sorted(scenario.load(REPO / "scenarios" / f"{name}.yaml", base=REPO).metrics)


def test_rollback_study_metrics_match_the_yaml(tmp_path):
    st = studies.rollback_study(studies.rollback_params(), runs=3, poll_intervals=(30, 300), ci_loads=(0.0,),
                                readiness_delays=(5,), workers=1)
    m = st.metrics()
    assert sorted(m) == declared("rollback")
    report.write_metrics(m, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["runs"] == 3
    assert m["sweep_poll_intervals_s"] == [30.0, 300.0]
    for fig, name in ((plots.plot_restore_distributions(st), "a"), (plots.plot_rollback_sweeps(st), "b"),
                      (plots.plot_rollback_breakdown(st), "c")):
        report.save_figure(fig, tmp_path, name)
    assert "What breaks" in st.findings()


def test_push_vs_pull_study_metrics_match_the_yaml(tmp_path):
    st = studies.push_vs_pull_study(days=7, services=3, defect_base=0.3, ci_runners=4, calibration_samples=6)
    m = st.metrics()
    assert sorted(m) == declared("push-vs-pull")
    report.write_metrics(m, tmp_path)
    assert m["pull_leaked_credential_objects_exposed"] == 0  # branch protection holds by default
    assert m["push_leaked_credential_objects_exposed"] > 0
    for fig, name in ((plots.plot_four_keys(st), "a"), (plots.plot_tier_distances(st), "b"),
                      (plots.plot_blast_radius(st), "c")):
        report.save_figure(fig, tmp_path, name)
    assert "Nearest DORA 2024 cluster" in st.findings()
