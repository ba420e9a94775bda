"""Does ``labels.csv``'s confidence rank the labels by quality? Scores, and fits the model.

    python bench/label_confidence.py LABELS --truth TRUTH          # true masks: IoU per label
    python bench/label_confidence.py LABELS --grades GRADES.csv    # hand grades of the labels
    python bench/label_confidence.py LABELS... --truth T --fit     # fit the confidence's B* weights
    python bench/label_confidence.py LABELS --grades G.csv --photos PHOTOS --rejudge

``TRUTH`` holds a true mask per photo, ``<stem>.png`` (0/255, object white, or a trimap): a
label is *bad* when its object IoU is below 0.8. ``GRADES.csv`` has the columns ``stem,grade``
from a person who looked at each label on its photo: 2 good, 1 a visible flaw (a strap, a bit
of sole or floor), 0 wrong (a leg or a box taken with the shoe, half the shoe missing, the
background); grades 0 count as bad. Several label folders may be given (each with its own
truth or grades, in the same order: ``--truth`` and ``--grades`` take one value per folder,
``-`` for none).

Printed per run: the Spearman correlation between confidence and quality (IoU, or grade), the
share of the bad labels among the 20 % least confident, and the flags' precision and recall
(targets in issue 18: >= 0.5, >= 70 %, precision >= 0.5 at recall >= 0.7). ``--fit`` fits the
logistic model of :mod:`seglib.labels.confidence` (P(good) from the refined labels' evidence in
``refine_evidence.csv``, L2-penalised, with torch) and prints the coefficients and the flag
threshold that reaches recall 0.7 on the fitted rows; never score a fit on its own rows:
``--cross`` scores each folder (or grade file) with a fit on the others. ``--photos`` fills
in the evidence from the photo itself (``backdrop``, ``weak_edge``) where
``refine_evidence.csv`` was written by a seglib that did not record it, from each photo and
its written label (refinement computes it the same way, at the candidates' size).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from seglib.core.images import read_image, resize_image  # noqa: E402
from seglib.core.tables import read_csv  # noqa: E402
from seglib.labels.confidence import COEFFICIENTS, Evidence, of_refined, photo_evidence  # noqa: E402
from seglib.labels.review import load_candidates  # noqa: E402
from seglib.labels.store import LabelStore  # noqa: E402
from seglib.masks.trimap import OBJECT, load_trimap, resize_mask  # noqa: E402
from seglib.refine.rounds import EVIDENCE_CSV, evidence_values  # noqa: E402

BAD_IOU = 0.8
FEATURES = tuple(COEFFICIENTS)


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their mean rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x), float)
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def true_mask(truth: Path, stem: str) -> np.ndarray | None:
    p = truth / f"{stem}.png"
    if not p.is_file():
        return None
    import cv2

    t = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
    if t is None:
        return None
    return (t == OBJECT) if t.max() <= 3 else (t > 127)


def _photo_evidence(labels: Path, photos: Path, stem: str, file: str) -> dict[str, float]:
    """The photo's evidence of a written label, at the size refinement works at (the photo's
    candidates')."""
    size = load_candidates(labels, stem).shape
    lab = resize_mask(load_trimap(labels / f"{stem}.png") == OBJECT, size)
    return photo_evidence(resize_image(read_image(photos / file), size), lab)


def rows_of(labels: Path, truth: Path | None, grades: Path | None,
            photos: Path | None = None) -> list[dict]:
    """One dict per scored label: stem, source, confidence, flagged, doubt, quality, bad,
    and the refined labels' evidence (the photo's part computed from ``photos`` where the
    folder's ``refine_evidence.csv`` lacks it)."""
    recs = {r.stem: r for r in LabelStore(labels).ok_records()}
    ev = {r["stem"]: r for r in read_csv(labels / EVIDENCE_CSV)}
    graded = {r["stem"]: int(r["grade"]) for r in read_csv(grades)} if grades else {}
    out = []
    for stem, r in sorted(recs.items()):
        q = None
        if truth is not None:
            t = true_mask(truth, stem)
            if t is None:
                continue
            lab = load_trimap(labels / f"{stem}.png") == OBJECT
            lab = resize_mask(lab, t.shape[:2])
            u = np.count_nonzero(lab | t)
            q = np.count_nonzero(lab & t) / u if u else 1.0
            bad = q < BAD_IOU
        elif stem in graded:
            q = float(graded[stem])
            bad = graded[stem] == 0
        else:
            continue
        row = {"stem": stem, "source": r.source, "confidence": r.confidence or 0.0,
               "flagged": r.flagged, "doubt": r.doubt, "quality": q, "bad": bad}
        if r.source == "refined" and stem in ev:
            recorded = evidence_values(ev[stem])
            if not {"backdrop", "weak_edge"} <= recorded.keys():
                if photos is None:  # an older seglib's row: the photo's part is missing
                    row["incomplete"] = True
                else:
                    recorded.update(_photo_evidence(labels, photos, stem, r.file))
            row["evidence"] = Evidence(**recorded)
        out.append(row)
    return out


def report(rows: list[dict], title: str, rejudge: bool = False) -> None:
    if rejudge:  # the current seglib.labels.confidence on the recorded evidence
        for r in rows:
            if "evidence" in r:
                r["confidence"], r["flagged"], r["doubt"] = of_refined(r["evidence"])
    conf = np.array([r["confidence"] for r in rows])
    q = np.array([r["quality"] for r in rows])
    bad = np.array([r["bad"] for r in rows])
    flag = np.array([r["flagged"] for r in rows])
    n, nb = len(rows), int(bad.sum())
    k = max(1, round(0.2 * n))
    low = np.argsort(conf, kind="stable")[:k]
    tp = int((flag & bad).sum())
    print(f"{title}: {n} labels, {nb} bad; Spearman(confidence, quality) "
          f"{spearman(conf, q):.3f}; the {k} least confident hold {int(bad[low].sum())} of the "
          f"{nb} bad ({bad[low].sum() / max(nb, 1):.0%}); flagged {int(flag.sum())}: precision "
          f"{tp / max(flag.sum(), 1):.2f}, recall {tp / max(nb, 1):.2f}; estimated bad "
          f"(sum of 1 - confidence) {np.sum(1 - conf):.1f}")


def fit(rows: list[dict], l2: float,
        say: bool = True) -> tuple[float, dict[str, float], float] | None:
    """Fit the logistic model's intercept and slopes on ``rows``' refined labels; returns them
    with the flag threshold that reaches recall 0.7 on these rows (None, said, when the rows
    hold no bad or no good label to learn from)."""
    import torch

    rows = [r for r in rows if "evidence" in r]
    n_bad = sum(bool(r["bad"]) for r in rows)
    if n_bad == 0 or n_bad == len(rows):
        print(f"cannot fit on {len(rows)} refined labels of which {n_bad} are bad: "
              "grade or score folders that hold both")
        return None
    x = torch.tensor([[getattr(r["evidence"], f) for f in FEATURES] for r in rows],
                     dtype=torch.float64)
    y = torch.tensor([0.0 if r["bad"] else 1.0 for r in rows], dtype=torch.float64)
    w = torch.zeros(len(FEATURES), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        z = x @ w + b
        v = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (w ** 2).sum()
        v.backward()
        return v

    opt.step(loss)
    p = torch.sigmoid(x @ w + b).detach().numpy()
    bad = np.array([r["bad"] for r in rows])
    slopes = dict(zip(FEATURES, (float(c) for c in w.detach().numpy()), strict=True))
    threshold = float("nan")
    if say:
        print(f"fitted on {len(rows)} refined labels ({int(bad.sum())} bad), L2 {l2}:")
        print(f"B0 = {b.item():.2f}")
        for f, c in slopes.items():
            print(f"{f}: {c:.2f}")
    for target in (0.8, 0.7):
        th = np.sort(p[bad])  # the least confident bad labels first
        need = int(np.ceil(target * bad.sum()))
        if need and need <= len(th):
            threshold = float(th[need - 1] + 1e-9)
            flagged = p < threshold
            if say:
                print(f"flag below {threshold:.3f}: recall "
                      f"{np.sum(flagged & bad) / bad.sum():.2f}, precision "
                      f"{np.sum(flagged & bad) / max(flagged.sum(), 1):.2f}, "
                      f"{int(flagged.sum())} flagged")
    return float(b.item()), slopes, threshold


def judge_with(rows: list[dict], b0: float, slopes: dict[str, float], threshold: float) -> None:
    """Judge ``rows``' refined labels with a fitted model instead of seglib's."""
    for r in rows:
        if "evidence" in r:
            z = b0 + sum(c * getattr(r["evidence"], f) for f, c in slopes.items())
            r["confidence"] = 1.0 / (1.0 + np.exp(-z))
            r["flagged"] = bool(r["confidence"] < threshold)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labels", type=Path, nargs="+", help="label folders (labels.csv)")
    ap.add_argument("--truth", nargs="+", default=None, help="true masks per folder (- none)")
    ap.add_argument("--grades", nargs="+", default=None, help="grades CSV per folder (- none)")
    ap.add_argument("--fit", action="store_true", help="fit the logistic model on all rows")
    ap.add_argument("--l2", type=float, default=0.01, help="L2 penalty of the fit")
    ap.add_argument("--cross", action="store_true",
                    help="score each folder with a model fitted on the other folders' rows")
    ap.add_argument("--rejudge", action="store_true",
                    help="judge the recorded evidence with the current seglib.labels.confidence")
    ap.add_argument("--photos", type=Path, default=None,
                    help="the photos: compute the photo's evidence where it was not recorded")
    ap.add_argument("-v", action="store_true", help="one line per label, least confident first")
    args = ap.parse_args()

    def per_folder(values: list[str] | None) -> list[Path | None]:
        values = values or ["-"] * len(args.labels)
        if len(values) != len(args.labels):
            raise SystemExit("give --truth/--grades once per label folder (- for none)")
        return [None if v == "-" else Path(v) for v in values]

    everything: list[list[dict]] = []
    for labels, truth, grades in zip(args.labels, per_folder(args.truth),
                                     per_folder(args.grades), strict=True):
        if truth is None and grades is None:
            raise SystemExit(f"{labels}: give --truth or --grades for it")
        rows = rows_of(labels, truth, grades, args.photos)
        if (args.rejudge or args.fit or args.cross) and any(r.get("incomplete") for r in rows):
            raise SystemExit(f"{labels}: refine_evidence.csv lacks the photo's evidence "
                             "(backdrop, weak_edge; an older seglib wrote it): pass --photos "
                             "PHOTOS to compute it")
        report(rows, str(labels), rejudge=args.rejudge)
        everything.append(rows)
        if args.v:
            for r in sorted(rows, key=lambda r: r["confidence"]):
                print(f"  {r['stem']:<16} {r['source']:<8} conf {r['confidence']:.3f} "
                      f"{'FLAG' if r['flagged'] else '    '} quality {r['quality']:.3f} "
                      f"{'BAD' if r['bad'] else '   '} {r['doubt']}")
    if args.fit:
        fit([r for rows in everything for r in rows], args.l2)
    if args.cross and len(everything) < 2:
        print("--cross needs two or more label folders (or one folder with two grade files)")
    elif args.cross:
        for i, rows in enumerate(everything):
            others = [r for j, o in enumerate(everything) if j != i for r in o]
            model = fit(others, args.l2, say=False)
            if model is not None:
                judge_with(rows, *model)
                report(rows, f"{args.labels[i]} judged by a fit on the other folders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
