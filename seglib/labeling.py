"""The resumable labeling loop: a folder of photos -> trimaps, ``labels.csv`` and cached candidates.

Output folder layout::

    OUT/<stem>.png               trimap (1 object, 2 background, 3 border), photo's own size
    OUT/candidates/<stem>.npz    every candidate mask and its scores (seglib.candidates)
    OUT/labels.csv               one row per photo (see COLUMNS)
    OUT/overrides.csv            optional, "stem,candidate": a manual choice (e.g. 3, ~0, 2+5)
    OUT/.seglib.lock             while a run is using the folder (holds its pid)

Every file is written atomically. For each photo the candidates are written first, then the
trimap, then ``labels.csv`` (rewritten whole from an in-memory state). On a restart that state
is rebuilt from the files on disk: a photo whose candidates exist is never sent to the model
again (a missing trimap or row is redone from the cached candidates), so a run killed at any
moment finishes on the next start with every photo labeled exactly once.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from seglib.candidates import Candidates
from seglib.errors import ImageReadError, SeglibError
from seglib.io import list_images, read_image, resize_max_side, write_bytes_atomic
from seglib.policy import pick
from seglib.trimap import load_trimap, mask_to_trimap, resize_mask, save_trimap

OVERRIDE_IGNORED = "override ignored"  # starts the reason of a row whose override was invalid
COLUMNS = ("stem", "file", "backend", "mode", "policy", "chosen", "predicted_iou", "stability",
           "score", "confidence", "flagged", "seconds", "status", "reason")
LABELS_CSV = "labels.csv"
OVERRIDES_CSV = "overrides.csv"
LOCK_NAME = ".seglib.lock"
CANDIDATES_DIR = "candidates"
MAX_SIDE = {"sam": 1024, "opencv": 1024}

Proposer = Callable[[np.ndarray], Candidates]


@dataclass
class LabelSummary:
    """What a ``label`` or ``pick`` run did."""

    out_dir: Path
    total: int = 0  # photos (or cached candidate sets) considered
    labeled: int = 0  # labeled (or re-picked) in this run
    existing: int = 0  # already done before this run, left as they were
    skipped: int = 0  # unreadable photos (a row with the reason)
    failed: int = 0  # photos the backend failed on (a row with the reason)
    flagged: int = 0  # low-confidence picks among the rows of this folder
    seconds: float = 0.0
    repicked: bool = False  # made by repick_folder: picks redone from cached candidates
    overrides: int = 0  # manual choices from overrides.csv that were applied (re-pick only)
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(r["status"] == "ok" for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when at least one photo has a label, else 1."""
        return 0 if self.ok else 1

    def describe(self) -> str:
        if self.repicked:
            return (f"{self.ok}/{self.total} photos re-picked from cached candidates in "
                    f"{self.out_dir} ({self.overrides} manual overrides, {self.failed} failed, "
                    f"{self.flagged} flagged for review) in {self.seconds:.1f} s")
        return (f"{self.ok}/{self.total} photos labeled in {self.out_dir} ({self.labeled} now, "
                f"{self.existing} already done, {self.skipped} skipped, {self.failed} failed, "
                f"{self.flagged} flagged for review) in {self.seconds:.1f} s")


# -- lock ---------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[Path]:
    """Hold ``out_dir/.seglib.lock`` (with our pid); a lock of a dead process is taken over.

    A folder this creates and leaves empty (the run failed before writing anything) is removed.
    """
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = out_dir / LOCK_NAME
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                text = lock.read_text().strip()
                age = time.time() - lock.stat().st_mtime
            except OSError:
                continue
            pid = int(text) if text.isdigit() else -1
            if _pid_alive(pid) or (pid < 0 and age < 5):
                raise SeglibError(
                    f"{out_dir}: another seglib run (pid {pid if pid > 0 else '?'}) is using "
                    f"this folder; wait for it to finish, or delete {lock} if it is not running"
                ) from None
            try:
                lock.unlink()  # stale: its process is gone
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise SeglibError(f"{lock}: cannot take the lock; delete it if no seglib run is active")
    try:
        yield lock
    finally:
        try:
            if lock.read_text().strip() == str(os.getpid()):
                lock.unlink()
            if created and not any(out_dir.iterdir()):
                out_dir.rmdir()
        except OSError:
            pass


# -- CSV files ----------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        # surrogateescape: file names that are not UTF-8 round-trip through the CSV files
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            return [dict(r) for r in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SeglibError(f"{path}: not a readable CSV file ({exc}); fix or delete it") from None


def write_labels_csv(out_dir: Path, rows: list[dict[str, str]]) -> Path:
    """Rewrite ``labels.csv`` atomically, rows sorted by stem."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r["stem"]):
        w.writerow({c: r.get(c, "") for c in COLUMNS})
    data = buf.getvalue().encode("utf-8", errors="surrogateescape")
    return write_bytes_atomic(out_dir / LABELS_CSV, data)


def read_labels_csv(out_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of ``OUT/labels.csv`` with numbers as floats and ``flagged`` as bool."""
    rows = _read_csv(Path(out_dir) / LABELS_CSV)
    out: list[dict[str, Any]] = []
    for r in rows:
        d: dict[str, Any] = dict(r)
        for k in ("predicted_iou", "stability", "score", "confidence", "seconds"):
            try:
                d[k] = float(r[k]) if r.get(k) else None
            except ValueError:
                d[k] = None
        d["flagged"] = str(r.get("flagged", "")).lower() in ("1", "true", "yes")
        out.append(d)
    return out


def read_overrides(out_dir: Path) -> dict[str, str]:
    """``overrides.csv`` (``stem,candidate``) as a dict; empty when there is none."""
    path = out_dir / OVERRIDES_CSV
    rows = _read_csv(path)
    if rows and not {"stem", "candidate"} <= set(rows[0]):
        raise SeglibError(f"{path}: needs the header 'stem,candidate'")
    return {r["stem"].strip(): (r["candidate"] or "").strip() for r in rows
            if r.get("stem") and (r.get("candidate") or "").strip()}


# -- one photo ----------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{float(x):.4f}"


def _chosen_scores(cands: Candidates, chosen: str) -> tuple[float, float]:
    idx = [int(p.lstrip("~")) for p in chosen.split("+") if p.lstrip("~").isdigit()]
    idx = [i for i in idx if i < len(cands)]
    if not idx:
        return 0.0, 0.0
    return float(np.mean(cands.predicted_iou[idx])), float(np.mean(cands.stability[idx]))


def _pick_and_save(out_dir: Path, stem: str, cands: Candidates, policy: str,
                   override: str | None, size: tuple[int, int]) -> tuple[dict[str, str], bool]:
    """Pick, write the trimap at ``size``; the row fields of the pick and its flagged state."""
    reason = ""
    try:
        p = pick(cands, policy, override=override)
    except SeglibError as exc:
        p = pick(cands, policy)
        p.flagged = True
        reason = f"{OVERRIDE_IGNORED} ({exc})"
    save_trimap(out_dir / f"{stem}.png", mask_to_trimap(resize_mask(p.mask, size)))
    piou, stab = _chosen_scores(cands, p.chosen)
    if not p.mask.any():
        p.flagged = True
        reason = reason or "no object found (empty mask)"
    row = {"policy": policy, "chosen": p.chosen, "predicted_iou": _fmt(piou),
           "stability": _fmt(stab), "score": _fmt(p.score), "confidence": _fmt(p.confidence),
           "flagged": str(int(p.flagged)), "status": "ok", "reason": reason}
    return row, p.flagged


def _trimap_size(path: Path) -> tuple[int, int] | None:
    try:
        return load_trimap(path).shape[:2]
    except SeglibError:
        return None


# -- the loops ----------------------------------------------------------------------------------
def label_folder(
    images_dir: str | Path,
    out_dir: str | Path,
    proposer: Proposer,
    *,
    backend: str,
    mode: str,
    policy: str = "foreground",
    limit: int | None = None,
    overwrite: bool = False,
    max_side: int | None = None,
) -> LabelSummary:
    """Label every photo of ``images_dir`` into ``out_dir`` (resumable; see the module doc).

    ``proposer`` maps an RGB uint8 photo to :class:`Candidates` at that photo's size. Photos
    larger than ``max_side`` (default 1024) are shrunk for it; trimaps keep the photo's size.
    """
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if out_dir.resolve() == images_dir.resolve():
        raise SeglibError(f"{out_dir}: is the photo folder; the trimaps would replace .png "
                          "photos, choose another --out")
    photos = list_images(images_dir)
    if not photos:
        raise SeglibError(f"{images_dir}: no .jpg/.jpeg/.png photos found; check the folder")
    if limit is not None:
        photos = photos[: max(0, int(limit))]
    side = max_side or MAX_SIDE.get(backend, 1024)
    t_start = time.perf_counter()
    with folder_lock(out_dir):
        overrides = read_overrides(out_dir)
        cand_dir = out_dir / CANDIDATES_DIR
        state: dict[str, dict[str, str]] = {}
        for r in _read_csv(out_dir / LABELS_CSV):
            stem = r.get("stem", "")
            if not stem:
                continue
            done = (out_dir / f"{stem}.png").is_file() and (cand_dir / f"{stem}.npz").is_file()
            if r.get("status") != "ok" or done:
                state[stem] = {c: r.get(c, "") for c in COLUMNS}
        summary = LabelSummary(out_dir=out_dir, total=len(photos))
        seen: set[str] = set()
        bar = tqdm(photos, desc=f"label ({backend})", unit="photo", file=sys.stderr)
        for path in bar:
            stem = path.stem
            if stem in seen:
                tqdm.write(f"skipped {path.name}: another photo is also named {stem!r}",
                           file=sys.stderr)
                continue
            seen.add(stem)
            trimap_path, npz_path = out_dir / f"{stem}.png", cand_dir / f"{stem}.npz"
            base = {"stem": stem, "file": path.name, "backend": backend, "mode": mode}
            old = state.get(stem)
            if not overwrite and npz_path.is_file():
                try:
                    cached = Candidates.load(npz_path)
                except SeglibError:
                    cached = None
                if cached is not None:
                    if (old is not None and old.get("status") == "ok"
                            and _trimap_size(trimap_path) is not None):  # readable, not cut short
                        summary.existing += 1
                        continue
                    # killed after the candidates were written: finish from the cache
                    size = _trimap_size(trimap_path)
                    if size is None:
                        try:
                            size = read_image(path).shape[:2]
                        except SeglibError:
                            size = cached.shape
                    fields, _ = _pick_and_save(out_dir, stem, cached, policy,
                                               overrides.get(stem), size)
                    prev = {"backend": old.get("backend"), "mode": old.get("mode")} if old else {}
                    state[stem] = {**base, **{k: v for k, v in prev.items() if v},
                                   "seconds": (old or {}).get("seconds", ""), **fields}
                    write_labels_csv(out_dir, list(state.values()))
                    summary.labeled += 1
                    continue
            t0 = time.perf_counter()
            try:
                photo = read_image(path)
            except ImageReadError as exc:
                state[stem] = {**base, "status": "skipped", "reason": str(exc)}
                summary.skipped += 1
                tqdm.write(f"skipped {path.name}: {exc}", file=sys.stderr)
                write_labels_csv(out_dir, list(state.values()))
                continue
            try:
                work = resize_max_side(photo, side) if max(photo.shape[:2]) > side else photo
                cands = proposer(work)
                cands.save(npz_path)
                fields, _ = _pick_and_save(out_dir, stem, cands, policy, overrides.get(stem),
                                           photo.shape[:2])
            except (SeglibError, ValueError, RuntimeError, MemoryError, cv2.error) as exc:
                state[stem] = {**base, "status": "failed",
                               "reason": f"{type(exc).__name__}: {exc}".replace("\n", " ")}
                summary.failed += 1
                tqdm.write(f"failed {path.name}: {exc}", file=sys.stderr)
                write_labels_csv(out_dir, list(state.values()))
                continue
            state[stem] = {**base, "seconds": f"{time.perf_counter() - t0:.3f}", **fields}
            summary.labeled += 1
            write_labels_csv(out_dir, list(state.values()))
        bar.close()
        write_labels_csv(out_dir, list(state.values()))
    summary.rows = sorted(state.values(), key=lambda r: r["stem"])
    summary.flagged = sum(r.get("flagged") == "1" for r in summary.rows)
    summary.seconds = time.perf_counter() - t_start
    return summary


def repick_folder(out_dir: str | Path, policy: str = "foreground") -> LabelSummary:
    """Re-pick every cached candidate set of ``out_dir`` with ``policy`` (and overrides.csv).

    No model runs: trimaps and ``labels.csv`` are rewritten from ``candidates/*.npz``.
    """
    out_dir = Path(out_dir)
    cand_dir = out_dir / CANDIDATES_DIR
    files = sorted(cand_dir.glob("*.npz")) if cand_dir.is_dir() else []
    if not files:
        raise SeglibError(f"{out_dir}: no cached candidates in {cand_dir}; "
                          f"run `python -m seglib label IMAGES --out {out_dir}` first")
    t_start = time.perf_counter()
    with folder_lock(out_dir):
        overrides = read_overrides(out_dir)
        state = {r["stem"]: r for r in _read_csv(out_dir / LABELS_CSV) if r.get("stem")}
        summary = LabelSummary(out_dir=out_dir, total=len(files), repicked=True)
        for npz in tqdm(files, desc=f"pick ({policy})", unit="photo", file=sys.stderr):
            stem = npz.stem
            old = state.get(stem, {"stem": stem, "file": "", "backend": "", "mode": ""})
            try:
                cands = Candidates.load(npz)
            except SeglibError as exc:
                state[stem] = {**old, "status": "failed", "reason": str(exc)}
                summary.failed += 1
                continue
            old["backend"] = old.get("backend") or cands.backend
            size = _trimap_size(out_dir / f"{stem}.png") or cands.shape
            fields, _ = _pick_and_save(out_dir, stem, cands, policy, overrides.get(stem), size)
            state[stem] = {**old, **fields}
            summary.labeled += 1
            summary.overrides += stem in overrides and not fields["reason"].startswith(
                OVERRIDE_IGNORED)
        write_labels_csv(out_dir, list(state.values()))
    summary.rows = sorted(state.values(), key=lambda r: r["stem"])
    summary.flagged = sum(r.get("flagged") == "1" for r in summary.rows)
    summary.seconds = time.perf_counter() - t_start
    return summary
