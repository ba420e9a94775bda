"""Review picks by hand: the ipywidgets reviewer and the ``overrides.csv`` it writes.

``Reviewer(labels_dir, images_dir).widget()`` steps through the photos of a labeled folder,
draws each photo's candidates with the policy's pick framed, and lets you click another
candidate (or type ``~0`` / ``2+5``). A click only writes ``overrides.csv`` (``stem,candidate``);
"Re-pick" rewrites the trimaps from the cached candidates, so no model runs again. Nothing
here waits for input, so a headless (papermill) run never blocks on the widget.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.images import read_image, resize_image
from seglib.labels.store import LabelRecord, LabelStore, read_candidates
from seglib.masks.candidates import REFINED_SOURCE, Candidates
from seglib.masks.metrics import mask_iou
from seglib.masks.policy import (
    foreground_score,
    is_background_like,
    mask_for_choice,
    pick,
    quality_inputs,
)


def review_rank(flagged: bool, confidence: float | None, stem: str) -> tuple:
    """Sort key of the reviewer's order: flagged labels first, then the least confident
    (:mod:`seglib.labels.confidence`), ties by name."""
    return (not flagged, 0.0 if confidence is None else float(confidence), stem)


def review_order(records: Iterable[LabelRecord]) -> list[str]:
    """Stems in the order a reviewer should look at them (:func:`review_rank`)."""
    return [r.stem for r in sorted(records, key=lambda r: review_rank(r.flagged, r.confidence,
                                                                      r.stem))]


def confidence_text(confidence: float | None) -> str:
    """A label's confidence for a caption: two decimals, or "unknown" (its evidence was
    lost)."""
    return "unknown" if confidence is None else f"{confidence:.2f}"


def review_sheet(labels_dir: str | Path, images_dir: str | Path, count: int = 24,
                 stems: list[str] | None = None, flagged_only: bool = False,
                 ) -> tuple[list[np.ndarray], list[str]]:
    """Pictures and captions of a contact sheet of the labels a reviewer should look at first
    (:func:`review_order`, or ``stems``): each photo with its written label (the trimap's
    object) spotlighted, captioned with its name, confidence and, when flagged, the doubt.
    Labels whose photo is no longer in ``images_dir`` are not shown (nor counted); both
    lists are empty when there is nothing to show."""
    import textwrap

    from seglib.masks.draw import spotlight
    from seglib.masks.trimap import OBJECT, load_trimap

    labels_dir = Path(labels_dir)
    recs = {r.stem: r for r in LabelStore(labels_dir).ok_records()
            if (Path(images_dir) / r.file).is_file()}
    order = [s for s in stems if s in recs] if stems is not None else review_order(
        r for r in recs.values() if r.flagged or not flagged_only)
    pictures, captions = [], []
    for stem in order:
        if len(pictures) >= count:
            break
        rec = recs[stem]
        try:
            photo = read_image(Path(images_dir) / rec.file)
            label = load_trimap(labels_dir / f"{stem}.png") == OBJECT
        except SeglibError:
            continue
        if label.shape != photo.shape[:2]:
            photo = resize_image(photo, label.shape)
        pictures.append(spotlight(photo, label))
        words = f"{stem} · {rec.source} · {confidence_text(rec.confidence)}"
        if rec.flagged and rec.doubt:
            words += "\n" + "\n".join(textwrap.wrap(rec.doubt, 34)[:3])
        captions.append(words)
    return pictures, captions


def set_override(labels_dir: str | Path, stem: str, choice: str | int | None) -> dict[str, str]:
    """Record ``choice`` (``"3"``, ``"~0"``, ``"2+5"``) for ``stem``; ``None``/"" removes it.

    The choice is checked against the photo's cached candidates first, so a typo never
    reaches ``overrides.csv``. Returns all overrides of the folder.
    """
    store = LabelStore(labels_dir)
    current = store.overrides()
    text = "" if choice is None else str(choice).strip()
    if text:
        mask_for_choice(store.load_candidates(stem), text)  # raises on a bad choice
        current[stem] = text
    else:
        current.pop(stem, None)
    store.set_overrides(current)
    return current


def load_candidates(labels_dir: str | Path, stem: str) -> Candidates:
    return read_candidates(labels_dir, stem)


def candidate_scores(cands: Candidates) -> list[dict[str, float]]:
    """Per candidate: its ``predicted_iou`` and ``stability``, and its ``foreground`` score
    with the terms it is made of (quality, border, area, centre; quality from
    :func:`seglib.masks.policy.quality_inputs`)."""
    rows = []
    for i in range(len(cands)):
        piou, stab = float(cands.predicted_iou[i]), float(cands.stability[i])
        s = foreground_score(cands.masks[i], *quality_inputs(cands, i))
        rows.append({"candidate": i, "source": cands.sources[i], "predicted_iou": piou,
                     "stability": stab, "quality": s["quality"], "border": s["border"],
                     "area": s["area_term"], "centre": s["centre"], "foreground": s["score"]})
    return rows


def short_captions(cands: Candidates) -> list[str]:
    """One short caption per candidate: foreground score and predicted IoU."""
    return [f"fg {r['foreground']:.2f} · iou {r['predicted_iou']:.2f}"
            for r in candidate_scores(cands)]


def _truth_mask(truth_dir: Path | None, stem: str, shape: tuple[int, int]) -> np.ndarray | None:
    if truth_dir is None:
        return None
    from seglib.masks.trimap import load_trimap, resize_mask, trimap_to_mask

    path = truth_dir / f"{stem}.png"
    if not path.is_file():
        return None
    return resize_mask(trimap_to_mask(load_trimap(path)), shape)


def policy_report(labels_dir: str | Path, truth_dir: str | Path | None = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Per labeled photo: each policy's pick, whether they agree, whether each pick is
    background-like (:func:`seglib.masks.policy.is_background_like`), and (where true trimaps exist
    in ``truth_dir``) the object IoU of each pick and of the written label.

    Computed from the cached candidates, so no model runs.
    """
    from tqdm.auto import tqdm

    from seglib.masks.trimap import load_trimap, trimap_to_mask

    labels_dir = Path(labels_dir)
    truth = Path(truth_dir) if truth_dir else None
    if truth is not None and not truth.is_dir():
        truth = None
    rows = LabelStore(labels_dir).ok_records()
    out = []
    for r in tqdm(rows, desc="policies", unit="photo", disable=not progress):
        stem = r.stem
        try:  # the backend's proposals: refinement's mask (predicted IoU 1) is no candidate
            cands = load_candidates(labels_dir, stem).without(REFINED_SOURCE)
        except SeglibError:
            continue
        fg, seed = pick(cands, "foreground"), pick(cands, "seed")
        agree = mask_iou(fg.mask, seed.mask, empty=1.0)
        d: dict[str, Any] = {"stem": stem, "candidates": len(cands),
                             "foreground": fg.chosen, "seed": seed.chosen,
                             "policies_iou": agree, "agree": agree >= 0.9,
                             "chosen": r.chosen, "confidence": r.confidence,
                             "flagged": r.flagged, "source": r.source, "doubt": r.doubt,
                             "foreground_background": is_background_like(fg.mask),
                             "seed_background": is_background_like(seed.mask)}
        t = _truth_mask(truth, stem, cands.shape)
        if t is not None:
            d["iou_foreground"] = mask_iou(fg.mask, t, empty=1.0)
            d["iou_seed"] = mask_iou(seed.mask, t, empty=1.0)
            d["iou_best_candidate"] = max(
                (mask_iou(m, t, empty=1.0) for m in cands.masks), default=0.0)
            label = labels_dir / f"{stem}.png"
            if label.is_file():
                lab = trimap_to_mask(load_trimap(label))
                t_full = _truth_mask(truth, stem, lab.shape)
                d["iou_label"] = mask_iou(lab, t_full, empty=1.0) if t_full is not None else None
        out.append(d)
    return out


BAD_IOU = 0.8  # a label below this object IoU against the truth is a bad label


def review_advice(report: list[dict[str, Any]], share: float = 0.2) -> dict[str, Any]:
    """Which labels to review first, from :func:`policy_report` rows: the first ``share`` of
    the photos in the reviewer's order (:func:`review_order`: flagged, then least confident;
    at least one), the bad labels they are estimated to hold (the sum of ``1 - confidence``,
    confidence being an estimate of P(good) for refined labels, :mod:`seglib.labels.confidence`)
    and, where truth exists (``iou_label``), how many bad labels (IoU < ``BAD_IOU``) they
    really hold. ``text`` says it in a sentence, and says when picks' confidences (the
    policy's, not a calibrated probability) are in the sum."""
    unknown = [r for r in report if r.get("confidence") is None and r.get("flagged")]
    rows = [r for r in report if r.get("confidence") is not None] + unknown
    if not rows:
        return {"review": 0, "estimated_bad_there": None, "estimated_bad": None,
                "bad_there": None, "bad": None, "text": "no labels with a confidence"}
    order = sorted(rows, key=lambda r: review_rank(bool(r.get("flagged")), r["confidence"],
                                                   r["stem"]))
    n = max(1, round(share * len(rows)))
    first = order[:n]
    est_there = float(sum(1 - float(r["confidence"]) for r in first
                          if r["confidence"] is not None))
    est = float(sum(1 - float(r["confidence"]) for r in rows if r["confidence"] is not None))
    scored = [r for r in rows if r.get("iou_label") is not None]
    bad = bad_there = None
    text = (f"Review the first {n} photos of {len(rows)} in the reviewer (flagged, then the "
            f"least confident): they hold an estimated {est_there:.0f} of the {est:.0f} bad "
            "labels the confidence predicts")
    if scored:
        bad = sum(float(r["iou_label"]) < BAD_IOU for r in scored)
        bad_there = sum(float(r["iou_label"]) < BAD_IOU for r in first
                        if r.get("iou_label") is not None)
        text += (f" (against the true masks: {bad_there} of the {bad} labels with object IoU "
                 f"below {BAD_IOU})")
    if unknown:
        text += (f"; {len(unknown)} flagged labels have no confidence (an interrupted run lost "
                 "their evidence) and are not in the estimate")
    picks = sum(r.get("source") == "pick" for r in rows)
    if picks:
        text += (f"; {picks} labels are picks, whose confidence is the policy's, not a "
                 "calibrated probability")
    return {"review": n, "estimated_bad_there": round(est_there, 2),
            "estimated_bad": round(est, 2), "bad_there": bad_there, "bad": bad,
            "text": text + "."}


def summarize_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Flag rate, policy agreement, how often each policy took a background-like mask, and
    mean IoUs against the truth (where there is truth)."""
    n = len(rows)
    if n == 0:
        return {"photos": 0}
    s: dict[str, Any] = {
        "photos": n,
        "flagged": sum(r["flagged"] for r in rows),
        "flag_rate": sum(r["flagged"] for r in rows) / n,
        "policy_agreement": sum(r["agree"] for r in rows) / n,
        "seed_background_rate": sum(r["seed_background"] for r in rows) / n,
        "foreground_background_rate": sum(r["foreground_background"] for r in rows) / n,
    }
    for key in ("iou_label", "iou_foreground", "iou_seed", "iou_best_candidate"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        if vals:
            s[f"mean_{key}"] = float(np.mean(vals))
            s["photos_with_truth"] = len(vals)
    return s
