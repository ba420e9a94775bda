from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from seglib.course import figures as viz  # noqa: E402
from seglib.masks import draw  # noqa: E402
from seglib.masks.trimap import BACKGROUND, BORDER, OBJECT, mask_to_trimap  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _photo(h: int = 24, w: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def _mask(h: int = 24, w: int = 32) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[6:18, 8:24] = True
    return m


def test_overlay_tints_only_the_mask_and_keeps_shape() -> None:
    img = np.full((10, 12, 3), 100, np.uint8)
    m = np.zeros((10, 12), bool)
    m[3:7, 4:9] = True
    out = draw.overlay(img, m, color=(1.0, 0.0, 0.0), alpha=0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~m], img[~m])
    assert out[5, 6, 0] > 100 and out[5, 6, 2] < 100
    with pytest.raises(ValueError, match="does not match"):
        draw.overlay(img, m[:5])


def test_overlay_of_a_trimap_matches_the_old_prediction_overlay_within_one_level() -> None:
    """``predict --overlays`` drew its own overlay (object green, border red, truncated to
    uint8); it now calls ``viz.overlay`` with the border as the edge, which rounds."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    t = mask_to_trimap(_mask())
    old = img.astype(np.float32).copy()
    old[t == OBJECT] = old[t == OBJECT] * (1 - 0.45) + np.array([0, 255, 0]) * 0.45
    old[t == BORDER] = (255, 0, 0)
    old = old.clip(0, 255).astype(np.uint8)
    new = draw.overlay(img, t == OBJECT, (0.0, 1.0, 0.0), 0.45, edge=t == BORDER,
                      edge_color=(1.0, 0.0, 0.0))
    assert np.abs(new.astype(int) - old).max() <= 1
    assert np.array_equal(new[t == BORDER], old[t == BORDER])
    assert np.array_equal(new[t == BACKGROUND], img[t == BACKGROUND])


def test_trimap_rgb_uses_three_grey_levels() -> None:
    t = mask_to_trimap(_mask())
    rgb = draw.trimap_rgb(t)
    assert rgb.shape == (*t.shape, 3)
    assert sorted(np.unique(rgb).tolist()) == [0, 127, 254]


def test_candidate_grid_frames_the_chosen_candidate(tmp_path: Path) -> None:
    masks = np.stack([_mask(), ~_mask(), np.zeros((24, 32), bool)])
    fig = viz.candidate_grid(_photo(), masks, ["a", "b", "c"], chosen={"foreground": 0,
                                                                          "seed": 1})
    assert len([ax for ax in fig.axes if ax.images]) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert any("foreground" in t for t in titles) and any("seed" in t for t in titles)
    path = viz.save_figure(fig, tmp_path / "r" / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_candidate_grid_marks_complements_and_unions_and_skips_blank_choices() -> None:
    masks = np.stack([_mask(), ~_mask(), np.zeros((24, 32), bool)])
    fig = viz.candidate_grid(_photo(), masks, chosen={"foreground": "~1", "seed": "0+2",
                                                      "override": "", "x": "bad"})
    titles = [ax.get_title() for ax in fig.axes]
    assert "foreground (~ outside)" in titles[2]
    assert "seed" in titles[1] and "seed" in titles[3]
    joined = " ".join(titles)
    assert "override" not in joined and "← x" not in joined and ", x" not in joined


def test_prediction_grid_has_one_column_per_model() -> None:
    t = mask_to_trimap(_mask())
    preds = {name: [t, t] for name in ("10", "161", "207", "711", "711B")}
    fig = viz.prediction_grid([_photo(), _photo()], [t, None], preds, ["a", "b"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Original", "Label", "Model 10", "Model 161", "Model 207", "Model 711",
                      "Model 711B"]
    assert len([ax for ax in fig.axes if ax.images]) == 2 * 7 - 1  # the missing label is blank


def test_curves_and_table() -> None:
    fig = viz.loss_curves({"10": {"epoch": [1, 2], "train_loss": [1.0, 0.5],
                                  "val_loss": [1.1, 0.7]}})
    assert len(fig.axes[0].lines) == 2
    fig = viz.learning_curve([("10", 10, 0.4), ("161", 161, 0.6), ("711B", 711, 0.5)])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["shuffled subsets", "711B (not shuffled)"]  # the curve and 711B's point
    table = viz.Table([{"model": "10", "iou": 0.5}, {"model": "161", "iou": float("nan")}])
    assert "0.500" in repr(table) and "nan" in repr(table)
    assert table._repr_html_().count("<tr>") == 3


def test_captioned_grid_fills_rows() -> None:
    fig = viz.captioned_grid([_photo()] * 5, [f"p{i}" for i in range(5)], cols=3)
    assert len(fig.axes) == 6 and len([ax for ax in fig.axes if ax.images]) == 5
    assert [ax.get_title() for ax in fig.axes[:5]] == ["p0", "p1", "p2", "p3", "p4"]


def test_loss_curves_from_history_rows_skip_epochs_without_validation() -> None:
    rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": ""},
            {"epoch": 2, "train_loss": 0.8, "val_loss": 0.9},
            {"epoch": 3, "train_loss": 0.6}]
    cols = viz.history_columns(rows)
    assert cols["val_epoch"] == [2] and cols["val_loss"] == [0.9]
    fig = viz.loss_curves({"10": rows})
    train, val = fig.axes[0].lines
    assert list(train.get_xdata()) == [1, 2, 3] and list(val.get_xdata()) == [2]


def test_spotlight_dims_outside_and_outlines_the_mask() -> None:
    img = np.full((80, 80, 3), 200, np.uint8)
    m = np.zeros((80, 80), bool)
    m[20:60, 20:60] = True
    out = draw.spotlight(img, m, color=(1.0, 0.0, 0.0), dim=0.5)
    assert (out[~m] == 100).all()
    assert (out[40, 40] == 200).all()
    assert tuple(out[20, 40]) == (255, 0, 0) and tuple(out[21, 40]) == (255, 0, 0)


def test_loss_curves_draw_every_repeat_in_its_model_s_colour() -> None:
    h = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_epoch": [2], "val_loss": [0.7]}
    fig = viz.loss_curves({"10": h, "711": h, "10_r2": h, "711_r2": h, "711_r3": h})
    lines = fig.axes[0].lines
    assert len(lines) == 10  # train and validation of each of the five runs
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["10 train", "10 val", "711 train", "711 val"]
    colour = {ln.get_label(): ln.get_color() for ln in lines if not ln.get_label().startswith("_")}
    assert lines[4].get_color() == colour["10 train"]  # 10_r2 in the colour of 10
    assert lines[8].get_color() == colour["711 train"] and lines[8].get_alpha() < 1
