"""Folder-level refinement ("self-training") of a labeled folder.

After ``python -m seglib label`` a small U-Net is trained on the folder's confident labels
(status ok, not flagged). Its errors differ from the labeler's: it averages over the whole
folder, so an idiosyncratic mistake of one photo (a trouser leg, a hand, a box edge) is
rarely repeated by the network. For every photo five views of the object then vote, pixel by
pixel (a pixel is object when more than half of them say so):

1. the labeler's pick;
2. the network's object probability ``p`` (a soft vote);
3. the photo's candidate closest (IoU) to the network's mask ``p > 0.5``, leaving out
   candidates GrabCut drew inside a rectangle (their straight cut would show in the vote);
4. GrabCut seeded by the network alone: definite object where ``p > 0.9``, definite
   background where ``p < 0.1``, probable object where ``p > 0.5``, probable background
   elsewhere;
5. GrabCut seeded where the network and the pick agree: definite object where ``p > 0.9``
   and the pick agree, definite background where ``p < 0.1`` and the pick agree, probable
   as in 4.

When the network has too few definite pixels of either kind for 4, it is not sure of anything
and the photo keeps its pick; when 5 lacks seeds, it votes as the pick. The vote (holes
filled) is polished at the photo's resolution as the labeler's refined pick is
(:func:`seglib.masks.shapes.polish`).

The refined mask is appended to the photo's cached candidates as source
``"grabcut:cnn"`` (the original candidates stay as they were), becomes the photo's choice in
``labels.csv`` (its index; the record's ``source`` becomes ``refined`` and ``round`` the round)
and its trimap is rewritten. The record's ``confidence``, ``flagged`` and ``doubt`` become
the refined label's own, judged from the vote's evidence (:mod:`seglib.labels.confidence`: how much
the views agree, where the network and the pick disagree, how sure the network is along the
outline, and what the photo says of its colours and outline); the evidence of each photo's
last redraw is kept in ``refine_evidence.csv``, written each time ``labels.csv`` is (just
before it). A run killed after redrawing a trimap but before recording it is finished by the
next run, which judges that label from its evidence row, or flags it with its confidence
unknown when the row was lost too (:data:`LOST_EVIDENCE`). The
network trains on the labels the *policy* did not flag (``pick_flagged``), so refinement's
own flags never change what a later round or rerun trains on. Labels a person chose or drew
(source ``override``, ``imported``, ``edited``) are never redrawn, and count as confident for
the training; a photo also keeps its label when the refined mask would be empty.

This runs in ``ROUNDS`` rounds (2 by default): each round trains a new network on the labels
as the previous round left them, so the second one learns from better labels. :func:`refine_photo`
does one photo (nothing written; the unit a parallel run calls); :func:`refine_labels` is the
folder loop.

Folders of fewer than ``MIN_PHOTOS`` confident photos are left as they are (too few to
train on). The trained models stay in ``LABELS/refine_model`` and ``refine_model_2``, ...
(normal training runs).
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256
from seglib.core.images import list_images, read_image, resize_image
from seglib.core.parallel import map_photos
from seglib.core.tables import read_csv, write_csv
from seglib.labels.confidence import Evidence, evidence, judge_refined
from seglib.labels.store import LABELS_CSV, LabelRecord, LabelStore, made_by_seglib
from seglib.masks.candidates import REFINED_SOURCE, Candidates
from seglib.masks.metrics import mask_iou
from seglib.masks.shapes import fill_holes, grabcut, polish
from seglib.masks.trimap import OBJECT, load_trimap, mask_to_trimap, resize_mask
from seglib.training.data import SPLIT_SEED
from seglib.training.presets import Preset

SOURCE = REFINED_SOURCE
# candidates GrabCut drew inside a rectangle: where the rectangle cuts the object they end in a
# straight line, which the closest-candidate view would carry into the vote
RECT_SOURCES = ("grabcut:bbox", "grabcut:rect90")
MIN_PHOTOS = 30
MODEL_DIR = "refine_model"
SURE_OBJECT, SURE_BACKGROUND = 0.9, 0.1
ROUNDS = 2  # refinement rounds: the second learns from the first one's labels
MIN_SEEDS = 20  # pixels of each definite class GrabCut needs to be worth running
# a label a killed run redrew before it recorded the evidence: flagged, confidence unknown
LOST_EVIDENCE = ("recovered after an interrupted run: refinement's evidence for it was lost, "
                 "so its confidence is unknown")
# each refined label's evidence (seglib.labels.confidence.Evidence) and judgement, one row per photo
EVIDENCE_CSV = "refine_evidence.csv"
EVIDENCE_COLUMNS = ("stem", "round", "trimap_hash", *Evidence.__dataclass_fields__,
                    "confidence", "flagged", "doubt")
# why a photo keeps its label (RefineSummary.kept_why)
KEPT_OVERRIDE = "chosen or drawn by a person (override, imported, edited)"
KEPT_DONE = "redrawn by an earlier run"
KEPT_UNSURE = "where the CNN was sure of nothing"
KEPT_UNREADABLE = "without readable photo, trimap or candidates"
KEPT_WORKER = "whose worker died (refine again to redo them)"
KEPT_REASONS = (KEPT_OVERRIDE, KEPT_DONE, KEPT_UNSURE, KEPT_UNREADABLE, KEPT_WORKER)


@dataclass
class RefineSummary:
    """What :func:`refine_labels` did."""

    labels_dir: Path
    rounds: int = 1
    total: int = 0  # labeled photos considered
    trained_on: int = 0  # confident labels the network was trained on
    refined: int = 0  # photos whose trimap was replaced by the refined mask
    kept: int = 0  # photos left as they were (override, unsure network, empty mask)
    skipped: str = ""  # why the whole folder was left alone ("" when it was refined)
    train_seconds: float = 0.0
    seconds: float = 0.0
    model: Path | None = None
    changed: list[str] = field(default_factory=list)
    # why the kept photos were kept: reason -> count (manual override, redrawn by an earlier
    # run, the CNN sure of nothing, unreadable files)
    kept_why: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        if self.skipped:
            return f"{self.labels_dir}: refinement skipped ({self.skipped})"
        why = ", ".join(f"{n} {reason}" for reason, n in self.kept_why.items() if n)
        return (f"{self.labels_dir}: refined {self.refined}/{self.total} labels in "
                f"{self.rounds} round(s), each with a CNN trained on {self.trained_on} "
                f"confident ones ({self.kept} kept{': ' + why if why else ''}) in "
                f"{self.seconds:.1f} s (training {self.train_seconds:.1f} s)"
                + ("; the CNN learned too little, train it longer (--epochs)"
                   if self.refined == 0 and self.kept_why.get(KEPT_UNSURE) else ""))


def object_probability(logits: np.ndarray) -> np.ndarray:
    """P(object) from 3×H×W class logits (object, background, border); border counts half."""
    z = np.asarray(logits, dtype=np.float32)
    e = np.exp(z - z.max(0))
    e /= e.sum(0)
    return e[OBJECT - 1] + 0.5 * e[2]


def _grabcut_from(image: np.ndarray, prob: np.ndarray, fg: np.ndarray, bg: np.ndarray,
                  iterations: int) -> np.ndarray | None:
    """GrabCut with definite seeds ``fg``/``bg``, probable object where ``prob > 0.5``;
    ``None`` when either seed has fewer than ``MIN_SEEDS`` pixels."""
    if np.count_nonzero(fg) < MIN_SEEDS or np.count_nonzero(bg) < MIN_SEEDS:
        return None
    gc = np.where(prob > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[fg] = cv2.GC_FGD
    gc[bg] = cv2.GC_BGD
    return fill_holes(grabcut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), mask=gc, iters=iterations))


def grabcut_agree(image: np.ndarray, prob: np.ndarray, pick: np.ndarray,
                  iterations: int = 4) -> np.ndarray | None:
    """GrabCut seeded where the network and the pick agree (view 5); ``None`` when seeds are
    too few.

    ``image`` RGB uint8 H×W×3, ``prob`` float H×W object probability, ``pick`` bool H×W.
    """
    pick = np.asarray(pick, dtype=bool)
    return _grabcut_from(image, prob, (prob > SURE_OBJECT) & pick,
                         (prob < SURE_BACKGROUND) & ~pick, iterations)


def grabcut_seeded(image: np.ndarray, prob: np.ndarray, iterations: int = 4
                   ) -> np.ndarray | None:
    """GrabCut seeded by the network alone (view 4); ``None`` when seeds are too few."""
    return _grabcut_from(image, prob, prob > SURE_OBJECT, prob < SURE_BACKGROUND, iterations)


def refine_views(image: np.ndarray, prob: np.ndarray, pick: np.ndarray,
                 candidates: np.ndarray) -> list[np.ndarray] | None:
    """The five views of the module docstring (pick, network probability, closest candidate,
    the two GrabCuts); ``None`` when the network is not sure of anything.

    ``image`` RGB uint8 H×W×3, ``prob`` float H×W object probability, ``pick`` bool H×W,
    ``candidates`` bool K×H×W (the photo's cached candidates; may be empty).
    """
    pick = np.asarray(pick, dtype=bool)
    alone = grabcut_seeded(image, prob)
    if alone is None:
        return None
    net = prob > 0.5
    closest = net
    if len(candidates):
        closest = candidates[int(np.argmax([mask_iou(m, net) for m in candidates]))]
    agree = grabcut_agree(image, prob, pick)
    return [pick, prob, closest, alone, pick if agree is None else agree]


def vote(image: np.ndarray, views: list[np.ndarray]) -> np.ndarray:
    """The pixel vote of ``views`` (object where more than half say so), holes filled and
    polished at the photo's resolution."""
    mask = np.mean([np.asarray(v, dtype=np.float32) for v in views], axis=0) > 0.5
    mask = fill_holes(mask)
    return polish(image, mask) if mask.any() else mask


def refined_mask(image: np.ndarray, prob: np.ndarray, pick: np.ndarray,
                 candidates: np.ndarray) -> np.ndarray | None:
    """The five-view vote (:func:`refine_views`, :func:`vote`); ``None`` when the network is
    not sure of anything (the photo keeps its pick)."""
    views = refine_views(image, prob, pick, candidates)
    return None if views is None else vote(image, views)


def voting_candidates(cands: Candidates) -> np.ndarray:
    """The masks the closest-candidate view chooses from: the photo's candidates except an
    earlier refined mask, those drawn inside a rectangle (:data:`RECT_SOURCES`) and the
    background regions (``region:*``, never the object)."""
    keep = [i for i, src in enumerate(cands.sources)
            if src != SOURCE and src not in RECT_SOURCES and not src.startswith("region:")]
    return cands.masks[keep]


def _with_refined(cands: Candidates, mask: np.ndarray) -> tuple[Candidates, int]:
    """``cands`` plus ``mask`` as source ``SOURCE`` (replacing an earlier refined one)."""
    base = cands.without(SOURCE)
    masks = np.concatenate([base.masks, mask[None]], axis=0)
    piou = np.append(base.predicted_iou, 1.0)
    stab = np.append(base.stability, 1.0)
    obj = None if base.object_score is None else np.append(base.object_score, 1.0)
    return Candidates(masks, piou, stab, [*base.sources, SOURCE], cands.backend,
                      cands.photo_hash, object_score=obj), len(base)


def _record_lost_redraw(store: LabelStore, rec: LabelRecord, rnd: int,
                        evidence_rows: dict[str, dict[str, str]]) -> bool:
    """Whether the photo's trimap is the one seglib draws from its refined candidate (a run
    killed after redrawing it, before ``labels.csv`` said so); then the record says so too,
    judged from the round's evidence row when the killed run wrote it, else flagged (its
    confidence unknown: the evidence was lost with the run)."""
    try:
        cands = store.load_candidates(rec.stem)
        trimap = load_trimap(store.trimap_path(rec.stem))
    except SeglibError:
        return False
    idx = [str(i) for i, s in enumerate(cands.sources) if s == SOURCE]
    if not idx or not made_by_seglib(trimap, cands, idx):
        return False
    rec.trimap_hash = file_sha256(store.trimap_path(rec.stem))
    rec.source, rec.round, rec.chosen = "refined", rnd, idx[0]
    rec.reason = f"refined in round {rnd} ({SOURCE})"
    e = _evidence_of(evidence_rows.get(rec.stem, {}), rnd, rec.trimap_hash)
    if e is None:
        rec.confidence, rec.flagged, rec.doubt = None, True, LOST_EVIDENCE
    else:
        rec.confidence, rec.flagged, rec.doubt = judge_refined(e)
    store.put(rec)
    return True


def _evidence_of(row: dict[str, str], rnd: int, trimap_hash: str) -> Evidence | None:
    """The :class:`Evidence` of an ``EVIDENCE_CSV`` row when it was written for this round's
    redraw of this very trimap and holds every feature, in [0, 1]; else None."""
    if row.get("round") != str(rnd) or not trimap_hash or row.get("trimap_hash") != trimap_hash:
        return None
    try:
        values = evidence_values(row)
    except (TypeError, ValueError):
        return None
    if values.keys() != Evidence.__dataclass_fields__.keys() or not all(
            0.0 <= v <= 1.0 for v in values.values()):  # also rejects nan
        return None
    return Evidence(**values)


def evidence_values(row: dict[str, str]) -> dict[str, float]:
    """The :class:`Evidence` features an ``EVIDENCE_CSV`` row holds (a row written by an
    older seglib lacks some), as numbers; ``ValueError`` for one that is not a number."""
    return {k: float(v) for k, v in row.items()
            if k in Evidence.__dataclass_fields__ and v not in ("", None)}


def _confident(records: list[LabelRecord], labels_dir: Path) -> list[str]:
    """Labels to train on: status ok and a pick the policy did not flag (refinement's own
    flags leave the set alone, so every round and every rerun trains on the same photos), or
    chosen/drawn by a person."""
    return [r.stem for r in records
            if r.ok and (r.sure or not r.pick_flagged)
            and (labels_dir / f"{r.stem}.png").is_file()]


def _read_evidence(labels_dir: Path) -> dict[str, dict[str, str]]:
    """The rows of ``EVIDENCE_CSV`` by stem (empty when it is missing or unreadable)."""
    try:
        return {r["stem"]: r for r in read_csv(labels_dir / EVIDENCE_CSV) if r.get("stem")}
    except (OSError, SeglibError, KeyError):
        return {}


def _write_evidence(labels_dir: Path, rows: dict[str, dict[str, str]]) -> None:
    if rows:
        write_csv(labels_dir / EVIDENCE_CSV, [rows[s] for s in sorted(rows)], EVIDENCE_COLUMNS)


@contextlib.contextmanager
def _evidence_kept(labels_dir: Path, rows: dict[str, dict[str, str]]) -> Iterator[None]:
    """Write ``rows`` when the block ends, however it ends (Ctrl-C, an error): before the
    store's lock saves ``labels.csv`` on its way out, so no recorded label lacks its row."""
    try:
        yield
    finally:
        _write_evidence(labels_dir, rows)


def _trained_on(model_dir: Path) -> int:
    """Photos (training + validation) of the run in ``model_dir``; -1 when unreadable."""
    from seglib.training.checkpoints import load_checkpoint

    for name in ("last.pt", "best.pt"):
        try:
            cfg = load_checkpoint(model_dir / name)["config"]
            return int(cfg["n_train"]) + int(cfg["n_val"])
        except (SeglibError, KeyError, TypeError, ValueError):
            continue
    return -1


@dataclass
class RefinedPhoto:
    """What :func:`refine_photo` made of one photo: the new candidates and trimap, or why the
    photo keeps its label."""

    stem: str
    candidates: Candidates | None = None  # the cached candidates plus the refined mask
    chosen: int = -1  # the refined mask's index in ``candidates``
    trimap: np.ndarray | None = None  # at the photo's size
    evidence: Evidence | None = None  # what the views say about the refined mask
    kept: str = ""  # one of KEPT_REASONS when the label stays
    message: str = ""


def _refine_job(model, job: tuple[str, Path, Path, Path, float | None]) -> RefinedPhoto:
    return refine_photo(*job[:4], model, pick_confidence=job[4])


def refine_photo(stem: str, photo_path: Path, candidates_path: Path, trimap_path: Path,
                 model, pick_confidence: float | None = None) -> RefinedPhoto:
    """The five-view vote for one photo with a trained ``model``, and its evidence
    (:func:`seglib.labels.confidence.evidence`; ``pick_confidence`` is the policy's confidence in
    the photo's pick); writes nothing."""
    from seglib.training.predict import predict_logits

    try:
        cands = Candidates.load(candidates_path)
        trimap = load_trimap(trimap_path)
        photo = read_image(photo_path)
    except SeglibError as exc:
        return RefinedPhoto(stem, kept=KEPT_UNREADABLE, message=f"kept {stem}: {exc}")
    h, w = cands.shape
    work = resize_image(photo, (h, w))
    pick = resize_mask(trimap == OBJECT, (h, w))
    prob = object_probability(predict_logits(model, work))
    views = refine_views(work, prob, pick, voting_candidates(cands))
    mask = None if views is None else vote(work, views)
    if mask is None or not mask.any():
        return RefinedPhoto(stem, kept=KEPT_UNSURE)
    assert views is not None
    new, idx = _with_refined(cands, mask)
    return RefinedPhoto(stem, new, idx, mask_to_trimap(resize_mask(mask, trimap.shape[:2])),
                        evidence=evidence(work, mask, views, prob, pick, pick_confidence))


def _train_or_reuse(images_dir: Path, trimaps: Path, model_dir: Path,
                    say: Callable[[str], None], **options: object) -> None:
    """Train the refining CNN into ``model_dir``, resuming an interrupted one.

    A finished model is reused even when the labels changed since (the round's own redrawing
    changes them); an interrupted one whose photos or labels changed is trained again.
    """
    from seglib.training.checkpoints import RunMismatchError
    from seglib.training.loop import train_run

    try:
        train_run(images_dir, trimaps, model_dir, resume=True, log=say,
                  **options)  # type: ignore[arg-type]
    except RunMismatchError as exc:
        if _finished(model_dir):
            return
        say(f"{model_dir.name}: training again ({str(exc).split(': ', 1)[-1].split(';')[0]})")
        shutil.rmtree(model_dir)
        train_run(images_dir, trimaps, model_dir, log=say, **options)  # type: ignore[arg-type]


def _finished(model_dir: Path) -> bool:
    try:
        return bool(json.loads((model_dir / "metrics.json").read_text())["finished"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def refine_labels(
    images_dir: str | Path,
    labels_dir: str | Path,
    *,
    rounds: int = ROUNDS,
    size: int = 128,
    preset: str | Preset = "quick",
    epochs: int | None = None,
    device: str = "auto",
    seed: int = SPLIT_SEED,
    min_photos: int = MIN_PHOTOS,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
) -> RefineSummary:
    """Refine the labels of ``labels_dir`` (output of ``label`` on ``images_dir``) in place.

    Each of ``rounds`` rounds trains a U-Net (training recipe ``preset``, ``size`` px,
    ``epochs``; by default enough for about 6000 photo views, at least 10 epochs and at most
    200) on the confident labels as they are then, into ``labels_dir/refine_model`` (round 1)
    or ``refine_model_<k>`` (reused when it is already there, unless ``retrain``), and
    replaces each photo's label by the five-view vote (see the module docstring). A second
    round learns from the first round's better labels. Rerunning resumes: photos already
    redrawn in a round are not redrawn in it again. Needs at least ``min_photos`` confident
    labels. ``seed`` seeds each round's training (weights and batch order).

    ``workers``/``engine``/``address`` run the per-photo votes in parallel
    (:mod:`seglib.core.parallel`; each worker loads the round's network once, reads the photo,
    its candidates and trimap, and this process writes the results); the training stays one
    run. The labels are those of a one-process run.
    """
    from seglib.training.data import load_dataset
    from seglib.training.predict import load_model

    if rounds < 1:
        raise SeglibError(f"rounds must be at least 1, got {rounds}")
    say = log or (lambda m: tqdm.write(m, file=sys.stderr))
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    t_start = time.perf_counter()
    if not (labels_dir / LABELS_CSV).is_file():
        raise SeglibError(f"{labels_dir}: no {LABELS_CSV}; run `python -m seglib label "
                          f"{images_dir} --out {labels_dir}` first")
    photos = {p.stem: p for p in list_images(images_dir)}
    if not photos:
        raise SeglibError(f"{images_dir}: no .jpg/.jpeg/.png photos found; check the folder")
    summary = RefineSummary(labels_dir=labels_dir, rounds=rounds)
    store = LabelStore(labels_dir)
    with store.lock():
        store.reload()
        records = [r for r in store.ok_records() if r.stem in photos]
        ok = [r.stem for r in records]
        summary.total = len(ok)
        train_stems = _confident(records, labels_dir)
        summary.trained_on = len(train_stems)
        if len(train_stems) < min_photos:
            summary.skipped = (f"only {len(train_stems)} confident labels, at least "
                               f"{min_photos} are needed to train the refining CNN")
            say(summary.describe())
            summary.seconds = time.perf_counter() - t_start
            return summary
        if epochs is None:
            epochs = int(min(200, max(10, np.ceil(6000 / len(train_stems)))))
        overrides = store.overrides()
        changed: set[str] = set()
        why: dict[str, str] = {}  # stem -> why a round left it alone (the last round's reason)
        evidence_rows = _read_evidence(labels_dir)
        for rnd in range(1, rounds + 1):
            model_dir = labels_dir / (MODEL_DIR if rnd == 1 else f"{MODEL_DIR}_{rnd}")
            if model_dir.exists() and (retrain or _trained_on(model_dir) != len(train_stems)):
                shutil.rmtree(model_dir)  # asked for, or the folder's labels changed since
            t0 = time.perf_counter()
            # the confident labels only; messages name the user's label folder
            data = load_dataset(images_dir, labels_dir, size, log=say, stems=train_stems)
            _train_or_reuse(images_dir, labels_dir, model_dir, say, preset=preset, size=size,
                            epochs=epochs, device=device, seed=seed, progress=progress,
                            dataset=data)
            summary.train_seconds += time.perf_counter() - t0
            summary.model = model_dir / "best.pt"
            todo = []
            for stem in sorted(ok):
                rec = store.get(stem)
                assert rec is not None
                if rec.sure or stem in overrides:
                    why[stem] = KEPT_OVERRIDE
                elif rec.source == "refined" and rec.round >= rnd:
                    why[stem] = KEPT_DONE
                elif store.trimap_state(stem) == "changed":
                    if _record_lost_redraw(store, rec, rnd, evidence_rows):  # a killed run
                        changed.add(stem)
                    else:  # edited by hand since: keep it
                        why[stem] = KEPT_OVERRIDE
                else:
                    todo.append((stem, photos[stem], store.candidates_path(stem),
                                 store.trimap_path(stem), rec.pick_confidence))
            setup = functools.partial(load_model, summary.model, device)
            with tqdm(total=len(ok), initial=len(ok) - len(todo), unit="photo",
                      desc=f"refine round {rnd}/{rounds}", file=sys.stderr,
                      disable=not progress) as bar, _evidence_kept(labels_dir, evidence_rows):
                for done in map_photos(_refine_job, todo, setup=setup, workers=workers,
                                       engine=engine, address=address, gpu=True):
                    bar.update()
                    stem = done.item[0]
                    out = done.value if done.ok else RefinedPhoto(
                        stem, kept=KEPT_WORKER, message=f"kept {stem}: {done.error}")
                    if out.kept:
                        if out.message:
                            say(out.message)
                        why[stem] = out.kept
                        continue
                    assert out.candidates is not None and out.trimap is not None
                    assert out.evidence is not None
                    conf, flagged, doubt = judge_refined(out.evidence)  # before any write
                    rec = store.get(stem)
                    assert rec is not None
                    out.candidates.save(store.candidates_path(stem))
                    was = rec.chosen if rec.source == "pick" else ""
                    drawn = store.write_trimap(stem, out.trimap)
                    # its evidence, before the record: a stop from here on leaves a redrawn
                    # label that the next run judges from this row (_record_lost_redraw)
                    evidence_rows[stem] = {"stem": stem, "round": str(rnd), "trimap_hash": drawn,
                                           **{k: f"{v:.4f}" for k, v in
                                              out.evidence.as_dict().items()},
                                           "confidence": f"{conf:.4f}",
                                           "flagged": str(int(flagged)), "doubt": doubt}
                    rec.trimap_hash = drawn
                    rec.source, rec.round, rec.chosen = "refined", rnd, str(out.chosen)
                    rec.reason = (f"refined in round {rnd} ({SOURCE}"
                                  + (f"; the pick was {was})" if was else ")"))
                    rec.confidence, rec.flagged, rec.doubt = conf, flagged, doubt
                    store.put(rec)
                    if store.save_due():  # the evidence first: a label it names but
                        _write_evidence(labels_dir, evidence_rows)  # labels.csv does not
                        store.save()  # yet is judged from it by the next run
                    changed.add(stem)
        store.save()
    summary.changed = sorted(changed)
    summary.refined = len(changed)
    summary.kept = summary.total - summary.refined
    kept_reasons = [why.get(s, KEPT_UNREADABLE) for s in ok if s not in changed]
    summary.kept_why = {r: kept_reasons.count(r) for r in KEPT_REASONS}
    summary.seconds = time.perf_counter() - t_start
    return summary
