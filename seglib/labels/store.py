"""The label store: the one module that reads and writes a label folder.

Folder layout::

    OUT/<stem>.png               trimap (1 object, 2 background, 3 border), photo's own size
    OUT/candidates/<stem>.npz    every candidate mask and its scores (seglib.masks.candidates)
    OUT/labels.csv               one LabelRecord per photo (COLUMNS, schema SCHEMA)
    OUT/overrides.csv            optional, "stem,candidate": a manual choice (e.g. 3, ~0, 2+5)
    OUT/seglib.json              what the folder is ({"kind": "labels", "schema", "images"})
    OUT/.seglib.lock             while a run is using the folder (holds its pid)

Every label is keyed by content: a record holds the SHA-256 of the photo bytes it was made from
(``photo_hash``), of the photo's decoded pixels (``pixels_hash``) and of the trimap seglib wrote
(``trimap_hash``), and its ``source``. A photo is its decoded pixels: when a file's bytes change
but its pixels do not (a photo manager wrote a tag, rating or comment into it), it is the same
photo, its label and candidates stay and the record takes the new ``photo_hash``. A row of an
older schema has no ``pixels_hash``; the next ``label`` run fills it in from the photo while the
bytes still match. The sources:

- ``pick``      the policy's pick from the cached candidates;
- ``override``  a candidate named in ``overrides.csv`` (a person chose it);
- ``refined``   redrawn by ``refine`` in round ``round``;
- ``imported``  a mask brought in with ``import`` (e.g. corrected in CVAT);
- ``edited``    a trimap changed by hand: its bytes no longer match ``trimap_hash``;
- ``prompted``  redrawn by a prompter (SAM, or GrabCut offline) from the points and box a person
                gave (``seglib fix``, the notebook's reviewer); the prompts are recorded in
                ``prompts.csv`` (:mod:`seglib.labels.fixing`).

Why ``prompted`` and not ``edited``: an ``edited`` trimap is bytes a person changed with another
tool; nothing says how they were made, so nothing can make them again. A ``prompted`` label is
the output of a model on recorded prompts: ``fixing.redraw_prompted`` draws it again with
another checkpoint, and a reader of ``labels.csv`` can tell a drawn outline from a clicked one.
Both are a person's labels (confidence :func:`~seglib.labels.confidence.of_person`).

A person's label (``PERSON_SOURCES``: override, edited, prompted, imported, refined) is replaced
only when
the user asks (``--replace-kept``), also when its photo changed; a re-pick redraws ``pick``
labels and applies ``overrides.csv`` (a person's choice) again. No state is parsed out of
``reason``: it is for people. ``labels.csv`` is read exactly or not at all: a missing column, a
column seglib does not write (it would be lost), a stem in two rows or a cell that does not
read back as seglib wrote it is refused with one line naming the file and the row (nothing is
guessed, nothing written); stems are kept exactly, also with a leading or trailing space.
Every file is written atomically; ``labels.csv`` is rewritten whole (at most every
``SAVE_EVERY`` seconds in a long loop, and at the end), so a run killed at any moment finishes
on the next start: a photo whose candidates exist for its bytes is never sent to the model
again, and a trimap that equals one seglib would write from them is recognised as seglib's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, write_bytes_atomic
from seglib.core.folders import folder_lock
from seglib.core.images import photo_pixels_sha256
from seglib.core.tables import read_csv, write_csv
from seglib.labels.confidence import of_person
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap, mask_to_trimap, resize_mask, save_trimap

SCHEMA = 4  # 3: doubt, pick_confidence, pick_flagged (a label's own confidence); 4: pixels_hash
SOURCES = ("pick", "override", "refined", "imported", "edited", "prompted")
KEPT_SOURCES = ("refined", "imported", "edited", "prompted")  # a re-pick leaves these alone
PERSON_SOURCES = ("override", *KEPT_SOURCES)  # replaced only on --replace-kept
STATUSES = ("ok", "skipped", "failed")
FIRST_STATUSES = {"error": "failed"}  # words of the first schema (no 'schema' column)
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
    pixels_hash: str = ""  # SHA-256 of its decoded pixels (what identifies the photo)
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
        """A person made or chose this label (override, imported, edited, prompted)."""
        return self.source in ("override", "imported", "edited", "prompted")

    def made_from(self, path: str | Path, digest: str | None = None) -> bool:
        """Whether the photo at ``path`` (bytes' SHA-256 ``digest`` when known) is the one
        this label was drawn on: the same bytes, or other bytes over the same decoded pixels
        (a tag written into the file). A record of an older seglib without ``photo_hash`` is
        trusted. An unreadable photo raises :class:`SeglibError`."""
        if not self.photo_hash or (digest or file_sha256(path)) == self.photo_hash:
            return True
        return bool(self.pixels_hash) and photo_pixels_sha256(path) == self.pixels_hash

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
    stem = row.get("stem") or ""  # exact: a photo "shoe .jpg" has the stem "shoe "
    if not stem.strip():
        return None
    rec = LabelRecord(stem=stem)
    for k in ("file", "photo_hash", "pixels_hash", "backend", "mode", "policy", "chosen",
              "trimap_hash", "reason", "doubt"):
        setattr(rec, k, (row.get(k) or "").strip() if k not in ("file", "reason", "doubt")
                else row.get(k) or "")
    for k in _FLOATS:
        setattr(rec, k, _float(row.get(k)))
    rec.flagged = _bool(row.get("flagged"))
    rec.pick_flagged = _bool(row.get("pick_flagged"))
    migrate = "pick_confidence" not in row  # schema 1 and 2: confidence and flag were the pick's
    if migrate:
        rec.pick_confidence, rec.pick_flagged = rec.confidence, rec.flagged
    status = (row.get("status") or "").strip()
    status = status if "schema" in row else FIRST_STATUSES.get(status, status)
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


FIRST_SCHEMA_COLUMNS = ("stem", "file", "backend", "mode", "policy", "chosen", "predicted_iou",
                        "stability", "score", "confidence", "flagged", "seconds", "status",
                        "reason")
_BOOLS = ("", "0", "1", "true", "false", "yes", "no")
_HEX = frozenset("0123456789abcdef")


def check_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Refuse (one line naming ``path`` and the row) a ``labels.csv`` that cannot be read
    exactly: a missing column, a stem in two rows, a cell seglib would not have written. Rows
    are numbered as a spreadsheet shows them (the header is row 1)."""
    if not rows:
        return
    problem = _header_problem(list(rows[0]))
    if problem:
        raise SeglibError(f"{path}: {problem}; put it back as seglib wrote it, or delete it "
                          "to label again (hand-drawn trimaps are kept)")
    unknown = [c or "(unnamed)" for c in rows[0] if c not in COLUMNS and (
        c or any((r.get(c) or "").strip() for r in rows))]
    if unknown:  # seglib rewrites labels.csv whole: the column would be dropped
        raise SeglibError(f"{path}: column {', '.join(repr(c) for c in unknown)} is not one "
                          "seglib writes and would be lost when labels.csv is rewritten; move "
                          "your notes to another file (keyed by 'stem') and delete the column "
                          "(nothing was written)")
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=2):
        stem = row.get("stem") or ""
        problem = _row_problem(row)
        if problem is None and stem in seen:
            problem = f"the stem is also in row {seen[stem]} (it is read twice)"
        if problem:
            raise SeglibError(f"{path}: row {n} (stem {stem!r}): {problem}; fix the cell or "
                              "delete the row (labels.csv was not changed)")
        seen[stem] = n


def _header_problem(header: list[str]) -> str | None:
    for column in ("stem", "status"):
        if column not in header:
            return f"no '{column}' column"
    if "schema" not in header:
        later = [c for c in COLUMNS if c in header and c not in FIRST_SCHEMA_COLUMNS]
        if later:
            return ("no 'schema' column, but columns of a later schema than the first "
                    f"({', '.join(later[:3])})")
    elif "source" not in header:
        return "no 'source' column"
    return None


def _row_problem(row: dict[str, str]) -> str | None:
    """What in a row does not read back exactly (``None``: nothing)."""
    def cell(k: str) -> str:
        return (row.get(k) or "").strip()

    if not (row.get("stem") or "").strip():
        return "an empty 'stem'"
    if "schema" in row and not (cell("schema").isdigit() and 1 <= int(cell("schema")) <= SCHEMA):
        return f"'schema' is {cell('schema')!r}, not 1..{SCHEMA}"
    statuses = STATUSES if "schema" in row else (*STATUSES, *FIRST_STATUSES)
    expected = {"status": (statuses, cell("status") in statuses),
                "source": (SOURCES, "schema" not in row or cell("source") in SOURCES),
                "round": ("a whole number >= 0", cell("round") in ("",) or cell("round").isdigit()),
                **{k: ("0 or 1", cell(k).lower() in _BOOLS) for k in ("flagged", "pick_flagged")},
                **{k: ("a number", _float(cell(k)) is not None or cell(k) == "") for k in _FLOATS},
                **{k: ("a SHA-256 (64 hex digits)", cell(k) == "" or (
                    len(cell(k)) == 64 and set(cell(k)) <= _HEX))
                   for k in ("photo_hash", "pixels_hash", "trimap_hash")}}
    for k, (want, fine) in expected.items():
        if not fine:
            shown = "|".join(want) if isinstance(want, tuple) else want
            return f"'{k}' is {cell(k)!r}, expected {shown}"
    return None


# -- the store ----------------------------------------------------------------------------------
def stem_named(text: str, stems: Collection[str]) -> str:
    """The stem a hand-typed cell names: exactly it when the folder has that label (a stem
    may end in a space), else without the spaces around it."""
    return text if text in stems else text.strip()


def read_overrides(folder: str | Path, stems: Collection[str]) -> dict[str, str]:
    """A label folder's ``overrides.csv`` as ``{stem: choice}`` (empty when there is none);
    ``stems``: the folder's labels (``labels.csv`` as read already)."""
    rows = read_csv(Path(folder) / OVERRIDES_CSV, required=("stem", "candidate"))
    return {stem_named(r["stem"], stems): (r.get("candidate") or "").strip() for r in rows
            if (r.get("stem") or "").strip() and (r.get("candidate") or "").strip()}


def read_candidates(folder: str | Path, stem: str) -> Candidates:
    """The cached candidates of ``stem`` in a label folder, without reading ``labels.csv``
    (a loop over a folder's photos reads that once, not once per photo)."""
    path = Path(folder) / CANDIDATES_DIR / f"{stem}.npz"
    if not path.is_file():
        raise SeglibError(f"{path}: no cached candidates for {stem!r}; label the photo first")
    return Candidates.load(path)


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
        """Read ``labels.csv`` exactly; :class:`SeglibError` (one line naming the file and
        the row) for one that cannot be (see :func:`check_rows`)."""
        path = self.folder / LABELS_CSV
        rows = read_csv(path)
        check_rows(path, rows)
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
        return read_candidates(self.folder, stem)

    def overrides(self) -> dict[str, str]:
        """``overrides.csv`` as ``{stem: choice}``; empty when there is none."""
        return read_overrides(self.folder, self._records)

    def _stem_named(self, text: str) -> str:
        return stem_named(text, self._records)

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
