"""labkit.core.report: flat-JSON metrics, readable figures, the metrics doc cell."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labkit.core import report  # noqa: E402
from labkit.scenarios import spec  # noqa: E402
from labkit.core.errors import LabkitError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------ metrics


def test_write_metrics_writes_flat_json_and_converts_numpy(tmp_path):
    path = report.write_metrics(
        {
            "count": np.int64(3),
            "mean_s": np.float32(1.5),
            "ok": np.bool_(True),
            "name": "flux",
            "none": None,
            "series": np.array([1, 2, 3]),
            "mixed": [1, "a", None, False, np.float64(0.25)],
        },
        tmp_path / "run",
    )
    assert path == tmp_path / "run" / "metrics.json"
    data = json.loads(path.read_text())
    assert data == {
        "count": 3,
        "mean_s": 1.5,
        "ok": True,
        "name": "flux",
        "none": None,
        "series": [1, 2, 3],
        "mixed": [1, "a", None, False, 0.25],
    }
    assert type(data["count"]) is int and type(data["ok"]) is bool
    assert report.read_metrics(tmp_path / "run") == data


@pytest.mark.parametrize(
    "metrics, field, words",
    [
        ({"nested": {"a": 1}}, "metrics.nested", ["flat JSON"]),
        ({"deep": [[1, 2]]}, "metrics.deep", ["item 0", "flat JSON"]),
        ({"nan": float("nan")}, "metrics.nan", ["nan", "use None"]),
        ({"inf": np.float64("inf")}, "metrics.inf", ["inf"]),
        ({"big": list(range(report.MAX_LIST + 1))}, "metrics.big", ["longer than"]),
        ({"obj": object()}, "metrics.obj", ["object"]),
        ({"matrix": np.zeros((2, 2))}, "metrics.matrix", ["ndarray"]),
        ({3: 1}, "metrics", ["metric keys must be non-empty strings"]),
    ],
)
def test_write_metrics_refuses_what_is_not_flat_json(tmp_path, metrics, field, words):
    with pytest.raises(LabkitError) as info:
        report.write_metrics(metrics, tmp_path)
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)
    assert not (tmp_path / "metrics.json").exists()


def test_read_metrics_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(LabkitError, match="no metrics.json"):
        report.read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(LabkitError, match="not valid JSON"):
        report.read_metrics(tmp_path)


# ------------------------------------------------------------------ figures


def _line(ax):
    ax.plot([0, 1, 2], [1, 3, 2])


def test_save_figure_writes_a_png_at_120_dpi(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    _line(ax)
    ax.set_title("t")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    path = report.save_figure(fig, tmp_path / "out", "curve")
    assert path == tmp_path / "out" / "curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert [round(d) for d in image.info["dpi"]] == [120, 120]
        width, height = image.size
    # about 4x3 inches at 120 dpi (bbox_inches="tight" trims or grows the margins a little)
    assert 400 < width < 560 and 300 < height < 420


def test_save_figure_refuses_an_untitled_figure(tmp_path):
    fig, ax = plt.subplots()
    _line(ax)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    with pytest.raises(LabkitError) as info:
        report.save_figure(fig, tmp_path, "untitled")
    assert "has no title" in str(info.value)
    assert info.value.field == "figure 'untitled'"
    assert not (tmp_path / "untitled.png").exists()


def test_suptitle_counts_as_a_title(tmp_path):
    fig, ax = plt.subplots()
    _line(ax)
    fig.suptitle("overall")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    assert report.save_figure(fig, tmp_path, "sup.png") == tmp_path / "sup.png"


@pytest.mark.parametrize("missing", ["x", "y"])
def test_save_figure_refuses_an_unlabelled_axis(tmp_path, missing):
    fig, ax = plt.subplots()
    _line(ax)
    ax.set_title("t")
    if missing != "x":
        ax.set_xlabel("x")
    if missing != "y":
        ax.set_ylabel("y")
    with pytest.raises(LabkitError, match=f"no {missing}-axis label"):
        report.save_figure(fig, tmp_path, "f")


def test_every_axes_with_data_needs_labels(tmp_path):
    fig, (a, b) = plt.subplots(1, 2)
    fig.suptitle("two panels")
    _line(a)
    _line(b)
    a.set_xlabel("x")
    a.set_ylabel("y")
    b.set_title("right")
    with pytest.raises(LabkitError, match=r"axes 2 of 2 \('right'\) has no x-axis label"):
        report.save_figure(fig, tmp_path, "f")


def test_empty_axes_shared_axes_colorbars_and_twins_are_understood(tmp_path):
    fig, axes = plt.subplots(2, 2, sharex=True)
    fig.suptitle("grid")
    top, bottom = axes[0][0], axes[1][0]
    _line(top)
    _line(bottom)
    top.set_ylabel("top y")
    bottom.set_ylabel("bottom y")
    bottom.set_xlabel("shared x")  # labels the x axis the top panel shares
    axes[0][1].axis("off")  # empty and hidden
    image = axes[1][1].imshow(np.arange(4).reshape(2, 2))
    axes[1][1].set_ylabel("row")
    fig.colorbar(image, ax=axes[1][1])  # the colorbar's own axes need no labels
    twin = top.twinx()
    twin.plot([0, 1, 2], [5, 5, 6])
    with pytest.raises(LabkitError, match="no y-axis label"):
        report.save_figure(fig, tmp_path, "grid")
    twin.set_ylabel("twin y")  # the twin's x axis is hidden, so only its y label is needed
    report.save_figure(fig, tmp_path, "grid")
    assert (tmp_path / "grid.png").is_file()


def test_figure_wide_axis_labels_count(tmp_path):
    fig, (a, b) = plt.subplots(1, 2)
    fig.suptitle("supx/supy")
    _line(a)
    _line(b)
    fig.supxlabel("time (s)")
    fig.supylabel("replicas")
    report.save_figure(fig, tmp_path, "sup")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "with space"])
def test_figure_names_are_plain_file_names(tmp_path, name):
    fig, ax = plt.subplots()
    ax.set_title("t")
    with pytest.raises(LabkitError, match="figure names"):
        report.save_figure(fig, tmp_path, name)


def test_save_figure_needs_a_figure(tmp_path):
    with pytest.raises(LabkitError, match="expects a matplotlib Figure"):
        report.save_figure({"not": "a figure"}, tmp_path, "x")


# ------------------------------------------------------------------ docs


def test_metrics_cell_doc_lists_the_declared_keys(fixture_home):
    doc = spec.metrics_cell_doc("missing-metric")
    assert doc.startswith("### Fixture with a missing metric\n")
    assert "| `present` | written |" in doc
    assert "| `absent` | declared but never written |" in doc
    assert "scenarios/missing-metric.yaml" in doc


def test_metrics_cell_doc_of_an_unknown_scenario(fixture_home):
    with pytest.raises(LabkitError, match="unknown scenario 'nope'"):
        spec.metrics_cell_doc("nope")
