"""What a folder is, what it was made from, and the rule that outputs never land on inputs.

Kinds of folder seglib writes, and how each is recognised:

- ``labels``: ``labels.csv`` (written by ``label``);
- ``run``: ``manifest.json``, ``best.pt``, ``last.pt`` or ``history.csv`` (``train``);
- ``runs``: ``model_*/best.pt`` subfolders (``train --standard``, the course's ``models/``);
- ``course``: ``course.json`` (the course runner's output folder);
- ``export``: ``seglib-export.json`` (``export``);
- any other kind (``predictions``, ``trimaps``, ``sample``): the marker file ``seglib.json`` (JSON
  ``{"kind": ...}``, the file the label store also writes), written by :func:`mark_folder`.

:func:`refuse_output` is the one check every command makes before writing into ``--out``.
A run folder's ``manifest.json`` and a course folder's ``course.json`` record the photos (and
labels) they were made from as ``{stem: sha256 of the file}``; :func:`describe_changes` says
in a few words how two such maps differ.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, write_bytes_atomic
from seglib.core.images import IMAGE_SUFFIXES

MARKER = "seglib.json"
EXPORT_FILE = "seglib-export.json"
RUN_FILES = ("manifest.json", "best.pt", "last.pt", "history.csv")
LABELS_FILE = "labels.csv"
COURSE_FILE = "course.json"
_NAMES_SHOWN = 3


def folder_kind(path: str | Path) -> str | None:
    """``labels``, ``run``, ``runs``, ``course``, ``export``, a marked kind, or None."""
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / LABELS_FILE).is_file():
        return "labels"
    if any((path / f).is_file() for f in RUN_FILES):
        return "run"
    if (path / COURSE_FILE).is_file():
        return "course"
    if (path / EXPORT_FILE).is_file():
        return "export"
    try:
        kind = json.loads((path / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if isinstance(kind, str) and kind:
        return kind
    if any((p / "best.pt").is_file() for p in path.glob("model_*")):
        return "runs"
    return None


def mark_folder(path: str | Path, kind: str) -> None:
    """Record that ``path`` holds seglib output of ``kind`` (so a rerun may write into it)."""
    path = Path(path)
    if folder_kind(path) != kind:
        write_bytes_atomic(path / MARKER, (json.dumps({"kind": kind}) + "\n").encode())


_WHAT = {"labels": "a label folder (labels.csv)", "run": "a training run (best.pt, last.pt, "
         "history.csv or manifest.json)", "runs": "trained models (model_*/best.pt)",
         "course": "a course output folder (course.json)",
         "export": "an export (seglib-export.json)",
         "sample": "the synthetic sample (python -m seglib sample)"}
# the files that say what a folder is: no command writes one of them as its own output file
KIT_FILES = (LABELS_FILE, *RUN_FILES, COURSE_FILE, EXPORT_FILE, MARKER, "overrides.csv",
             "metrics.json", "refine_evidence.csv", "summary.json")


def _photos_in(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir()
                      if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError:
        return []


def refuse_output(out: str | Path, *, inputs: Sequence[str | Path] = (), allow: str,
                  writes: Iterable[str] = ()) -> None:
    """Raise a one-line :class:`SeglibError` unless ``out`` may receive output of ``allow``.

    Refused: ``out`` is one of the ``inputs`` folders (or a file), holds another kind of
    seglib folder (see :func:`folder_kind`), or, when it is not already a folder of kind
    ``allow``, holds photos (a photo folder) or a file that one of ``writes`` (file names)
    would overwrite. A folder's own earlier output of the same kind is accepted (a rerun
    writes into it again), and so is a new or empty folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SeglibError(f"{out}: is a file, not a folder; choose another --out")
    kind = folder_kind(out)
    if kind is not None and kind != allow:
        what = _WHAT.get(kind, f"{kind} written by seglib")
        raise SeglibError(f"{out}: holds {what}, which this command would mix with or "
                          "overwrite; choose another --out")
    target = out.resolve()
    if any(Path(folder).resolve() == target for folder in inputs):
        raise SeglibError(f"{out}: is an input folder of this command, whose files the "
                          "output would overwrite; choose another --out")
    if kind == allow:
        return
    clash = sorted(n for n in set(writes) if (out / n).exists())
    if clash:
        photos = [n for n in clash if Path(n).suffix.lower() in IMAGE_SUFFIXES]
        what = "photos or other files" if photos else "files"
        raise SeglibError(f"{out}: holds {what} this command would overwrite "
                          f"({_names(clash)}); choose another --out")
    photos = _photos_in(out) if out.is_dir() else []
    if photos:
        raise SeglibError(f"{out}: holds photos ({_names(photos)}), which this command's "
                          "output would mix with or overwrite; choose another --out")


def refuse_output_file(path: str | Path, *, header: str, option: str,
                       inputs: Sequence[str | Path] = ()) -> None:
    """Raise one line unless the file ``path`` may receive a command's output (``option``
    names it, e.g. ``--csv``), whose first line starts with ``header``.

    Refused: a folder, a photo's name, a file that says what a seglib folder is
    (:data:`KIT_FILES`: ``labels.csv``, ``manifest.json`` ...), a file inside one of the
    ``inputs`` folders, or an existing file that is not this command's own earlier output
    (its first line does not start with ``header``). A new file, or the command's own, is accepted.
    """
    path = Path(path)
    fix = f"choose another {option} file"
    if path.is_dir():
        raise SeglibError(f"{option} {path}: is a folder; {fix}")
    if path.suffix.lower() in IMAGE_SUFFIXES or path.name in KIT_FILES:
        raise SeglibError(f"{option} {path}: is the name of a photo or of a file seglib "
                          f"keeps its records in; {fix}")
    parent = path.parent.resolve()
    for folder in inputs:
        folder = Path(folder).resolve()
        if parent == folder or folder in parent.parents:
            raise SeglibError(f"{option} {path}: lies in the input folder {folder}; {fix}")
    if path.exists():
        try:
            with path.open("rb") as f:
                first = f.readline().decode("utf-8-sig", errors="replace").strip()
        except OSError as exc:
            raise SeglibError(f"{option} {path}: cannot read ({exc.strerror}); {fix}") from None
        if not first.startswith(header):
            raise SeglibError(f"{option} {path}: holds a file this command did not write, "
                              f"which it would overwrite; {fix}")


def keep_existing(out: str | Path, items: Sequence[Path], *,
                  overwrite: bool) -> tuple[list[Path], list[Path]]:
    """``(todo, kept)``: the ``items`` (photos, masks) whose output ``out/<stem>.png`` a run
    writes, and those whose output exists and is kept: a rerun never replaces a trimap a
    person may have corrected by hand, unless ``overwrite`` (then ``kept`` is empty). The one
    rule ``trimap`` and ``predict`` keep earlier output by."""
    if overwrite:
        return list(items), []
    out = Path(out)
    kept = [p for p in items if (out / f"{p.stem}.png").exists()]
    done = set(kept)
    return [p for p in items if p not in done], kept


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_NAMES_SHOWN])
    return shown + (", ..." if len(items) > _NAMES_SHOWN else "")


def hash_files(files: Mapping[str, str | Path]) -> dict[str, str]:
    """``{stem: sha256}`` of each file's bytes."""
    return {stem: file_sha256(path) for stem, path in sorted(files.items())}


def describe_changes(old: Mapping[str, str], new: Mapping[str, str], what: str = "photo",
                     *, added: bool = True) -> list[str]:
    """How ``new`` ({stem: hash}) differs from ``old``, e.g. ``["2 photos changed (a, b)"]``.

    ``added=False`` leaves stems only in ``new`` out (for labels, whose photo is counted).
    """
    changed = sorted(s for s in old.keys() & new.keys() if old[s] != new[s])
    gone = sorted(old.keys() - new.keys())
    fresh = sorted(new.keys() - old.keys()) if added else []
    out = []
    for items, one, many in ((changed, "changed", "changed"), (gone, "is gone", "are gone"),
                             (fresh, "is new", "are new")):
        if items:
            n = len(items)
            out.append(f"{n} {what}{'' if n == 1 else 's'} {one if n == 1 else many} "
                       f"({_names(items)})")
    return out


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A manifest as a dict, None when there is no file; a damaged one is a one-line error."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SeglibError(f"{path}: not readable ({exc}); delete its folder to start "
                          "over") from None
    if not isinstance(doc, dict):
        raise SeglibError(f"{path}: not a seglib manifest; delete its folder to start over")
    return doc


def write_json(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Write a manifest atomically (indented JSON)."""
    return write_bytes_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())


__all__ = ["MARKER", "folder_kind", "mark_folder", "refuse_output", "refuse_output_file",
           "keep_existing",
           "hash_files",
           "describe_changes", "read_json", "write_json"]


LOCK_NAME = ".seglib.lock"


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
    out_dir = Path(out_dir)
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
