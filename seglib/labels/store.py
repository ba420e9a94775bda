"""The label store: the one module that reads and writes a label folder.

Folder layout::

    OUT/<stem>.png               trimap (1 object, 2 background, 3 border), photo's own size
    OUT/candidates/<stem>.npz    every candidate mask and its scores (seglib.masks.candidates)
    OUT/labels.csv               one LabelRecord per photo (COLUMNS, schema SCHEMA)
    OUT/overrides.csv            optional, "stem,candidate": a manual choice (e.g. 3, ~0, 2+5)
    OUT/seglib.json              what the folder is ({"kind": "labels", "schema", "images"})
    OUT/.seglib.lock             while a run is using the folder (holds its pid)

Every label is keyed by content: a record holds the SHA-256 of the photo bytes it was made from
(``photo_hash``) and of the trimap seglib wrote (``trimap_hash``), and its ``source``:

- ``pick``      the policy's pick from the cached candidates;
- ``override``  a candidate named in ``overrides.csv`` (a person chose it);
- ``refined``   redrawn by ``refine`` in round ``round``;
- ``imported``  a mask brought in with ``import`` (e.g. corrected in CVAT);
- ``edited``    a trimap changed by hand: its bytes no longer match ``trimap_hash``.

Only ``pick`` (and ``override``) labels are recomputed by a re-pick; the others are kept unless
the user asks (``--replace-kept``). No state is parsed out of ``reason``: it is for people.
Every file is written atomically; ``labels.csv`` is rewritten whole (at most every
``SAVE_EVERY`` seconds in a long loop, and at the end), so a run killed at any moment finishes
on the next start: a photo whose candidates exist for its bytes is never sent to the model
again, and a trimap that equals one seglib would write from them is recognised as seglib's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, write_bytes_atomic
from seglib.core.folders import folder_lock
from seglib.core.tables import read_csv, write_csv
from seglib.labels.confidence import of_person
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap, mask_to_trimap, resize_mask, save_trimap

SCHEMA = 3  # 3: doubt, pick_confidence, pick_flagged (a label's confidence is its own)
SOURCES = ("pick", "override", "refined", "imported", "edited")
KEPT_SOURCES = ("refined", "imported", "edited")  # a re-pick leaves these alone
STATUSES = ("ok", "skipped", "failed")
LABELS_CSV = "labels.csv"
OVERRIDES_CSV = "overrides.csv"
FOLDER_JSON = "seglib.json"
CANDIDATES_DIR = "candidates"
SAVE_EVERY = 2.0  # seconds between rewrites of labels.csv inside a long loop


@dataclass
class LabelRecord:
    """One photo's label: one row of ``labels.csv``."""

    stem: str
    file: str = ""  # the photo's file name
    photo_hash: str = ""  # SHA-256 of the photo bytes the label was made from
    backend: str = ""
    mode: str = ""
    policy: str = ""
    chosen: str = ""  # the candidate choice ("3", "~0", "2+5") the trimap was drawn from
    predicted_iou: float | None = None
    stability: float | None = None
    score: float | None = None
    confidence: float | None = None  # estimated P(the label is good), seglib.labels.confidence
    flagged: bool = False  # among the labels most likely to be wrong
    doubt: str = ""  # the weakest point of the label's evidence, in words ("" when none)
    pick_confidence: float | None = None  # the policy's confidence in its pick
    pick_flagged: bool = False  # the policy's flag (refine trains on unflagged picks)
    source: str = "pick"  # see SOURCES
    round: int = 0  # the refinement round that drew the label (source "refined")
    trimap_hash: str = ""  # SHA-256 of the trimap file as seglib wrote it
    seconds: float | None = None
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""  # words for people; never parsed

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def sure(self) -> bool:
        """A person made or chose this label (override, imported, edited)."""
        return self.source in ("override", "imported", "edited")

    def row(self) -> dict[str, str]:
        d: dict[str, str] = {}
        for k, v in asdict(self).items():
            if isinstance(v, bool):
                d[k] = str(int(v))
            elif isinstance(v, float):
                d[k] = f"{v:.4f}" if k != "seconds" else f"{v:.3f}"
            else:
                d[k] = "" if v is None else str(v)
        d["schema"] = str(SCHEMA)
        return d


COLUMNS = tuple(f.name for f in fields(LabelRecord)) + ("schema",)
_FLOATS = ("predicted_iou", "stability", "score", "confidence", "pick_confidence", "seconds")


def _float(text: str | None) -> float | None:
    try:
        x = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return x if x is None or np.isfinite(x) else None


def _bool(text: str | None) -> bool:
    return str(text or "").strip().lower() in ("1", "true", "yes")


def record_from_row(row: dict[str, str], overrides: Iterable[str] = ()) -> LabelRecord | None:
    """A record from a ``labels.csv`` row of this schema or the first one; ``None`` without a
    stem. Values that do not parse become empty; a row of the first schema (no ``schema``
    column) gets its ``source`` from the words it wrote then (the only place they are read)."""
    stem = (row.get("stem") or "").strip()
    if not stem:
        return None
    rec = LabelRecord(stem=stem)
    for k in ("file", "photo_hash", "backend", "mode", "policy", "chosen", "trimap_hash",
              "reason", "doubt"):
        setattr(rec, k, (row.get(k) or "").strip() if k not in ("reason", "doubt")
                else row.get(k) or "")
    for k in _FLOATS:
        setattr(rec, k, _float(row.get(k)))
    rec.flagged = _bool(row.get("flagged"))
    rec.pick_flagged = _bool(row.get("pick_flagged"))
    migrate = "pick_confidence" not in row  # schema 1 and 2: confidence and flag were the pick's
    if migrate:
        rec.pick_confidence, rec.pick_flagged = rec.confidence, rec.flagged
    status = (row.get("status") or "").strip()
    rec.status = status if status in STATUSES else "failed"
    if status not in STATUSES:
        rec.reason = f"labels.csv row had status {status!r}; labeled again"
    try:
        rec.round = max(0, int(row.get("round") or 0))
    except ValueError:
        rec.round = 0
    if (row.get("schema") or "").strip():
        src = (row.get("source") or "").strip()
        rec.source = src if src in SOURCES else "edited"  # unknown: keep it, as a hand edit
    else:  # schema 1: refinement and overrides were recorded in words
        words = rec.reason
        if words.startswith("refined"):
            rec.source = "refined"
            digits = words[len("refined r"):].split(" ", 1)[0] if words.startswith(
                "refined r") else "1"
            rec.round = int(digits) if digits.isdigit() else 1
        elif stem in set(overrides) and not words.startswith("override ignored"):
            rec.source = "override"
    if migrate and rec.sure:  # a person chose or drew it
        rec.confidence, rec.flagged, rec.doubt = of_person()
    return rec


# -- the store ----------------------------------------------------------------------------------
class LabelStore:
    """A label folder: its records, trimaps, cached candidates and overrides.

    Opening reads ``labels.csv`` (a first-schema file is migrated in memory and written in this
    schema by the next :meth:`save`). Writers hold :meth:`lock`.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.migrated = 0  # rows read from a first-schema labels.csv
        self.unsaved = False
        self._saved_at = time.monotonic()
        self.images_dir: Path | None = None
        meta = self.folder / FOLDER_JSON
        if meta.is_file():
            try:
                images = json.loads(meta.read_text()).get("images")
                self.images_dir = Path(images) if images else None
            except (OSError, ValueError, AttributeError):
                self.images_dir = None
        self._records: dict[str, LabelRecord] = {}
        self.reload()

    # -- reading ---------------------------------------------------------------------------
    def reload(self) -> None:
        rows = read_csv(self.folder / LABELS_CSV)
        overrides = self.overrides() if rows and "schema" not in rows[0] else {}
        self._records = {}
        for r in rows:
            rec = record_from_row(r, overrides)
            if rec is not None:
                self._records[rec.stem] = rec
        self.migrated = len(self._records) if rows and "schema" not in rows[0] else 0

    def records(self) -> dict[str, LabelRecord]:
        """Every record, by stem (sorted)."""
        return dict(sorted(self._records.items()))

    def get(self, stem: str) -> LabelRecord | None:
        return self._records.get(stem)

    def ok_records(self) -> list[LabelRecord]:
        return [r for r in self.records().values() if r.ok]

    def trimap_path(self, stem: str) -> Path:
        return self.folder / f"{stem}.png"

    def candidates_path(self, stem: str) -> Path:
        return self.folder / CANDIDATES_DIR / f"{stem}.npz"

    def load_candidates(self, stem: str) -> Candidates:
        path = self.candidates_path(stem)
        if not path.is_file():
            raise SeglibError(f"{path}: no cached candidates for {stem!r}; label the photo first")
        return Candidates.load(path)

    def overrides(self) -> dict[str, str]:
        """``overrides.csv`` as ``{stem: choice}``; empty when there is none."""
        rows = read_csv(self.folder / OVERRIDES_CSV, required=("stem", "candidate"))
        return {r["stem"].strip(): (r.get("candidate") or "").strip() for r in rows
                if (r.get("stem") or "").strip() and (r.get("candidate") or "").strip()}

    def unknown_overrides(self) -> list[str]:
        """Stems named in ``overrides.csv`` that the folder has no label for."""
        return sorted(s for s in self.overrides() if s not in self._records)

    def trimap_state(self, stem: str) -> str:
        """``"same"`` (the file is what seglib wrote), ``"missing"``, ``"unreadable"`` or
        ``"changed"`` (its bytes differ from the record's ``trimap_hash``)."""
        path = self.trimap_path(stem)
        rec = self._records.get(stem)
        if not path.is_file():
            return "missing"
        try:
            digest = file_sha256(path)
        except SeglibError:
            return "unreadable"
        if rec is not None and rec.trimap_hash and digest == rec.trimap_hash:
            return "same"
        try:
            load_trimap(path)
        except SeglibError:
            return "unreadable" if _decodes(path) else "missing"  # cut short: write it again
        return "changed" if rec is not None and rec.trimap_hash else "same"

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[Path]:
        """Hold the folder's lock; records not yet saved are saved when it is let go, also
        when the run stops with an error or Ctrl-C (the files they describe are written)."""
        with folder_lock(self.folder) as lock:
            try:
                yield lock
            finally:
                if self.unsaved:
                    self.save()

    def put(self, record: LabelRecord) -> None:
        self._records[record.stem] = record
        self.unsaved = True

    def remove(self, stem: str) -> None:
        if self._records.pop(stem, None) is not None:
            self.unsaved = True

    def save_due(self) -> bool:
        """Whether ``SAVE_EVERY`` seconds have passed since ``labels.csv`` was last written."""
        return time.monotonic() - self._saved_at >= SAVE_EVERY

    def save(self, *, throttle: bool = False) -> None:
        """Rewrite ``labels.csv`` (sorted by stem); with ``throttle`` at most every
        ``SAVE_EVERY`` seconds."""
        if throttle and not self.save_due():
            return
        write_csv(self.folder / LABELS_CSV, [r.row() for r in self.records().values()], COLUMNS)
        self._saved_at = time.monotonic()
        self.unsaved = False
        self.migrated = 0

    def remember_images(self, images_dir: str | Path) -> None:
        """Record where the photos are (``seglib.json``), so later commands can find them."""
        images = str(Path(images_dir).resolve())
        self.images_dir = Path(images)
        data = {"kind": "labels", "schema": SCHEMA, "images": images}
        path = self.folder / FOLDER_JSON
        try:
            if json.loads(path.read_text()) == data:
                return
        except (OSError, ValueError):
            pass
        write_bytes_atomic(path, (json.dumps(data, indent=1) + "\n").encode())

    def write_trimap(self, stem: str, trimap: np.ndarray) -> str:
        """Write a trimap atomically; its SHA-256."""
        path = save_trimap(self.trimap_path(stem), trimap)
        return file_sha256(path)

    def write_label(self, stem: str, mask: np.ndarray, *, source: str, **values) -> LabelRecord:
        """Make ``mask`` (bool, the photo's size) the label of ``stem``: write its trimap and
        update (or create) the record with ``source`` and ``values``."""
        if source not in SOURCES:
            raise ValueError(f"unknown label source {source!r}")
        rec = self._records.get(stem) or LabelRecord(stem=stem)
        rec.trimap_hash = self.write_trimap(stem, mask_to_trimap(np.asarray(mask, bool)))
        rec.source, rec.status = source, "ok"
        if source != "refined":
            rec.round = 0
        for k, v in values.items():
            if not hasattr(rec, k):
                raise TypeError(f"LabelRecord has no field {k!r}")
            setattr(rec, k, v)
        self.put(rec)
        return rec

    def set_overrides(self, overrides: dict[str, str]) -> Path:
        """Rewrite ``overrides.csv`` (sorted) atomically."""
        rows = [{"stem": s, "candidate": overrides[s]} for s in sorted(overrides)]
        return write_csv(self.folder / OVERRIDES_CSV, rows, ("stem", "candidate"))


def _decodes(path: Path) -> bool:
    """Whether an image file decodes at all (a cut-short write does not; a mask saved in a
    trimap's place does, and is somebody's work)."""
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None


def trimap_from_choice(cands: Candidates, choice: str, size: tuple[int, int]) -> np.ndarray:
    """The trimap seglib writes for ``choice`` of ``cands`` at ``size`` (H, W)."""
    from seglib.masks.policy import mask_for_choice

    return mask_to_trimap(resize_mask(mask_for_choice(cands, choice), size))


def made_by_seglib(trimap: np.ndarray, cands: Candidates, choices: Iterable[str]) -> bool:
    """Whether ``trimap`` is what seglib writes for one of ``choices`` of ``cands`` (so a
    trimap whose record was lost in a killed run is not taken for a hand edit)."""
    for choice in dict.fromkeys(c for c in choices if c):
        try:
            if np.array_equal(trimap_from_choice(cands, choice, trimap.shape[:2]), trimap):
                return True
        except SeglibError:
            continue
    return False
