"""Labeling a folder: per photo, candidates -> pick -> trimap; and re-picking a labeled folder.

:func:`label_photo` does one photo (photo in, :class:`PhotoResult` out, nothing written): the
unit a parallel or cluster run calls. :func:`label_folder` and :func:`repick_folder` are thin
loops that decide what each photo needs and hand the results to the label store
(:mod:`seglib.labels.store`), which owns the folder's files and the rules that keep a label:

- a photo is its decoded pixels: when only its bytes changed (a tag or rating written into the
  file) its label and candidates stay; when its pixels changed, a ``pick`` label is made again
  ("relabeled: the photo changed") and candidates made from other pixels are never reused;
  a trimap edited by hand is found first (:func:`_edited_before_change`), so it is kept;
- a person's label (``PERSON_SOURCES``: override, refined, imported, edited, prompted) is
  replaced only with ``replace_kept`` (``--replace-kept``), also when its photo changed, and the
  summary says so; re-pick redraws ``pick`` labels and applies ``overrides.csv`` again;
- a trimap ``labels.csv`` has no record of is kept as ``edited`` unless seglib draws it from the
  photo's candidates: one rule for ``label`` and ``pick`` (:func:`_unrecorded_trimap`);
- ``overwrite`` (``label --overwrite``) proposes the candidates again and says what it replaced;
- a ``pick`` label made with another policy is picked again from its cached candidates with
  the run's policy (``label --policy seed`` on a folder of foreground picks), and said.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from seglib import backends
from seglib.backends import Proposer
from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256
from seglib.core.folders import refuse_output
from seglib.core.images import (
    list_images,
    photo_pixels_sha256,
    pixels_sha256,
    read_image,
    resize_max_side,
)
from seglib.core.parallel import map_photos, preloaded
from seglib.labels.confidence import of_person, of_pick
from seglib.labels.store import (
    CANDIDATES_DIR,
    KEPT_SOURCES,
    OVERRIDES_CSV,
    PERSON_SOURCES,
    LabelRecord,
    LabelStore,
    made_by_seglib,
)
from seglib.masks.candidates import Candidates
from seglib.masks.policy import POLICIES, mask_for_choice, parse_choice, pick
from seglib.masks.trimap import load_trimap, mask_to_trimap, resize_mask

MAX_ASPECT = 20  # a longer side above this many times the shorter one is skipped
OVERRIDE_IGNORED = "override ignored"  # starts the reason of a row whose override was invalid


@dataclass
class LabelSummary:
    """What a ``label`` or ``pick`` run did."""

    out_dir: Path
    total: int = 0  # photos (or cached candidate sets) considered
    labeled: int = 0  # labeled (or re-picked) in this run
    existing: int = 0  # already done before this run, left as they were
    skipped: int = 0  # unreadable photos and duplicate names (a reason each)
    failed: int = 0  # photos the backend failed on (a row with the reason)
    flagged: int = 0  # low-confidence picks among the rows of this folder
    seconds: float = 0.0
    repicked: bool = False  # made by repick_folder: picks redone from cached candidates
    overrides: int = 0  # manual choices from overrides.csv that were applied
    changed: int = 0  # labeled again because the photo's pixels changed
    retagged: int = 0  # bytes changed, pixels not (a tag written into the file): label kept
    outdated: int = 0  # a person's label kept although its photo changed
    kept: Counter = field(default_factory=Counter)  # source -> labels kept as they were
    replaced: Counter = field(default_factory=Counter)  # source -> non-pick labels replaced
    edited: int = 0  # trimaps found edited by hand in this run (kept, source "edited")
    migrated: int = 0  # rows of an older labels.csv brought to this schema
    policy: str = ""  # the policy of this run's picks
    other_policy: Counter = field(default_factory=Counter)  # old policy -> picks redone
    notes: list[str] = field(default_factory=list)  # further one-line remarks
    problems: list[str] = field(default_factory=list)  # "NAME: reason" of skipped/failed
    rows: list[LabelRecord] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when at least one photo has a label, else 1."""
        return 0 if self.ok else 1

    def describe(self) -> str:
        if self.repicked:
            head = (f"{self.labeled}/{self.total} photos re-picked from cached candidates in "
                    f"{self.out_dir} ({self.overrides} manual overrides, {self.failed} failed, "
                    f"{self.flagged} flagged for review) in {self.seconds:.1f} s")
        else:
            head = (f"{self.ok}/{self.total} photos labeled in {self.out_dir} ({self.labeled} "
                    f"now, {self.existing} already done, {self.skipped} skipped, {self.failed} "
                    f"failed, {self.flagged} flagged for review) in {self.seconds:.1f} s")
        parts = [head]
        if self.changed:
            parts.append(f"{self.changed} relabeled: the photo changed")
        if self.retagged:
            parts.append(f"{self.retagged} photos changed only in their bytes, not their "
                         "pixels (e.g. a tag or rating written into the file): labels kept")
        if self.outdated:
            parts.append(f"{self.outdated} labels made or chosen by a person were drawn on an "
                         "earlier version of their photo: kept (export leaves them out; "
                         "--replace-kept labels them again)")
        if sum(self.other_policy.values()):
            parts.append(f"{sum(self.other_policy.values())} picks redone with policy "
                         f"{self.policy} (were {', '.join(sorted(self.other_policy))}) from "
                         "the cached candidates")
        if self.edited:
            parts.append(f"{self.edited} trimaps edited by hand since seglib wrote them "
                         "(kept, source 'edited')")
        if sum(self.kept.values()):
            kinds = ", ".join(f"{n} {src}" for src, n in sorted(self.kept.items()))
            parts.append(f"kept {kinds} labels (--replace-kept replaces them)")
        if sum(self.replaced.values()):
            kinds = ", ".join(f"{n} {src}" for src, n in sorted(self.replaced.items()))
            parts.append(f"replaced {kinds} labels")
        if self.migrated:
            parts.append(f"labels.csv of an older seglib brought to the current schema "
                         f"({self.migrated} rows)")
        parts += self.notes
        return "; ".join(parts)


@dataclass
class PhotoResult:
    """What one photo's labeling produced; the loop writes it through the store."""

    record: LabelRecord
    candidates: Candidates | None = None  # new candidates to cache (None: unchanged)
    trimap: np.ndarray | None = None  # the trimap to write (None: none)


@dataclass
class _Job:
    """A photo the loop sends to :func:`label_photo` (in this process or a worker)."""

    path: Path
    kwargs: dict  # label_photo's keywords but the proposer
    keep: LabelRecord | None = None  # the label stays as it is; only its candidates are new
    chose: np.ndarray | None = None  # the mask the override named among the replaced candidates


def _run_job(proposer: Proposer, job: _Job) -> PhotoResult:
    return label_photo(job.path, proposer=proposer, **job.kwargs)


# -- one photo ----------------------------------------------------------------------------------
def _chosen_scores(cands: Candidates, chosen: str) -> tuple[float, float]:
    """Mean predicted IoU and stability of the candidates a choice string names."""
    try:
        idx = [i for i, _ in parse_choice(chosen) if i < len(cands)]
    except SeglibError:
        idx = []
    if not idx:
        return 0.0, 0.0
    return float(np.mean(cands.predicted_iou[idx])), float(np.mean(cands.stability[idx]))


def pick_photo(record: LabelRecord, cands: Candidates, policy: str, override: str | None,
               size: tuple[int, int]) -> PhotoResult:
    """Pick (or apply ``override``) from ``cands`` and draw the trimap at ``size`` (H, W)."""
    reason, source = "", "override" if override else "pick"
    try:
        p = pick(cands, policy, override=override)
    except SeglibError as exc:
        p = pick(cands, policy)
        p.flagged, source = True, "pick"
        reason = f"{OVERRIDE_IGNORED} ({exc})"
    if not p.mask.any():
        p.flagged = True
        reason = reason or "no object found (empty mask)"
    piou, stab = _chosen_scores(cands, p.chosen)
    rec = LabelRecord(**{**record.__dict__})
    rec.policy, rec.chosen, rec.source, rec.round = policy, p.chosen, source, 0
    rec.predicted_iou, rec.stability, rec.score = piou, stab, float(p.score)
    rec.pick_confidence, rec.pick_flagged = float(p.confidence), bool(p.flagged)
    person = source == "override" and p.mask.any()  # a person chose it
    rec.confidence, rec.flagged, rec.doubt = of_person() if person else of_pick(p, reason)
    rec.status, rec.reason = "ok", reason
    return PhotoResult(rec, trimap=mask_to_trimap(resize_mask(p.mask, size)))


def label_photo(path: Path, *, proposer: Proposer, backend: str, mode: str,
                policy: str = "foreground", override: str | None = None,
                max_side: int = 1024, photo_hash: str | None = None,
                cached: Candidates | None = None) -> PhotoResult:
    """Label one photo: candidates (``cached`` ones when given, else ``proposer`` on the photo
    shrunk to ``max_side``), the pick, the trimap at the photo's size. Writes nothing.

    Problems with this photo end in a record with status ``skipped`` (unreadable) or
    ``failed`` (the backend failed) and the reason, never in an exception.
    """
    path = Path(path)
    rec = LabelRecord(stem=path.stem, file=path.name, backend=backend, mode=mode)
    t0 = time.perf_counter()
    try:
        rec.photo_hash = photo_hash or file_sha256(path)
        photo = read_image(path)
        rec.pixels_hash = pixels_sha256(photo)
    except SeglibError as exc:
        rec.status, rec.reason = "skipped", str(exc)
        return PhotoResult(rec)
    h, w = photo.shape[:2]
    if max(h, w) > MAX_ASPECT * min(h, w):  # a strip a few pixels wide at the backend's size
        rec.status = "skipped"
        rec.reason = (f"the photo is {w}×{h}, more than {MAX_ASPECT} times as long as it is "
                      "wide; crop it to label it")
        return PhotoResult(rec)
    new = None
    try:
        if cached is None:
            side = max_side
            work = resize_max_side(photo, side) if max(photo.shape[:2]) > side else photo
            new = proposer(work)
            new.photo_hash = rec.photo_hash
        cands = cached if cached is not None else new
        assert cands is not None
        if cached is not None:
            rec.backend, rec.mode = cached.backend or backend, mode
        result = pick_photo(rec, cands, policy, override, photo.shape[:2])
    except (SeglibError, ValueError, RuntimeError, MemoryError, cv2.error) as exc:
        rec.status = "failed"
        rec.reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return PhotoResult(rec)
    if cached is None:
        result.record.seconds = time.perf_counter() - t0
    result.candidates = new
    return result


# -- the loops ----------------------------------------------------------------------------------
def _commit(store: LabelStore, result: PhotoResult) -> LabelRecord:
    """Write a photo's result: candidates first, then the trimap, then the record."""
    rec = result.record
    try:
        if result.candidates is not None:
            result.candidates.save(store.candidates_path(rec.stem))
        if result.trimap is not None:
            rec.trimap_hash = store.write_trimap(rec.stem, result.trimap)
    except SeglibError as exc:  # e.g. a name the disk cannot hold: this photo only
        rec.status, rec.reason, rec.trimap_hash = "failed", str(exc), ""
    store.put(rec)
    store.save(throttle=True)
    return rec


def _cached(store: LabelStore, stem: str, photo_hash: str) -> Candidates | None:
    """The photo's cached candidates when they were made from these bytes."""
    path = store.candidates_path(stem)
    if not path.is_file():
        return None
    try:
        cands = Candidates.load(path)
    except SeglibError:
        return None
    old = store.get(stem)
    made_from = cands.photo_hash or (old.photo_hash if old is not None else "")
    return cands if made_from == photo_hash else None


def _check_trimap(store: LabelStore, rec: LabelRecord, cands: Candidates | None,
                  policy: str, override: str | None = None) -> str:
    """``"same"``, ``"missing"``, ``"unreadable"`` or ``"edited"`` for a labeled photo's trimap
    (a changed file that is what seglib writes from its candidates counts as the same)."""
    state = store.trimap_state(rec.stem)
    if state != "changed":
        return state
    if cands is not None and _drawn_by_seglib(load_trimap(store.trimap_path(rec.stem)), cands,
                                              rec.chosen, policy, override):
        return "same"
    return "edited"


def _drawn_by_seglib(trimap: np.ndarray, cands: Candidates, chosen: str, policy: str,
                     override: str | None) -> bool:
    """Whether ``trimap`` is what seglib draws from ``cands``: the recorded choice, a pick of
    any policy, the override or a refinement (a grabcut:cnn candidate)."""
    choices = [chosen, *(pick(cands, p).chosen for p in dict.fromkeys((policy, *POLICIES))),
               override or "",
               *(str(i) for i, s in enumerate(cands.sources) if s == "grabcut:cnn")]
    return made_by_seglib(trimap, cands, choices)


def _not_a_trimap(store: LabelStore, stem: str, summary: LabelSummary) -> None:
    """A file in a trimap's place that is not one (e.g. a 0/255 mask): left as it is."""
    problem = (f"{store.trimap_path(stem).name}: not a trimap (1 object, 2 background, 3 "
               "border); left as it is: fix it, or delete it to label the photo again")
    summary.problems.append(problem)
    tqdm.write(f"kept {problem}", file=sys.stderr)


UNRECORDED = "a trimap labels.csv had no record of; kept"


def _unrecorded_trimap(store: LabelStore, stem: str, cands: Candidates | None, chosen: str,
                       policy: str, override: str | None) -> str:
    """The one rule (``label`` and ``pick``) for a trimap ``labels.csv`` has no record of
    (deleted, or lost): ``"none"`` (no file), ``"not a trimap"``, ``"seglib"`` (seglib draws
    it from the photo's candidates: made again) or ``"edited"`` (a person's: kept)."""
    path = store.trimap_path(stem)
    if not path.is_file():
        return "none"
    try:
        trimap = load_trimap(path)
    except SeglibError:
        return "not a trimap"
    if cands is None or _drawn_by_seglib(trimap, cands, chosen, policy, override):
        return "seglib"
    return "edited"


def _keep_unrecorded(store: LabelStore, result: PhotoResult, job: _Job, policy: str,
                     summary: LabelSummary) -> PhotoResult | None:
    """A trimap that ``labels.csv`` has no record of is kept as edited unless seglib draws
    it from the photo's candidates (:func:`_unrecorded_trimap`)."""
    stem = result.record.stem
    if store.get(stem) is not None or result.trimap is None:
        return result
    cands = job.kwargs.get("cached")
    cands = cands if cands is not None else result.candidates
    kind = _unrecorded_trimap(store, stem, cands, result.record.chosen, policy,
                              job.kwargs.get("override"))
    if kind == "not a trimap":
        _not_a_trimap(store, stem, summary)
        summary.skipped += 1
        return None
    if kind != "edited":
        return result
    rec = result.record
    _as_edited(store, rec, UNRECORDED)
    summary.edited += 1
    summary.kept["edited"] += 1
    return PhotoResult(rec, candidates=result.candidates)


def _as_edited(store: LabelStore, rec: LabelRecord, reason: str) -> None:
    """Make ``rec`` the record of the trimap on disk as a person's edit."""
    rec.trimap_hash = file_sha256(store.trimap_path(rec.stem))
    rec.source, rec.round, rec.status = "edited", 0, "ok"
    rec.confidence, rec.flagged, rec.doubt = of_person()
    rec.reason = reason


def _mark_edited(store: LabelStore, rec: LabelRecord) -> None:
    _as_edited(store, rec, "trimap edited by hand; kept")
    store.put(rec)


def label_folder(
    images_dir: str | Path,
    out_dir: str | Path,
    proposer: Proposer | None = None,
    *,
    backend: str,
    mode: str,
    policy: str = "foreground",
    limit: int | None = None,
    overwrite: bool = False,
    replace_kept: bool = False,
    max_side: int | None = None,
    setup: Callable[[], Proposer] | None = None,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
) -> LabelSummary:
    """Label every photo of ``images_dir`` into ``out_dir`` (resumable; see the module doc).

    ``proposer`` maps an RGB uint8 photo to :class:`Candidates` at that photo's size. Photos
    larger than ``max_side`` (default 1024) are shrunk for it; trimaps keep the photo's size.
    ``overwrite`` proposes candidates again for every photo; labels whose source is not
    ``pick`` are still kept unless ``replace_kept``.

    ``workers``/``engine``/``address`` label photos in parallel (:mod:`seglib.core.parallel`):
    the workers run :func:`label_photo`, this process writes every file, so the folder's
    files are those of a one-process run. ``setup`` makes the proposer once per worker (e.g.
    loads SAM) instead of sending ``proposer`` to each. A photo whose worker died gets a
    ``skipped`` row with the reason and is labeled by the next run.
    """
    if (proposer is None) == (setup is None):
        raise SeglibError("label_folder needs a proposer or a setup that makes one")
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    photos = _plan_photos(images_dir, out_dir, limit=limit)
    side = max_side or backends.spec(backend).max_side
    t_start = time.perf_counter()
    summary = LabelSummary(out_dir=out_dir, total=len(photos), policy=policy)
    store = LabelStore(out_dir)
    with store.lock():
        store.reload()
        summary.migrated = store.migrated
        store.remember_images(images_dir)
        run = _LabelRun(store=store, summary=summary, backend=backend, mode=mode, policy=policy,
                        side=side, overwrite=overwrite, replace_kept=replace_kept,
                        overrides=store.overrides(),
                        bar=tqdm(total=len(photos), desc=f"label ({backend})", unit="photo",
                                 file=sys.stderr))
        make = setup if setup is not None else preloaded(proposer)
        with run.bar:
            _run_jobs(run, photos, setup=make, workers=workers, engine=engine, address=address)
        _note_stale_overrides(summary, run.stale_overrides)
        _note_without_photo(summary, store, images_dir)
        store.save()
    records = store.records()
    summary.rows = [records[s] for s in sorted(run.seen) if s in records]  # this run's photos
    summary.flagged = sum(r.flagged for r in summary.rows if r.ok)
    summary.seconds = time.perf_counter() - t_start
    return summary


def _plan_photos(images_dir: Path, out_dir: Path, *, limit: int | None) -> list[Path]:
    """The photos a ``label`` run considers (the first ``limit``); refuses an ``out_dir``
    that is not a label folder, a new or an empty one (the output-safety rule,
    :func:`seglib.core.folders.refuse_output`: not the photo folder, a predictions folder, a
    training run, an export, a folder whose ``candidates/<stem>.npz`` files seglib did not
    write ...) and a folder without photos."""
    photos = list_images(images_dir) if Path(images_dir).is_dir() else []
    refuse_output(out_dir, inputs=[images_dir], allow="labels",
                  writes=[f"candidates/{p.stem}.npz" for p in photos])
    photos = list_images(images_dir)
    if not photos:
        raise SeglibError(f"{images_dir}: no .jpg/.jpeg/.png photos found; check the folder")
    if limit is not None:
        photos = photos[: max(0, int(limit))]
    return photos


@dataclass
class _LabelRun:
    """What :func:`label_folder`'s steps share: the store, the summary, the settings, the
    progress bar and what the run has seen so far."""

    store: LabelStore
    summary: LabelSummary
    backend: str
    mode: str
    policy: str
    side: int
    overwrite: bool
    replace_kept: bool
    overrides: dict[str, str]
    bar: tqdm
    seen: set[str] = field(default_factory=set)  # stems of this run's photos
    stale_overrides: list[str] = field(default_factory=list)  # dropped overrides (stems)


def _run_jobs(run: _LabelRun, photos: list[Path], *, setup: Callable[[], Proposer],
              workers: int | None, engine: str, address: str | None) -> None:
    """Label the photos that need :func:`label_photo` (in this process or workers) and write
    every result, in the order they come back."""
    for done in map_photos(_run_job, _jobs(run, photos), setup=setup, workers=workers,
                           engine=engine, address=address,
                           gpu=backends.spec(run.backend).wants_gpu):
        job: _Job = done.item
        if not done.ok:  # its worker died: the photo is redone by the next run
            result = PhotoResult(job.keep) if job.keep is not None else PhotoResult(
                LabelRecord(stem=job.path.stem, file=job.path.name, backend=run.backend,
                            mode=run.mode, status="skipped", reason=done.error or ""))
        elif job.keep is not None:
            result = PhotoResult(job.keep, candidates=done.value.candidates)
        else:
            result = _keep_unrecorded(run.store, _same_override(
                run.store, done.value, job, run.policy, run.stale_overrides), job, run.policy,
                run.summary)
        if result is None:
            run.bar.update()
        else:
            _finish(run, result)


def _jobs(run: _LabelRun, photos: list[Path]) -> Iterator[_Job]:
    """The photos that need a worker; the others are done here as they come."""
    summary = run.summary
    first: dict[str, str] = {}  # stem -> the file name of the photo labeled under it
    for path in _recorded_first(run.store, photos):
        stem = path.stem
        if stem in run.seen:
            run.bar.update()
            summary.skipped += 1
            why = (f"{first[stem]} has the same stem {stem!r}, which is ambiguous: rename one "
                   f"of them (the label {stem}.png stays {first[stem]}'s)")
            summary.problems.append(f"{path.name}: {why}")
            tqdm.write(f"skipped {path.name}: {why}", file=sys.stderr)
            continue
        run.seen.add(stem)
        first[stem] = path.name
        planned = _label_one(run.store, path, summary, backend=run.backend, mode=run.mode,
                             policy=run.policy, override=run.overrides.get(stem), side=run.side,
                             overwrite=run.overwrite, replace_kept=run.replace_kept,
                             stale_overrides=run.stale_overrides)
        if planned is None:
            run.bar.update()
        elif isinstance(planned, PhotoResult):
            _finish(run, planned)
        else:
            yield planned


def _finish(run: _LabelRun, result: PhotoResult) -> None:
    """Write one photo's result (:func:`_commit`) and count it."""
    rec = _commit(run.store, result)
    run.bar.update()
    summary = run.summary
    if rec.status == "skipped":
        summary.skipped += 1
    elif rec.status == "failed":
        summary.failed += 1
    else:
        summary.labeled += 1
    if not rec.ok:
        summary.problems.append(f"{rec.file}: {rec.reason}")
        tqdm.write(f"{rec.status} {rec.file}: {rec.reason}", file=sys.stderr)


def _note_without_photo(summary: LabelSummary, store: LabelStore, images_dir: Path) -> None:
    """Say (one line) which labels have no photo of their stem in ``images_dir`` (renamed or
    removed): they are kept, as everything a run does not know is."""
    stems = {p.stem for p in list_images(images_dir)}
    gone = [s for s, r in store.records().items() if r.ok and s not in stems]
    if gone:
        summary.notes.append(f"{len(gone)} labels have no photo in the folder (e.g. "
                             f"{', '.join(gone[:3])}): kept; delete them or put the photo back")


def _recorded_first(store: LabelStore, photos: list[Path]) -> list[Path]:
    """``photos`` by stem, and of two photos with one stem first the one its label was made
    from (``dup.png`` labeled, then ``dup.jpg`` added: the label stays ``dup.png``'s)."""
    def key(path: Path) -> tuple[str, bool]:
        rec = store.get(path.stem)
        return path.stem, not (rec is not None and rec.file == path.name)

    return sorted(photos, key=key)


def _note_stale_overrides(summary: LabelSummary, stale_overrides: list[str]) -> None:
    if stale_overrides:
        summary.notes.append(f"{len(stale_overrides)} overrides dropped: they chose among "
                             "candidates that were replaced (the photo changed, or "
                             f"--overwrite proposed others): {', '.join(stale_overrides[:3])}")


def _label_one(store: LabelStore, path: Path, summary: LabelSummary, *, backend: str,
               mode: str, policy: str, override: str | None, side: int, overwrite: bool,
               replace_kept: bool, stale_overrides: list[str]) -> PhotoResult | _Job | None:
    """Decide what one photo needs: ``None`` when its label stays as it is, a result to
    write, or a job for :func:`label_photo`."""
    stem = path.stem
    try:
        digest = file_sha256(path)
    except SeglibError as exc:
        return PhotoResult(LabelRecord(stem=stem, file=path.name, backend=backend, mode=mode,
                                       status="skipped", reason=str(exc)))
    old = store.get(stem)
    if old is not None and old.ok and _photo_changed(store, old, path, digest, summary):
        _edited_before_change(store, old, summary, policy, override)
        return _relabel_changed(store, old, summary, _Job(path, dict(
            backend=backend, mode=mode, policy=policy, max_side=side, photo_hash=digest)),
            override=override, replace_kept=replace_kept, stale_overrides=stale_overrides)
    cached = _cached(store, stem, digest)
    if old is not None and old.ok:
        state = _check_trimap(store, old, cached, policy, override)
        if state == "unreadable" and not replace_kept:
            _not_a_trimap(store, stem, summary)
            summary.skipped += 1
            return None
        if state == "edited":
            _mark_edited(store, old)
            summary.edited += 1
            summary.kept["edited"] += 1
            return None
        if state == "same":
            if not overwrite and cached is not None:
                return _same_label(store, old, cached, summary, policy, override)
            if old.source in PERSON_SOURCES and not replace_kept:
                summary.kept[old.source] += 1
                if cached is not None:
                    return None
                # the label stays; only its cut-short or missing candidates are proposed again
                return _Job(path, dict(backend=backend, mode=mode, policy=policy,
                                       max_side=side, photo_hash=digest), keep=old)
            if overwrite and old.source in KEPT_SOURCES:
                summary.replaced[old.source] += 1
    chose = None
    if overwrite:
        if override and cached is not None:
            try:
                chose = mask_for_choice(cached, override)
            except SeglibError:
                pass
        cached = None
    return _Job(path, dict(backend=backend, mode=mode, policy=policy, override=override,
                           max_side=side, photo_hash=digest, cached=cached), chose=chose)


def _photo_changed(store: LabelStore, old: LabelRecord, path: Path, digest: str,
                   summary: LabelSummary) -> bool:
    """Whether the photo's pixels differ from the ones ``old`` was made from. Bytes that
    changed over the same pixels (a tag written into the file) take the new ``photo_hash``
    (record and candidates); a record without ``pixels_hash`` gets it while its bytes match."""
    if not old.photo_hash or old.photo_hash == digest:
        old.photo_hash = digest  # a label of an older seglib: made from these bytes, we trust
        if not old.pixels_hash:
            try:
                old.pixels_hash = photo_pixels_sha256(path)
            except SeglibError:
                pass
        store.put(old)
        return False
    try:
        if not old.made_from(path, digest):
            return True
    except SeglibError:
        return True
    was, old.photo_hash = old.photo_hash, digest
    store.put(old)
    summary.retagged += 1
    try:
        cands = Candidates.load(store.candidates_path(old.stem))
    except SeglibError:
        return False
    if cands.photo_hash in ("", was):
        cands.photo_hash = digest
        cands.save(store.candidates_path(old.stem))
    return False


def _edited_before_change(store: LabelStore, old: LabelRecord, summary: LabelSummary,
                          policy: str, override: str | None) -> None:
    """A trimap edited by hand before its photo changed is the person's (source ``edited``),
    found before the photo-changed relabel, so that it is kept as a person's label is."""
    if old.source in PERSON_SOURCES:
        return
    made_from = _cached(store, old.stem, old.photo_hash)  # the candidates of the old photo
    if _check_trimap(store, old, made_from, policy, override) == "edited":
        _mark_edited(store, old)
        summary.edited += 1


def _relabel_changed(store: LabelStore, old: LabelRecord, summary: LabelSummary, job: _Job, *,
                     override: str | None, replace_kept: bool,
                     stale_overrides: list[str]) -> _Job | None:
    """Another photo under this name: a pick is made again, with new candidates; a person's
    label stays (and its override) unless ``replace_kept``."""
    if old.source in PERSON_SOURCES:
        if not replace_kept:
            summary.kept[old.source] += 1
            summary.outdated += 1
            return None
        summary.replaced[old.source] += 1
    summary.changed += 1
    if override is not None:  # it chose among the old photo's candidates: dropped now, so
        current = store.overrides()  # a rerun after a kill cannot apply it to the new one
        current.pop(old.stem, None)
        store.set_overrides(current)
        stale_overrides.append(old.stem)
    return job


def _same_label(store: LabelStore, old: LabelRecord, cached: Candidates,
                summary: LabelSummary, policy: str, override: str | None,
                ) -> PhotoResult | None:
    """A label that stays as it is (``None``); a pick of another policy than ``policy`` is
    picked again from the cached candidates (``label --policy seed`` on a folder of
    foreground picks; no model runs, and a person's label is never re-picked)."""
    if old.source != "pick" or not old.policy or old.policy == policy:
        summary.existing += 1
        return None
    summary.other_policy[old.policy] += 1
    size = _trimap_size(store.trimap_path(old.stem)) or cached.shape
    return pick_photo(old, cached, policy, override, size)


def _same_override(store: LabelStore, result: PhotoResult, job: _Job, policy: str,
                   stale_overrides: list[str]) -> PhotoResult:
    """Candidates proposed again (``--overwrite``): an override that names another mask in
    the new set than in the old is dropped, and the photo gets the policy's pick."""
    override, cands = job.kwargs.get("override"), result.candidates
    if job.chose is None or cands is None or result.record.source != "override":
        return result
    try:
        if np.array_equal(mask_for_choice(cands, override), job.chose):
            return result
    except SeglibError:
        pass
    current = store.overrides()
    current.pop(result.record.stem, None)
    store.set_overrides(current)
    stale_overrides.append(result.record.stem)
    assert result.trimap is not None
    picked = pick_photo(result.record, cands, policy, None, result.trimap.shape[:2])
    picked.candidates = cands
    return picked


def repick_folder(out_dir: str | Path, policy: str = "foreground", *,
                  replace_kept: bool = False) -> LabelSummary:
    """Re-pick the labels of ``out_dir`` from the cached candidates with ``policy`` and
    ``overrides.csv``. No model runs.

    Labels whose source is ``pick`` or ``override`` are redrawn (an override applies to a
    refined label too: a person chose it). Refined, imported and hand-edited labels are kept
    unless ``replace_kept`` (``import`` clears the photo's override, so an old choice never
    comes back over an imported mask).
    """
    out_dir = Path(out_dir)
    store = LabelStore(out_dir)
    files = _cached_files(out_dir)
    t_start = time.perf_counter()
    summary = LabelSummary(out_dir=out_dir, total=len(files), repicked=True,
                           migrated=store.migrated)
    with store.lock():
        store.reload()
        overrides = store.overrides()
        unknown = store.unknown_overrides()
        if unknown:
            summary.notes.append(f"{OVERRIDES_CSV} names {len(unknown)} photos this folder "
                                 f"has no label for: {', '.join(unknown[:3])}")
        for npz in tqdm(files, desc=f"pick ({policy})", unit="photo", file=sys.stderr):
            _repick_one(store, npz, summary, policy=policy, override=overrides.get(npz.stem),
                        replace_kept=replace_kept)
        store.save()
    summary.rows = list(store.records().values())
    summary.flagged = sum(r.flagged for r in summary.rows if r.ok)
    summary.seconds = time.perf_counter() - t_start
    return summary


def _cached_files(out_dir: Path) -> list[Path]:
    """The cached candidate files of a label folder (sorted); refuses a folder without."""
    cand_dir = out_dir / CANDIDATES_DIR
    files = sorted(cand_dir.glob("*.npz")) if cand_dir.is_dir() else []
    if not files:
        raise SeglibError(f"{out_dir}: no cached candidates in {cand_dir}; "
                          f"run `python -m seglib label IMAGES --out {out_dir}` first")
    return files


def _repick_one(store: LabelStore, npz: Path, summary: LabelSummary, *, policy: str,
                override: str | None, replace_kept: bool) -> None:
    """Re-pick one photo from its cached candidates ``npz``, unless its label is kept."""
    stem = npz.stem
    old = store.get(stem) or LabelRecord(stem=stem)
    cands = _load_for_repick(store, npz, old, summary)
    if cands is None:
        return
    if store.get(stem) is None and _unrecorded_trimap(store, stem, cands, "", policy,
                                                      override) == "edited":
        _as_edited(store, old, UNRECORDED)  # the rule label follows; kept as the person's
        old.photo_hash, old.backend = cands.photo_hash, cands.backend
        store.put(old)
        summary.edited += 1
    if _repick_keeps(store, old, cands, summary, policy=policy, override=override,
                     replace_kept=replace_kept):
        return
    if old.ok and old.source in KEPT_SOURCES:
        summary.replaced[old.source] += 1
    size = _trimap_size(store.trimap_path(stem)) or cands.shape
    old.backend = old.backend or cands.backend
    result = pick_photo(old, cands, policy, override, size)
    rec = _commit(store, result)
    if not rec.ok:  # e.g. a trimap that cannot be replaced: this photo only
        summary.failed += 1
        summary.problems.append(f"{stem}: {rec.reason}")
        return
    summary.labeled += 1
    if override and rec.source == "override":
        summary.overrides += 1
    elif override:
        summary.problems.append(f"{stem}: {rec.reason}")


def _load_for_repick(store: LabelStore, npz: Path, old: LabelRecord,
                     summary: LabelSummary) -> Candidates | None:
    """The photo's cached candidates; ``None`` (counted as failed) when they do not load or
    are of another photo than its label."""
    stem = npz.stem
    try:
        cands = Candidates.load(npz)
    except SeglibError as exc:
        if store.get(stem) is None or not old.ok:  # a label stays as it is
            old.status, old.reason = "failed", str(exc)
            store.put(old)
        summary.failed += 1
        summary.problems.append(f"{stem}: not re-picked ({exc})")
        return None
    if old.photo_hash and cands.photo_hash and cands.photo_hash != old.photo_hash:
        summary.failed += 1
        summary.problems.append(f"{stem}: not re-picked (its cached candidates are of "
                                "another photo; label the folder again)")
        return None
    return cands


def _repick_keeps(store: LabelStore, old: LabelRecord, cands: Candidates,
                  summary: LabelSummary, *, policy: str, override: str | None,
                  replace_kept: bool) -> bool:
    """Whether a re-pick leaves the photo's label as it is (a file that is not a trimap, a
    hand edit, a kept source), counting why."""
    stem = old.stem
    state = _check_trimap(store, old, cands, policy, override) if old.ok else "missing"
    if state == "unreadable" and not replace_kept:
        _not_a_trimap(store, stem, summary)
        summary.failed += 1
        return True
    if state == "edited" or (old.ok and old.source == "edited"):
        if state == "edited":
            _mark_edited(store, old)
            summary.edited += 1
        if not replace_kept:
            summary.kept["edited"] += 1
            return True
    elif old.ok and old.source in KEPT_SOURCES and not replace_kept:
        if not (override and old.source == "refined"):
            summary.kept[old.source] += 1
            return True
    return False


def _trimap_size(path: Path) -> tuple[int, int] | None:
    try:
        return load_trimap(path).shape[:2]
    except SeglibError:
        return None
