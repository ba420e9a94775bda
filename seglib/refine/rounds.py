"""Folder-level refinement ("self-training") of a labeled folder: the rounds.

After ``python -m seglib label`` a small U-Net is trained on the folder's confident labels
(status ok, not flagged). Its errors differ from the labeler's: it averages over the whole
folder, so an idiosyncratic mistake of one photo (a trouser leg, a hand, a box edge) is
rarely repeated by the network. For every photo five views of the object then vote on its
label (:mod:`seglib.refine.views`).

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

This runs in ``ROUNDS`` rounds (2 by default): each round trains a network on the labels
as the previous round left them, so the second one learns from better labels (by default
it fine-tunes the first one's network for half its epochs, ``FINE_TUNE``).
:func:`seglib.refine.views.refine_photo` does one photo (nothing written; the unit a parallel
run calls); :func:`refine_labels` is the folder loop (per round: train the network, plan the
photos, run the votes, commit each result).

Folders of fewer than ``MIN_PHOTOS`` confident photos are left as they are (too few to
train on). The trained models stay in ``LABELS/refine_model`` and ``refine_model_2``, ...
(normal training runs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256
from seglib.core.images import list_images
from seglib.core.parallel import map_photos
from seglib.core.tables import read_csv, write_csv
from seglib.labels.confidence import Evidence, of_refined, unknown
from seglib.labels.store import LABELS_CSV, LabelRecord, LabelStore, made_by_seglib
from seglib.masks.trimap import load_trimap
from seglib.refine.views import (
    GRABCUT_SIDE,
    KEPT_DONE,
    KEPT_OVERRIDE,
    KEPT_REASONS,
    KEPT_UNREADABLE,
    KEPT_UNSURE,
    KEPT_WORKER,
    SOURCE,
    RefinedPhoto,
    refine_photo,
)
from seglib.training.data import SPLIT_SEED
from seglib.training.presets import Preset, get_preset

MIN_PHOTOS = 30
# each round's network trains on about this many photo views (epochs × photos), at least
# MIN_EPOCHS and at most 200 epochs, validating at most VALIDATIONS times (None: the preset's
# max_validations). Fewer views and validations are keywords of refine_labels; issue 24 left
# the defaults as they were until their labels are measured against these (docs/benchmarks.md)
PHOTO_VIEWS = 6000
MIN_EPOCHS = 10
VALIDATIONS: int | None = None
# the networks' input side (issue 24: 96 px trains in about half the time of 128 px, the
# probability is upsampled to the photo for the votes anyway; docs/benchmarks.md)
SIZE = 96
# rounds after the first start from the previous round's network and train this fraction of
# the first round's epochs (None: each round trains a new network from scratch, as before)
FINE_TUNE: float | None = 0.5
# torch threads while a round's network trains (None: torch's own, one per core). One: on
# a shared 2-core machine (load 6-7) a training step at 96 px took 0.29-0.39 s on one thread
# and 2.2-3.2 s on two; at load 1 two were 1.4-1.6x faster (docs/benchmarks.md)
TRAIN_THREADS: int | None = 1
MODEL_DIR = "refine_model"
ROUNDS = 2  # refinement rounds: the second learns from the first one's labels
# a label a killed run redrew before it recorded the evidence: flagged, confidence unknown
LOST_EVIDENCE = ("recovered after an interrupted run: refinement's evidence for it was lost, "
                 "so its confidence is unknown")
# each refined label's evidence (seglib.labels.confidence.Evidence) and judgement, one row per photo
EVIDENCE_CSV = "refine_evidence.csv"
# what _refine_job gets for one photo: stem, photo, candidates, trimap, the pick's confidence,
# the vote's grabcut_side and polish_crop
_Todo = tuple[str, Path, Path, Path, float | None, int | None, bool]
EVIDENCE_COLUMNS = ("stem", "round", "trimap_hash", *Evidence.__dataclass_fields__,
                    "confidence", "flagged", "doubt")


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
    rec.confidence, rec.flagged, rec.doubt = unknown(LOST_EVIDENCE) if e is None else of_refined(e)
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


def _refine_job(model, job: _Todo) -> RefinedPhoto:
    return refine_photo(*job[:4], model, pick_confidence=job[4], grabcut_side=job[5],
                        polish_crop=job[6])


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
    rounds: int = ROUNDS, size: int = SIZE, preset: str | Preset = "quick",
    epochs: int | None = None, photo_views: int = PHOTO_VIEWS, min_epochs: int = MIN_EPOCHS,
    validations: int | None = VALIDATIONS, fine_tune: float | None = FINE_TUNE,
    train_threads: int | None = TRAIN_THREADS,
    grabcut_side: int | None = GRABCUT_SIDE, polish_crop: bool = True,
    device: str = "auto", seed: int = SPLIT_SEED, min_photos: int = MIN_PHOTOS,
    retrain: bool = False, log: Callable[[str], None] | None = None, progress: bool = True,
    workers: int | None = None, engine: str = "local", address: str | None = None,
) -> RefineSummary:
    """Refine the labels of ``labels_dir`` (output of ``label`` on ``images_dir``) in place.

    Each of ``rounds`` rounds trains a U-Net (training recipe ``preset``, ``size`` px,
    ``epochs``; by default enough for about ``photo_views`` photo views, at least
    ``min_epochs`` and at most 200, validating at most ``validations`` times, None: the
    preset's) on the confident labels as they are then, into ``labels_dir/refine_model`` (round 1)
    or ``refine_model_<k>`` (reused when it is already there, unless ``retrain``), and
    replaces each photo's label by the five-view vote (see the module docstring). A second
    round learns from the first round's better labels. Rerunning resumes: photos already
    redrawn in a round are not redrawn in it again. Needs at least ``min_photos`` confident
    labels. ``seed`` seeds each round's training (weights and batch order). ``fine_tune``:
    a later round fine-tunes the previous round's network for this fraction of the first
    round's epochs (:data:`FINE_TUNE`; None: trains a new one from scratch);
    ``train_threads``: torch threads while it trains (:data:`TRAIN_THREADS`).

    ``grabcut_side``/``polish_crop``: the votes' GrabCuts (:func:`refine_photo`; the defaults
    are issue 24's fast path). ``workers``/``engine``/``address`` run the per-photo votes in
    parallel (:mod:`seglib.core.parallel`; each worker loads the round's network once), the
    training stays one run; the labels are those of a one-process run.
    """
    if rounds < 1:
        raise SeglibError(f"rounds must be at least 1, got {rounds}")
    say = log or (lambda m: tqdm.write(m, file=sys.stderr))
    images_dir, labels_dir, t_start = Path(images_dir), Path(labels_dir), time.perf_counter()
    photos = _plan_photos(images_dir, labels_dir)
    summary = RefineSummary(labels_dir=labels_dir, rounds=rounds)
    store = LabelStore(labels_dir)
    with store.lock():
        store.reload()
        run = _plan_pass(store, photos, summary, say=say, rounds=rounds, progress=progress,
                         min_photos=min_photos)
        if run is None:
            summary.seconds = time.perf_counter() - t_start
            return summary
        n = len(run.train_stems)  # about photo_views photo views, min_epochs to 200 epochs
        epochs = epochs or int(min(200, max(min_epochs, np.ceil(photo_views / n))))
        recipe = _recipe(preset, validations)
        for rnd in range(1, rounds + 1):
            _train_round(run, rnd, images_dir=images_dir, retrain=retrain, preset=recipe,
                         size=size, epochs=epochs, device=device, seed=seed,
                         fine_tune=fine_tune, threads=train_threads)
            _run_round(run, rnd, _plan_round(run, rnd, (grabcut_side, polish_crop)),
                       device=device, workers=workers, engine=engine, address=address)
        store.save()
    _tally(run)
    summary.seconds = time.perf_counter() - t_start
    return summary


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch uses ``threads`` threads in the block (None: as it was), then as before."""
    import torch

    was = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(was)


def _round_epochs(epochs: int, init: Path | None, fine_tune: float | None) -> int:
    """A round's epochs: ``epochs`` from scratch, ``fine_tune`` of them (at least one) when
    it starts from the weights ``init``."""
    return epochs if init is None or not fine_tune else max(1, int(np.ceil(epochs * fine_tune)))


def _recipe(preset: str | Preset, validations: int | None) -> str | Preset:
    """The training recipe of the refining networks: ``preset`` validating at most
    ``validations`` times (None: as the preset says)."""
    if validations is None:
        return preset
    p = get_preset(preset) if isinstance(preset, str) else preset
    return dataclasses.replace(p, max_validations=validations)


def _tally(run: _RefinePass) -> None:
    """The summary's counts: the labels redrawn, those kept and why."""
    summary = run.summary
    summary.changed = sorted(run.changed)
    summary.refined = len(run.changed)
    summary.kept = summary.total - summary.refined
    kept_reasons = [run.why.get(s, KEPT_UNREADABLE) for s in run.ok if s not in run.changed]
    summary.kept_why = {r: kept_reasons.count(r) for r in KEPT_REASONS}


def _plan_photos(images_dir: Path, labels_dir: Path) -> dict[str, Path]:
    """The photos of ``images_dir`` by stem; refuses a folder that was never labeled or has
    no photos."""
    if not (labels_dir / LABELS_CSV).is_file():
        raise SeglibError(f"{labels_dir}: no {LABELS_CSV}; run `python -m seglib label "
                          f"{images_dir} --out {labels_dir}` first")
    photos = {p.stem: p for p in list_images(images_dir)}
    if not photos:
        raise SeglibError(f"{images_dir}: no .jpg/.jpeg/.png photos found; check the folder")
    return photos


@dataclass
class _RefinePass:
    """What the steps of :func:`refine_labels` share: the store, the summary, the photos and
    what the rounds have done so far."""

    store: LabelStore
    summary: RefineSummary
    photos: dict[str, Path]  # the photo of each stem
    ok: list[str]  # stems of the labels considered (status ok, photo present)
    train_stems: list[str]  # the labels every round trains on
    overrides: dict[str, str]
    evidence_rows: dict[str, dict[str, str]]  # EVIDENCE_CSV's rows, by stem
    say: Callable[[str], None]
    rounds: int
    progress: bool
    changed: set[str] = field(default_factory=set)  # stems redrawn by this run
    why: dict[str, str] = field(default_factory=dict)  # stem -> why the last round kept it

    @property
    def labels_dir(self) -> Path:
        return self.store.folder


def _plan_pass(store: LabelStore, photos: dict[str, Path], summary: RefineSummary, *,
               say: Callable[[str], None], rounds: int, progress: bool,
               min_photos: int) -> _RefinePass | None:
    """The labels to refine and to train on; ``None`` (the summary says why) when too few
    are confident to train on."""
    records = [r for r in store.ok_records() if r.stem in photos]
    ok = [r.stem for r in records]
    summary.total = len(ok)
    train_stems = _confident(records, store.folder)
    summary.trained_on = len(train_stems)
    if len(train_stems) < min_photos:
        summary.skipped = (f"only {len(train_stems)} confident labels, at least "
                           f"{min_photos} are needed to train the refining CNN")
        say(summary.describe())
        return None
    return _RefinePass(store=store, summary=summary, photos=photos, ok=ok,
                       train_stems=train_stems, overrides=store.overrides(),
                       evidence_rows=_read_evidence(store.folder), say=say, rounds=rounds,
                       progress=progress)


def _train_round(run: _RefinePass, rnd: int, *, images_dir: Path, retrain: bool,
                 preset: str | Preset, size: int, epochs: int, device: str, seed: int,
                 fine_tune: float | None = None, threads: int | None = None) -> None:
    """Train round ``rnd``'s network on the confident labels (or reuse it) with ``threads``
    torch threads: ``epochs`` from scratch, or with ``fine_tune`` a later round that
    fraction of them from the previous round's ``best.pt``."""
    from seglib.training.data import load_dataset

    labels_dir = run.labels_dir
    model_dir = labels_dir / (MODEL_DIR if rnd == 1 else f"{MODEL_DIR}_{rnd}")
    if model_dir.exists() and (retrain or _trained_on(model_dir) != len(run.train_stems)):
        shutil.rmtree(model_dir)  # asked for, or the folder's labels changed since
    t0 = time.perf_counter()
    # the confident labels only; messages name the user's label folder
    data = load_dataset(images_dir, labels_dir, size, log=run.say, stems=run.train_stems)
    init = run.summary.model if fine_tune and rnd > 1 else None
    with _torch_threads(threads):
        _train_or_reuse(images_dir, labels_dir, model_dir, run.say, preset=preset, size=size,
                        epochs=_round_epochs(epochs, init, fine_tune), device=device,
                        seed=seed, progress=run.progress, dataset=data, init=init)
    run.summary.train_seconds += time.perf_counter() - t0
    run.summary.model = model_dir / "best.pt"


def _plan_round(run: _RefinePass, rnd: int, how: tuple[int | None, bool]) -> list[_Todo]:
    """The photos round ``rnd`` votes on; the others keep their label, and why. ``how`` is
    the vote's (grabcut_side, polish_crop) (:func:`seglib.refine.views.refine_photo`)."""
    store, todo = run.store, []
    for stem in sorted(run.ok):
        rec = store.get(stem)
        assert rec is not None
        if rec.sure or stem in run.overrides:
            run.why[stem] = KEPT_OVERRIDE
        elif rec.source == "refined" and rec.round >= rnd:
            run.why[stem] = KEPT_DONE
        elif store.trimap_state(stem) == "changed":
            if _record_lost_redraw(store, rec, rnd, run.evidence_rows):  # a killed run
                run.changed.add(stem)
            else:  # edited by hand since: keep it
                run.why[stem] = KEPT_OVERRIDE
        else:
            todo.append((stem, run.photos[stem], store.candidates_path(stem),
                         store.trimap_path(stem), rec.pick_confidence, *how))
    return todo


def _run_round(run: _RefinePass, rnd: int, todo: list[_Todo], *, device: str,
               workers: int | None, engine: str, address: str | None) -> None:
    """The votes of round ``rnd`` (in this process or workers), each committed as it comes."""
    from seglib.training.predict import load_model

    setup = functools.partial(load_model, run.summary.model, device)
    n = len(run.ok)
    with tqdm(total=n, initial=n - len(todo), unit="photo",
              desc=f"refine round {rnd}/{run.rounds}", file=sys.stderr,
              disable=not run.progress) as bar, _evidence_kept(run.labels_dir, run.evidence_rows):
        for done in map_photos(_refine_job, todo, setup=setup, workers=workers,
                               engine=engine, address=address, gpu=True):
            bar.update()
            stem = done.item[0]
            out = done.value if done.ok else RefinedPhoto(
                stem, kept=KEPT_WORKER, message=f"kept {stem}: {done.error}")
            if out.kept:
                if out.message:
                    run.say(out.message)
                run.why[stem] = out.kept
                continue
            _commit_refined(run, stem, out, rnd)


def _commit_refined(run: _RefinePass, stem: str, out: RefinedPhoto, rnd: int) -> None:
    """Write a photo's refined label: candidates, trimap, its evidence row, then the record."""
    assert out.candidates is not None and out.trimap is not None
    assert out.evidence is not None
    judgement = of_refined(out.evidence)  # before any write
    store = run.store
    rec = store.get(stem)
    assert rec is not None
    out.candidates.save(store.candidates_path(stem))
    was = rec.chosen if rec.source == "pick" else ""
    drawn = store.write_trimap(stem, out.trimap)
    # its evidence, before the record: a stop from here on leaves a redrawn
    # label that the next run judges from this row (_record_lost_redraw)
    run.evidence_rows[stem] = _evidence_row(stem, rnd, drawn, out.evidence, *judgement)
    rec.trimap_hash = drawn
    rec.source, rec.round, rec.chosen = "refined", rnd, str(out.chosen)
    rec.reason = (f"refined in round {rnd} ({SOURCE}"
                  + (f"; the pick was {was})" if was else ")"))
    rec.confidence, rec.flagged, rec.doubt = judgement
    store.put(rec)
    if store.save_due():  # the evidence first: a label it names but
        _write_evidence(run.labels_dir, run.evidence_rows)  # labels.csv does not
        store.save()  # yet is judged from it by the next run
    run.changed.add(stem)


def _evidence_row(stem: str, rnd: int, trimap_hash: str, e: Evidence, confidence: float | None,
                  flagged: bool, doubt: str) -> dict[str, str]:
    """The ``EVIDENCE_CSV`` row of a label redrawn in round ``rnd``, and its judgement."""
    return {"stem": stem, "round": str(rnd), "trimap_hash": trimap_hash,
            **{k: f"{v:.4f}" for k, v in e.as_dict().items()},
            "confidence": f"{confidence:.4f}", "flagged": str(int(flagged)), "doubt": doubt}
