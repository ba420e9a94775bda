"""Comparing trained models (notebook 04): load the runs of a model folder, predict the
photos side by side with their labels, score the runs against true trimaps, read their
``metrics.json``.

``load_runs(models_dir, ["10", "711"])`` gives ``{name: TrainedModel}``;
:func:`predictions` feeds ``viz.prediction_grid``, :func:`photo_picker` redraws that grid for
the photos picked in a widget, :func:`score_runs` and :func:`run_metrics` give table rows.

Each model may have been trained several times (``preset.repeats``: runs ``711``, ``711_r2``,
...; :func:`repeat_runs` finds them). :func:`curve_rows` gives each model's mean score with a
95 % interval over its repeats and :func:`shuffle_effect` the mean difference 711 − 711B over
paired repeats (same seed) with its interval. The interval is Student's t over the repeats:
``mean ± t(0.975, n − 1) · s / √n`` with ``s`` the sample standard deviation (:func:`interval`);
with one repeat there is none (``None``). :func:`write_summary_json` writes the run's figures
to ``reports/summary.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from seglib.core.errors import SeglibError
from seglib.core.images import read_image
from seglib.masks.metrics import Scores
from seglib.masks.trimap import load_trimap
from seglib.training.predict import TrainedModel, load_model, predict_image


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


#: Two-sided 95 % quantiles of Student's t by degrees of freedom (larger ones use the nearest
#: smaller entry, which is slightly wider; beyond 30 the normal 1.96).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def interval(values: Sequence[float], lowest: float | None = None,
             highest: float | None = None) -> tuple[float | None, float | None, float | None]:
    """Mean and 95 % t-interval of ``values`` (one value: no interval; none: all ``None``),
    the interval clipped to ``[lowest, highest]`` (an IoU cannot leave [0, 1])."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return None, None, None
    mean = float(v.mean())
    if len(v) == 1:
        return mean, None, None
    df = len(v) - 1
    t = 1.96 if df > 30 else T95[max(k for k in T95 if k <= df)]
    half = t * float(v.std(ddof=1)) / np.sqrt(len(v))
    lo, hi = mean - half, mean + half
    return (mean, lo if lowest is None else max(lowest, lo),
            hi if highest is None else min(highest, hi))


def repeat_runs(models_dir: str | Path, names: Sequence[str]) -> dict[str, list[str]]:
    """``{model: [run names]}``: ``model`` itself, then ``model_r2``, ``model_r3``, ... as long
    as their ``best.pt`` exists (see :func:`seglib.training.presets.repeat_name`)."""
    from seglib.training.presets import repeat_name

    out = {}
    for n in names:
        runs, r = [], 1
        while (Path(models_dir) / f"model_{repeat_name(n, r)}" / "best.pt").is_file():
            runs.append(repeat_name(n, r))
            r += 1
        out[n] = runs
    return out


def curve_rows(rows: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]],
               score: str = "object IoU") -> list[dict[str, Any]]:
    """One row per model: photos, repeats, mean ``score`` of its runs' ``rows`` (keyed by
    ``model`` = run name) and its 95 % interval (:func:`interval`, within [0, 1])."""
    by_run = {r["model"]: r for r in rows}
    out = []
    for model, runs in groups.items():
        got = [by_run[r] for r in runs if r in by_run]
        mean, lo, hi = interval([r.get(score) for r in got], 0.0, 1.0)
        out.append({"model": model, "photos": got[0].get("photos") if got else None,
                    "repeats": len(got), "object_iou": mean, "ci_low": lo, "ci_high": hi})
    return out


def shuffle_effect(rows: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]],
                   a: str = "711", b: str = "711B", score: str = "object IoU"
                   ) -> dict[str, Any]:
    """Mean difference ``a`` − ``b`` over paired repeats (repeat r of each: the same seed) and
    its 95 % interval; ``excludes_zero`` says whether the interval lies on one side of 0."""
    by_run = {r["model"]: r.get(score) for r in rows}
    pairs = [(by_run.get(x), by_run.get(y))
             for x, y in zip(groups.get(a, []), groups.get(b, []), strict=False)]
    diffs = [x - y for x, y in pairs if x is not None and y is not None]
    mean, lo, hi = interval(diffs, -1.0, 1.0)
    excludes = None if lo is None or hi is None else bool(lo > 0 or hi < 0)
    return {"models": f"{a} - {b}", "pairs": len(diffs), "difference": mean, "ci_low": lo,
            "ci_high": hi, "excludes_zero": excludes}


def write_summary_json(path: str | Path, labeling: Mapping[str, Any],
                       curve: Sequence[Mapping[str, Any]], shuffle: Mapping[str, Any],
                       iou_against: str) -> Path:
    """``reports/summary.json``: the run's figures in one machine-readable file (``null``
    where a figure cannot be computed); ``iou_against`` is ``"truth"`` or ``"labels"``."""
    from seglib.core.files import write_bytes_atomic

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    doc = {"iou_against": iou_against, "labeling": dict(labeling),
           "learning_curve": [dict(r) for r in curve], "shuffle_effect": dict(shuffle)}
    text = json.dumps(clean(doc), indent=2, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode())


def labeling_summary(labels_dir: str | Path, stats: Mapping[str, Any],
                     advice: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``labeling`` part of ``summary.json`` from
    :func:`seglib.labels.review.summarize_report`'s ``stats``: the backend that made the
    candidates, photos, agreement, how often ``seed`` took a background-like mask, and each
    policy's mean IoU against the truth (``None`` without); with
    :func:`seglib.labels.review.review_advice`'s ``advice``, ``review``: the photos to review
    first and the bad labels they are estimated (and, with truth, found) to hold."""
    from seglib.labels.store import LabelStore

    backends = sorted({r.backend for r in LabelStore(labels_dir).ok_records() if r.backend})
    return {"backend": "+".join(backends) or None, "photos": stats.get("photos", 0),
            "policy_agreement": stats.get("policy_agreement"),
            "seed_background_rate": stats.get("seed_background_rate"),
            "foreground_background_rate": stats.get("foreground_background_rate"),
            "mean_iou_seed": stats.get("mean_iou_seed"),
            "mean_iou_foreground": stats.get("mean_iou_foreground"),
            "mean_iou_label": stats.get("mean_iou_label"),
            "photos_with_truth": stats.get("photos_with_truth", 0),
            "review": None if advice is None else {k: v for k, v in advice.items()
                                                   if k != "text"}}
