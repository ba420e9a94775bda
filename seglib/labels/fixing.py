"""Fixing one wrong label with prompts: points on the object, points off it, a box around it.

A :class:`~seglib.backends.prompts.Prompter` (GrabCut offline, SAM with a checkpoint) redraws
the photo's mask from the prompts; :func:`fix_label` writes it through the label store as the
source ``prompted`` (a person's label: confidence 1, kept by re-pick and refinement, replaced
by ``import`` only with ``--replace-kept``) and records the prompts in ``prompts.csv``, so
:func:`redraw_prompted` can draw the label again with another checkpoint. :func:`fix_mask`
and :func:`preview_fix` give the mask without writing anything (the notebook's reviewer
redraws on every click and writes only on "Keep").

``prompts.csv`` (one row per stem, the latest; written atomically under the folder's lock)::

    stem, backend, model, prompts (Prompts.to_json), pixels_hash (of the photo), schema
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seglib.backends import open_prompter
from seglib.backends.prompts import Prompter, Prompts
from seglib.core.errors import SeglibError
from seglib.core.images import read_image, resize_image
from seglib.core.tables import read_csv, write_csv
from seglib.labels.confidence import of_person
from seglib.labels.store import LABELS_CSV, PERSON_SOURCES, LabelRecord, LabelStore
from seglib.masks.trimap import load_trimap

PROMPTS_CSV = "prompts.csv"
PROMPTS_SCHEMA = 1
PROMPT_COLUMNS = ("stem", "backend", "model", "prompts", "pixels_hash", "schema")
Points = Iterable[Sequence[float]]


@dataclass
class FixResult:
    """One redrawn label: the mask (bool, the label's size), its record (``None`` when
    nothing was written), the seconds the prompter took and the prompts."""

    stem: str
    mask: np.ndarray
    record: LabelRecord | None
    seconds: float
    prompts: Prompts

    @property
    def share(self) -> float:
        """The object's share of the photo."""
        return float(np.mean(self.mask)) if self.mask.size else 0.0

    def describe(self) -> str:
        """One line: stem, source, object share, seconds."""
        source = self.record.source if self.record is not None else "preview"
        return (f"{self.stem}: source {source}, object {100 * self.share:.1f} % of the photo, "
                f"{self.seconds:.2f} s")


def as_prompts(points: Points = (), negative: Points = (),
               box: Sequence[float] | None = None) -> Prompts:
    """:class:`Prompts` from plain sequences (``points`` positive)."""
    return Prompts(positive=tuple(tuple(p) for p in points),  # type: ignore[misc]
                   negative=tuple(tuple(p) for p in negative),  # type: ignore[misc]
                   box=tuple(box) if box is not None else None)  # type: ignore[arg-type]


def fix_mask(photo: np.ndarray, prompts: Prompts, prompter: Prompter) -> np.ndarray:
    """The mask ``prompter`` draws on ``photo`` (RGB uint8) for ``prompts``; writes nothing.
    The photo's per-photo work is cached by the prompter: call it on every click."""
    prompter.set_photo(photo)
    return np.asarray(prompter.mask(prompts), dtype=bool)


def open_store(labels_dir: str | Path) -> LabelStore:
    """The label store of ``labels_dir``; one line when it is not a labeled folder."""
    folder = Path(labels_dir)
    if not (folder / LABELS_CSV).is_file():
        raise SeglibError(f"{folder}: no {LABELS_CSV} (not a labeled folder); run "
                          f"`python -m seglib label IMAGES --out {folder}` first")
    return LabelStore(folder)


def label_photo_of(store: LabelStore, stem: str, images_dir: str | Path | None = None
                   ) -> tuple[LabelRecord, np.ndarray]:
    """The record of ``stem`` and its photo (RGB) at the label's size: the photo the record
    names in ``images_dir`` (default: the folder's ``seglib.json``). One line for an unknown
    stem, no images folder, a missing photo or a photo that changed since it was labeled."""
    rec = store.get(stem) or _same_in_nfc(store, stem)
    if rec is None:
        stems = ", ".join(list(store.records())[:5])
        raise SeglibError(f"{store.folder}: no label for {stem!r} (labels: {stems or 'none'}"
                          f"{', …' if len(store.records()) > 5 else ''})")
    folder = Path(images_dir) if images_dir is not None else store.images_dir
    if folder is None:
        raise SeglibError(f"{store.folder}: no images folder recorded in seglib.json; pass "
                          "the photos' folder (--images DIR / images_dir=)")
    path = folder / (rec.file or f"{stem}.jpg")
    if not path.is_file():
        raise SeglibError(f"{path}: the photo of {stem!r} is not there; pass the photos' "
                          "folder (--images DIR / images_dir=)")
    if not rec.made_from(path):
        raise SeglibError(changed_photo_line(store, rec, path))
    photo = read_image(path)
    try:
        size = load_trimap(store.trimap_path(stem)).shape[:2]
    except SeglibError:
        size = photo.shape[:2]
    return rec, resize_image(photo, size)


def _same_in_nfc(store: LabelStore, stem: str) -> LabelRecord | None:
    """The one record whose stem is ``stem`` in Unicode NFC (a name typed or pasted
    decomposed, as macOS writes file names), else ``None``."""
    nfc = unicodedata.normalize("NFC", stem)
    found = [r for s, r in store.records().items() if unicodedata.normalize("NFC", s) == nfc]
    return found[0] if len(found) == 1 else None


def changed_photo_line(store: LabelStore, rec: LabelRecord, path: Path) -> str:
    """What to do about a photo replaced since its label was drawn: ``label`` draws a pick
    again, but keeps a person's label until ``--replace-kept``."""
    recorded = store.images_dir
    if recorded is not None and recorded.resolve() != path.parent.resolve():
        return (f"{path}: not the photo {rec.stem!r} was labeled from ({store.folder} was "
                f"labeled from {recorded}); pass that folder (--images DIR / images_dir=)")
    again = f"python -m seglib label {path.parent} --out {store.folder}"
    if rec.source in PERSON_SOURCES:
        return (f"{path}: the photo changed since {rec.stem!r} was labeled, and `label` keeps "
                f"its {rec.source} label (a person's); `{again} --replace-kept` labels it "
                "again (with any other photo that changed under a kept label), then fix it")
    return (f"{path}: the photo changed since {rec.stem!r} was labeled; `{again}` labels it "
            "again, then fix it")


def preview_fix(labels_dir: str | Path, stem: str, *, points: Points = (),
                negative: Points = (), box: Sequence[float] | None = None,
                images_dir: str | Path | None = None, prompter: Prompter | None = None,
                backend: str = "opencv", checkpoint: str | Path | None = None) -> FixResult:
    """The mask :func:`fix_label` would write for these prompts; writes nothing."""
    prompts = as_prompts(points, negative, box)
    if prompts.is_empty():
        raise SeglibError("no prompt: give a box, or a positive or negative point")
    _, photo = label_photo_of(open_store(labels_dir), stem, images_dir)
    prompter = prompter or open_prompter(backend, checkpoint)
    t0 = time.perf_counter()
    mask = fix_mask(photo, prompts, prompter)
    return FixResult(stem, mask, None, time.perf_counter() - t0, prompts)


def fix_label(labels_dir: str | Path, stem: str, *, points: Points = (),
              negative: Points = (), box: Sequence[float] | None = None,
              images_dir: str | Path | None = None, prompter: Prompter | None = None,
              backend: str = "opencv", checkpoint: str | Path | None = None) -> FixResult:
    """Redraw the label of ``stem`` from prompts and write it (source ``prompted``).

    ``points`` (positive) and ``negative`` are (x, y), ``box`` (x0, y0, x1, y1), all in the
    photo's pixels (the trimap's size). ``prompter`` (e.g. one the notebook keeps open), else
    ``open_prompter(backend, checkpoint)``. The trimap, ``labels.csv`` and ``prompts.csv``
    are written under the folder's lock."""
    prompts = as_prompts(points, negative, box)
    if prompts.is_empty():
        raise SeglibError("no prompt: give a box, or a positive or negative point")
    store = open_store(labels_dir)
    rec, photo = label_photo_of(store, stem, images_dir)
    stem = rec.stem  # the stem as labels.csv spells it
    read_prompts(store.folder)  # its problem first, before the prompter loads
    prompter = prompter or open_prompter(backend, checkpoint)
    t0 = time.perf_counter()
    mask = fix_mask(photo, prompts, prompter)
    seconds = time.perf_counter() - t0
    check_drawn(stem, mask)
    with store.lock():
        store.reload()  # another writer may have saved since it was opened
        rec = store.get(stem)
        if rec is None:
            raise SeglibError(f"{store.folder}: the label of {stem!r} was removed meanwhile")
        rec = _write(store, stem, mask, prompts, prompter, seconds)
    return FixResult(stem, mask, rec, seconds, prompts)


def check_drawn(stem: str, mask: np.ndarray) -> None:
    """One line, before anything is written, when the prompts drew no object or the whole
    photo: neither is a label (a person's confidence 1 would hide it among the good ones)."""
    if not mask.any():
        raise SeglibError(f"{stem}: the prompts draw no object; nothing written (draw the box "
                          "around the object, or click on it)")
    if mask.all():
        raise SeglibError(f"{stem}: the prompts draw the whole photo as the object; nothing "
                          "written (draw the box inside the photo's edges, or add a negative "
                          "point off the object)")


def _write(store: LabelStore, stem: str, mask: np.ndarray, prompts: Prompts,
           prompter: Prompter, seconds: float) -> LabelRecord:
    """Write the prompted label and its prompts' row (the caller holds the lock)."""
    backend = str(getattr(prompter, "backend", "") or "")
    rows = read_prompts(store.folder)  # a prompts.csv that does not read: nothing written
    rec = store.get(stem)
    assert rec is not None
    said = [f"{len(prompts.positive)} positive", f"{len(prompts.negative)} negative"]
    if prompts.box is not None:
        said.append("a box")
    rec = store.write_label(
        stem, mask, source="prompted", **of_person()._asdict(), backend=backend,
        mode="prompt", policy="", chosen="", predicted_iou=None, stability=None, score=None,
        seconds=seconds, reason=f"prompted: {', '.join(said)} ({prompter.description})")
    rows[stem] = {"stem": stem, "backend": backend, "model": prompter.description,
                  "prompts": prompts.to_json(), "pixels_hash": rec.pixels_hash,
                  "schema": str(PROMPTS_SCHEMA)}
    write_csv(store.folder / PROMPTS_CSV, [rows[s] for s in sorted(rows)], PROMPT_COLUMNS)
    store.save()
    return rec


def read_prompts(labels_dir: str | Path) -> dict[str, dict[str, str]]:
    """``prompts.csv`` by stem (empty without one), read exactly or not at all, as
    ``labels.csv`` is: a missing column, a column seglib does not write (the next fix would
    drop it), a stem in two rows or prompts that do not read is one line naming the row."""
    path = Path(labels_dir) / PROMPTS_CSV
    rows = read_csv(path, required=PROMPT_COLUMNS)
    unknown = [c for c in (rows[0] if rows else {}) if c not in PROMPT_COLUMNS]
    if unknown:
        raise SeglibError(f"{path}: column {unknown[0]!r} is not one seglib writes (the next "
                          "fix would drop it); move it to another file or delete it")
    out: dict[str, dict[str, str]] = {}
    first: dict[str, int] = {}
    for n, r in enumerate(rows, start=2):
        stem = r.get("stem") or ""
        where = f"{path}: row {n} (stem {stem!r})"
        if stem in first:
            raise SeglibError(f"{where}: the stem is also in row {first[stem]}; delete one "
                              "of the rows")
        try:
            Prompts.from_json(r.get("prompts") or "")
        except SeglibError as exc:
            raise SeglibError(f"{where}: {exc}; fix or delete the row (the label stays, only "
                              "its recorded prompts go)") from None
        first[stem] = n
        out[stem] = {c: r.get(c) or "" for c in PROMPT_COLUMNS}
    return out


def redraw_prompted(labels_dir: str | Path, prompter: Prompter, *,
                    images_dir: str | Path | None = None) -> list[FixResult]:
    """Draw every ``prompted`` label again from its recorded prompts with ``prompter`` (e.g.
    another checkpoint). Labels a person replaced since (edited, imported: no longer
    ``prompted``) are left alone."""
    store = open_store(labels_dir)
    done = []
    for stem, row in read_prompts(labels_dir).items():
        rec = store.get(stem)
        if rec is None or rec.source != "prompted" or store.trimap_state(stem) == "changed":
            continue
        p = Prompts.from_json(row["prompts"])
        done.append(fix_label(labels_dir, stem, points=p.positive, negative=p.negative,
                              box=p.box, images_dir=images_dir, prompter=prompter))
    return done
