"""A run folder's checkpoints and manifest: writing, safe reading and the resume checks.

- ``best.pt``: ``{"format", "state_dict", "config", "epoch", "metrics"}`` of the best epoch;
  plain tensors and Python values, loaded with ``torch.load(weights_only=True)``.
- ``last.pt``: the same plus optimizer and shuffle-generator state, history, best score and
  training time, written after every epoch; a resumed run continues from it.
- ``manifest.json``: what the run was made from, written before the first epoch:
  ``{"schema", "kind": "run", "photos": {stem: sha256}, "labels": {stem: sha256},
  "options"}``, the photos and labels the run trains and validates on (schema 2; schema 1
  listed every photo loaded). :func:`check_resume` continues only a run whose manifest
  matches the photos, labels and options and whose ``last.pt`` is readable.

Every file is written atomically (temp file + rename).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from seglib.core.errors import SeglibError
from seglib.core.files import write_bytes_atomic
from seglib.core.folders import LOCK_NAME, describe_changes, hash_files, read_json, write_json

if TYPE_CHECKING:
    from seglib.training.data import Dataset

FORMAT = "seglib-run-v1"
BEST = "best.pt"
LAST = "last.pt"
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 2  # 2: the photos the run uses (training and validation); 1: all loaded
RESUME_KEYS = ("arch", "size", "width", "n_train", "shuffle", "seed", "val_stems")
# chosen, not made by the split ("init": the starting weights' hash, None for a fresh model)
OPTION_KEYS = ("arch", "size", "width", "shuffle", "seed", "init")
CHANGED = {"n_train": "its number of training photos changed",
           "init": "it started from other weights",
           "val_stems": "its validation photos changed"}


def save_checkpoint(path: Path, payload: dict) -> Path:
    """``torch.save`` to memory, then an atomic write."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """Load a run checkpoint safely (``weights_only=True``) or raise a one-line error."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST
    if not path.is_file():
        raise SeglibError(f"{path}: checkpoint not found; pass RUN/best.pt from a training run")
    try:
        with warnings.catch_warnings():  # odd pickles warn before they fail; the error says it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our file"
        from seglib.core.files import unreadable_reason

        why = unreadable_reason(path, exc)
        if path.name == LAST:
            raise SeglibError(f"{path}: the resume state is damaged ({why}); "
                              f"{start_over(path.parent)}") from None
        raise SeglibError(f"{path}: not a seglib checkpoint ({why}); pass the "
                          "best.pt written by 'python -m seglib train'") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "state_dict" not in ckpt:
        raise SeglibError(f"{path}: not a seglib checkpoint (no seglib config inside); pass "
                          "the best.pt written by 'python -m seglib train'")
    return ckpt


def cpu_state(model: torch.nn.Module) -> dict:
    """The model's weights as contiguous CPU tensors (what a checkpoint stores)."""
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def write_best(out: Path, model: torch.nn.Module, config: dict, epoch: int,
               metrics: dict) -> Path:
    """``out/best.pt``: the weights of ``epoch`` with its validation ``metrics``."""
    return save_checkpoint(out / BEST, {
        "format": FORMAT, "state_dict": cpu_state(model), "config": config,
        "epoch": epoch, "metrics": metrics})


def write_last(out: Path, model: torch.nn.Module, config: dict, opt: torch.optim.Optimizer,
               gen: torch.Generator, epoch: int, history: list[dict], best_score: float,
               seconds: float) -> Path:
    """``out/last.pt``: everything a resumed run needs to go on after ``epoch``."""
    return save_checkpoint(out / LAST, {
        "format": FORMAT, "state_dict": cpu_state(model), "config": config,
        "optimizer": opt.state_dict(), "generator": gen.get_state(),
        "epoch": epoch, "history": history, "best_score": best_score,
        "seconds": seconds})


class RunMismatchError(SeglibError):
    """A run folder that ``resume`` cannot continue (other photos, labels or options, no
    manifest, or no readable ``last.pt``); ``why`` is the difference alone, in a few words."""

    def __init__(self, message: str, why: str = "") -> None:
        super().__init__(message)
        self.why = why or message


@dataclass
class RunInputs:
    """What a run is made from: ``{stem: sha256}`` of the photos and of their trimaps."""

    photos: dict[str, str]
    labels: dict[str, str]

    def only(self, stems: Collection[str]) -> RunInputs:
        """These inputs for the photos ``stems`` alone."""
        keep = set(stems)
        return RunInputs({s: h for s, h in self.photos.items() if s in keep},
                         {s: h for s, h in self.labels.items() if s in keep})


def run_inputs(dataset: Dataset) -> RunInputs:
    """Hash the photos and trimaps of every pair ``dataset`` loaded (training and validation)."""
    used = set(dataset.train.stems) | set(dataset.val.stems)
    pairs = [p for p in dataset.scan.pairs if p.stem in used]
    return RunInputs(hash_files({p.stem: p.image for p in pairs}),
                     hash_files({p.stem: p.trimap for p in pairs}))


def write_manifest(out: Path, inputs: RunInputs, config: dict) -> None:
    """``out/manifest.json``: the run's photos, labels and options (not its folders)."""
    write_json(out / MANIFEST, {
        "schema": MANIFEST_SCHEMA, "kind": "run", "photos": inputs.photos,
        "labels": inputs.labels,
        "options": {k: v for k, v in config.items() if k not in ("images", "trimaps")}})


def start_over(out: Path) -> str:
    """The fix named when a run folder cannot be continued."""
    return f"train into a new --out, or delete {out} to start over"


def check_resume(out: Path, inputs: RunInputs, config: dict,
                 used: Collection[str] | None = None) -> dict:
    """The run's ``last.pt`` when ``out`` can be resumed with these inputs and options;
    otherwise a :class:`RunMismatchError` naming the difference and the fix. ``used``: the
    photos the run trains and validates on (a manifest of schema 2 records only those)."""
    manifest = read_json(out / MANIFEST)
    if manifest is None:
        raise RunMismatchError(f"{out}: has no {MANIFEST} (made by an older seglib), so its "
                               f"photos and labels cannot be checked; {start_over(out)}",
                               f"it has no {MANIFEST} (made by an older seglib)")
    old = manifest.get("options") or {}
    if old.get("n_requested", config["n_requested"]) != config["n_requested"]:
        _check_options(out, old, config, ("n_train",))  # --n changed: say that, not photos
    _check_options(out, old, config, OPTION_KEYS)
    photos = manifest.get("photos") or {}
    labels = manifest.get("labels") or {}
    if used is not None and manifest.get("schema") == MANIFEST_SCHEMA:  # its own photos:
        _check_inputs(out, photos, labels, inputs.only(photos))  # changed or gone, then
        _check_options(out, old, config, RESUME_KEYS)  # another split, or other photos in it
        _check_inputs(out, photos, labels, inputs.only(used))
    else:
        _check_inputs(out, photos, labels, inputs)
        _check_options(out, old, config, RESUME_KEYS)
    last_path = out / LAST
    if not last_path.is_file():
        raise RunMismatchError(f"{last_path}: missing, so the run cannot continue (its best.pt "
                               f"is kept); {start_over(out)}", f"its {LAST} is missing")
    try:
        return load_checkpoint(last_path)
    except SeglibError as exc:
        raise RunMismatchError(str(exc), f"its {LAST} is damaged") from None


def _check_inputs(out: Path, photos: dict, labels: dict, inputs: RunInputs) -> None:
    """Raise :class:`RunMismatchError` naming the photos and labels of ``inputs`` that differ
    from the manifest's ``photos`` and ``labels``."""
    changes = "; ".join(describe_changes(photos, inputs.photos, "photo")
                        + describe_changes(labels, inputs.labels, "label", added=False))
    if changes:
        raise RunMismatchError(f"{out}: {changes} since the run was made: resume "
                               f"needs the same photos and labels; {start_over(out)}",
                               f"{changes} since it was trained")


def _check_options(out: Path, old: dict, config: dict, keys: Sequence[str]) -> None:
    """Raise :class:`RunMismatchError` naming the first of ``keys`` whose value in the
    manifest's options ``old`` differs from ``config``'s."""
    for key in keys:
        if old.get(key) != config[key]:
            raise RunMismatchError(f"{out}: was trained with {key}={old.get(key)!r}, not "
                                   f"{config[key]!r}; use the same options, or "
                                   f"{start_over(out)}",
                                   CHANGED.get(key, f"it was trained with another {key}"))


def set_aside(out: Path) -> Path:
    """Move the files of the run folder ``out`` (all but its lock) into a new sibling
    ``<name>.old-<k>`` (the first free ``k``), so a new run can start in ``out`` and the old
    one is kept; returns the new folder. Hold ``out``'s lock while calling it."""
    k = 1
    while True:
        old = out.with_name(f"{out.name}.old-{k}")
        try:
            old.mkdir()
            break
        except FileExistsError:
            k += 1
    files = sorted((p for p in out.iterdir() if p.name != LOCK_NAME),
                   key=lambda p: p.name != MANIFEST)  # the manifest first: a kill half-way
    for path in files:  # leaves a run without manifest, which is set aside again
        os.replace(path, old / path.name)
    return old


__all__ = ["FORMAT", "BEST", "LAST", "MANIFEST", "RunInputs", "RunMismatchError",
           "check_resume", "cpu_state", "load_checkpoint", "run_inputs", "save_checkpoint",
           "set_aside", "start_over", "write_best", "write_last", "write_manifest"]
