"""Segmentation metrics from a confusion matrix: pixel accuracy, per-class IoU, mean IoU.

Classes are 0 object, 1 background, 2 border (trimap label minus one). ``iou_object`` is the
IoU of the object class over all pixels pooled; ``iou_object_per_photo`` averages the
per-photo object IoU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASS_NAMES = ("object", "background", "border")


def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """``num_classes``×``num_classes`` pixel counts, rows = truth, columns = prediction."""
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    t = np.asarray(target).reshape(-1).astype(np.int64)
    if p.shape != t.shape:
        raise ValueError(f"prediction has {p.size} pixels but truth has {t.size}")
    ok = (t >= 0) & (t < num_classes) & (p >= 0) & (p < num_classes)
    return np.bincount(t[ok] * num_classes + p[ok],
                       minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class (NaN for a class absent from both truth and prediction)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mask_iou(a: np.ndarray, b: np.ndarray, empty: float = 0.0) -> float:
    """IoU of two bool masks; ``empty`` when both are empty."""
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else empty


def object_iou(pred: np.ndarray, target: np.ndarray, object_class: int = 0) -> float:
    """IoU of one class in one photo (1.0 when the class is absent from both)."""
    return mask_iou(np.asarray(pred) == object_class, np.asarray(target) == object_class, 1.0)


@dataclass
class Scores:
    """Accumulates confusion counts and per-photo object IoU over many photos."""

    num_classes: int = 3
    cm: np.ndarray = field(default=None)  # type: ignore[assignment]
    photo_iou: list[float] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_pixels: int = 0

    def __post_init__(self) -> None:
        if self.cm is None:
            self.cm = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def add(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add one photo (or a batch of photos with a leading axis) of class indices."""
        pred, target = np.asarray(pred), np.asarray(target)
        self.cm += confusion(pred, target, self.num_classes)
        if pred.ndim == 2:
            self.photo_iou.append(object_iou(pred, target))
        else:
            self.photo_iou.extend(object_iou(p, t) for p, t in zip(pred, target, strict=True))

    def add_loss(self, mean_loss: float, pixels: int) -> None:
        self.loss_sum += float(mean_loss) * pixels
        self.loss_pixels += int(pixels)

    def summary(self) -> dict:
        """Plain dict (JSON-ready): pixel accuracy, per-class IoU, mean IoU, object IoU."""
        return summarize(self.cm, self.photo_iou,
                         self.loss_sum / self.loss_pixels if self.loss_pixels else None)


def summarize(cm: np.ndarray, photo_iou: list[float] | None = None,
              loss: float | None = None) -> dict:
    """Metrics dict from a confusion matrix (and optional per-photo object IoUs and loss)."""
    cm = np.asarray(cm)
    ious = iou_per_class(cm)
    total = cm.sum()
    out: dict = {}
    if loss is not None:
        out["val_loss"] = float(loss)
    out["pixel_accuracy"] = float(np.trace(cm) / total) if total else float("nan")
    out["iou"] = {CLASS_NAMES[i] if i < len(CLASS_NAMES) else str(i): _f(v)
                  for i, v in enumerate(ious)}
    out["mean_iou"] = _f(np.nanmean(ious)) if np.isfinite(ious).any() else None
    out["iou_object"] = _f(ious[0])
    if photo_iou:
        out["iou_object_per_photo"] = float(np.mean(photo_iou))
    out["n_photos"] = len(photo_iou or [])
    return out


def _f(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


@dataclass
class FolderScores:
    """Predicted trimaps compared with true ones: the summary, per-photo rows, skipped."""

    summary: dict
    rows: list[dict]
    skipped: list[tuple[str, str]]


def evaluate_folders(pred: str | Path, truth: str | Path) -> FolderScores:
    """Compare ``pred/<stem>.png`` with ``truth/<stem>.png`` trimaps (labels 1/2/3).

    Photos whose trimaps are missing, unreadable or of different sizes are skipped with
    their reason. Raises a one-line error when nothing can be compared.
    """
    from seglib.core.errors import SeglibError
    from seglib.core.images import list_images, pair_by_stem
    from seglib.masks.trimap import load_trimap

    pairing = pair_by_stem(list_images(pred), list_images(truth))
    if not pairing.pairs:
        raise SeglibError(f"{pred} and {truth}: no predicted trimap has a true trimap with the "
                          f"same file stem ({pairing.describe()})")
    scores, rows, skipped = Scores(), [], []
    for p, t in pairing.pairs:
        try:
            a, b = load_trimap(p), load_trimap(t)
            if a.shape != b.shape:
                raise SeglibError(f"{p}: predicted {a.shape[1]}×{a.shape[0]} but truth is "
                                  f"{b.shape[1]}×{b.shape[0]}")
        except SeglibError as exc:
            skipped.append((p.stem, str(exc)))
            continue
        a, b = a.astype(np.int64) - 1, b.astype(np.int64) - 1
        scores.add(a, b)
        ious = iou_per_class(confusion(a, b))
        rows.append({"stem": p.stem, "pixel_accuracy": float((a == b).mean()),
                     "iou_object": object_iou(a, b),
                     **{f"iou_{n}": _f(v) for n, v in zip(CLASS_NAMES, ious, strict=True)}})
    if not rows:
        raise SeglibError(f"{pred}: none of the {len(pairing.pairs)} trimaps could be compared "
                          f"(first: {skipped[0][1]})")
    return FolderScores(scores.summary(), rows, skipped)


def format_table(summary: dict) -> str:
    """A small text table of a metrics summary."""
    lines = [f"{'metric':<22}{'value':>8}"]
    for name in CLASS_NAMES:
        v = summary["iou"].get(name)
        lines.append(f"{'IoU ' + name:<22}{_s(v):>8}")
    for key, label in (("mean_iou", "mean IoU"), ("iou_object", "object IoU (pooled)"),
                       ("iou_object_per_photo", "object IoU (per photo)"),
                       ("pixel_accuracy", "pixel accuracy")):
        lines.append(f"{label:<22}{_s(summary.get(key)):>8}")
    lines.append(f"{'photos':<22}{summary.get('n_photos', 0):>8}")
    return "\n".join(lines)


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
