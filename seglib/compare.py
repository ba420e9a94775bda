"""Comparing trained models (notebook 04): load the runs of a model folder, predict the
photos side by side with their labels, score the runs against true trimaps, read their
``metrics.json``.

``load_runs(models_dir, ["10", "711"])`` gives ``{name: TrainedModel}``;
:func:`predictions` feeds ``viz.prediction_grid``, :func:`photo_picker` redraws that grid for
the photos picked in a widget, :func:`score_runs` and :func:`run_metrics` give table rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from seglib.errors import SeglibError
from seglib.io import read_image
from seglib.metrics import Scores
from seglib.predict import TrainedModel, load_model, predict_image
from seglib.trimap import load_trimap
from seglib.viz import prediction_grid


def load_runs(models_dir: str | Path, names: Sequence[str], device: str = "auto"
              ) -> dict[str, TrainedModel]:
    """``{name: TrainedModel}`` from ``models_dir/model_<name>/best.pt``; a missing run is a
    one-line error saying to run notebook 03."""
    models_dir = Path(models_dir)
    missing = [n for n in names if not (models_dir / f"model_{n}" / "best.pt").is_file()]
    if missing:
        raise SeglibError(f"{models_dir}: no trained model {', '.join(missing)} (best.pt); run "
                          "notebook 03 (or 'python -m seglib course') first")
    return {n: load_model(models_dir / f"model_{n}" / "best.pt", device) for n in names}


def validation_stems(runs: Mapping[str, TrainedModel]) -> list[str]:
    """The photos held out from training (shared by every standard model)."""
    for r in runs.values():
        stems = r.config.get("val_stems")
        if stems:
            return list(stems)
    return []


def trimap_or_none(folder: str | Path | None, stem: str) -> np.ndarray | None:
    """``folder/<stem>.png`` as a trimap array, or None when there is no such file."""
    if folder is None:
        return None
    p = Path(folder) / f"{stem}.png"
    return load_trimap(p) if p.is_file() else None


def predictions(runs: Mapping[str, TrainedModel], photos: Sequence[Path],
                labels_dir: str | Path | None) -> tuple[list, list, dict[str, list]]:
    """Photos, their labels (or None) and each model's predicted trimaps, for a grid."""
    images = [read_image(p) for p in photos]
    labels = [trimap_or_none(Path(labels_dir) if labels_dir else None, p.stem) for p in photos]
    preds = {name: [predict_image(m, img) for img in images] for name, m in runs.items()}
    return images, labels, preds


def photo_picker(runs: Mapping[str, TrainedModel], photos: Sequence[Path],
                 chosen: Sequence[Path], labels_dir: str | Path | None,
                 max_photos: int = 8) -> Any:
    """A widget for notebook 04: pick photos (at most ``max_photos`` drawn) and see the
    side-by-side grid of :func:`predictions` for them. Display it in a notebook cell."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    by_stem = {p.stem: p for p in photos}
    picker = w.SelectMultiple(options=list(by_stem), value=[p.stem for p in chosen], rows=8,
                              description="photos")
    grid_out = w.Output()

    def redraw(change: Any = None) -> None:
        sel = [by_stem[s] for s in picker.value][:max_photos]
        with grid_out:
            grid_out.clear_output(wait=True)
            if sel:
                fig = prediction_grid(*predictions(runs, sel, labels_dir), [p.stem for p in sel])
                display(fig)
                plt.close(fig)

    picker.observe(redraw, names="value")
    redraw()
    return w.HBox([picker, grid_out])


def score_runs(runs: Mapping[str, TrainedModel], photos: Sequence[Path], truth_dir: str | Path,
               progress: bool = True) -> list[dict[str, Any]]:
    """Each model's scores on ``photos`` against the trimaps in ``truth_dir`` (object IoU,
    mean IoU, pixel accuracy); photos without a trimap there are left out."""
    truth = Path(truth_dir)
    pairs = [(p, t) for p in photos if (t := trimap_or_none(truth, p.stem)) is not None]
    images = [(read_image(p), t) for p, t in pairs]
    rows = []
    for name, model in tqdm(list(runs.items()), desc="scoring", unit="model",
                            disable=not progress):
        s = Scores()
        for img, t in images:
            if img.shape[:2] != t.shape:
                continue
            s.add(predict_image(model, img).astype(int) - 1, t.astype(int) - 1)
        m = s.summary()
        rows.append({"model": name, "photos": int(model.config.get("n_train", 0)),
                     "scored on": m["n_photos"], "object IoU": m["iou_object"],
                     "object IoU per photo": m.get("iou_object_per_photo"),
                     "mean IoU": m["mean_iou"], "pixel accuracy": m["pixel_accuracy"]})
    return rows


def run_metrics(models_dir: str | Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per trained model from its ``metrics.json`` (scores against its labels)."""
    rows = []
    for n in names:
        path = Path(models_dir) / f"model_{n}" / "metrics.json"
        try:
            m = json.loads(path.read_bytes())
            if not isinstance(m, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise SeglibError(f"{path}: not readable ({exc}); run notebook 03 again") from None
        rows.append({"model": n, "photos": m.get("n_train"), "epochs": m.get("epochs"),
                     "object IoU": m.get("iou_object"), "mean IoU": m.get("mean_iou"),
                     "pixel accuracy": m.get("pixel_accuracy"), "val loss": m.get("val_loss"),
                     "train seconds": m.get("train_seconds")})
    return rows
