"""Training loop: a run folder with ``best.pt``, ``last.pt``, ``history.csv``, ``metrics.json``.

- ``best.pt``: the epoch with the lowest validation loss (or the highest validation object
  IoU with the preset's ``select="iou_object"``); ``last.pt``: the same plus the optimizer and
  shuffle-generator state, written after every epoch; ``resume=True`` continues from it.
  Both are described, written and read by :mod:`seglib.training.checkpoints`.
- ``history.csv``: one row per epoch; ``metrics.json``: the best epoch's validation metrics.
- ``manifest.json``: what the run was made from, written before the first epoch (see
  :mod:`seglib.training.checkpoints`). ``resume=True`` continues only a run whose manifest
  matches the photos, labels and options and whose ``last.pt`` is readable; anything else
  stops with one line naming the difference.

Every file is written atomically (temp file + rename): Ctrl-C or a SIGKILL mid-epoch leaves
the previous complete files in place.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from seglib.core.device import autocast, autocast_dtype, pick_device
from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, write_bytes_atomic
from seglib.core.folders import folder_lock, refuse_output
from seglib.core.parallel import import_ray, map_photos, preloaded
from seglib.masks.metrics import Scores
from seglib.training.checkpoints import (
    BEST,
    LAST,
    MANIFEST,
    RunInputs,
    RunMismatchError,
    check_resume,
    load_checkpoint,
    run_inputs,
    set_aside,
    write_best,
    write_last,
    write_manifest,
)
from seglib.training.data import (
    SPLIT_SEED,
    STANDARD_SUBSETS,
    Dataset,
    Tensors,
    batches,
    load_dataset,
    subset_sizes,
    take_subset,
)
from seglib.training.models import build_model, count_params, use_channels_last
from seglib.training.presets import Preset, get_preset, repeat_name

HISTORY_FIELDS = ("epoch", "train_loss", "val_loss", "pixel_accuracy", "mean_iou",
                  "iou_object", "seconds")


@dataclass
class RunResult:
    """What a finished (or resumed-and-finished) training run produced."""

    out: Path
    best: Path
    metrics: dict
    history: list[dict]
    config: dict
    seconds: float
    n_train: int
    n_val: int
    skipped: list = field(default_factory=list)


def _log_default(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)


def segmentation_loss(logits: torch.Tensor, y: torch.Tensor, border_weight: float = 1.0,
                      dice: float = 0.0, photo_weights: torch.Tensor | None = None,
                      ) -> torch.Tensor:
    """Cross-entropy (border class weighted by ``border_weight``; 0 ignores it) plus ``dice``
    times a soft Dice loss of the object class over the batch (border pixels left out).

    ``photo_weights`` (N) weight each photo's pixels in both terms.
    """
    logits = logits.float()
    if photo_weights is None and border_weight in (0.0, 1.0):
        loss = F.cross_entropy(logits, y, ignore_index=2 if border_weight == 0.0 else -100)
    else:
        cls_w = torch.tensor([1.0, 1.0, border_weight], device=logits.device)
        pix = cls_w[y]
        if photo_weights is not None:
            pix = pix * photo_weights.to(pix.device).view(-1, 1, 1)
        ce = F.cross_entropy(logits, y, reduction="none")
        loss = (ce * pix).sum() / pix.sum().clamp_min(1e-6)
    if dice > 0:
        keep = (y != 2).float()
        if photo_weights is not None:
            keep = keep * photo_weights.to(keep.device).view(-1, 1, 1)
        prob = logits.softmax(1)[:, 0] * keep
        truth = (y == 0).float() * keep
        inter = (prob * truth).sum()
        loss = loss + dice * (1 - (2 * inter + 1) / (prob.sum() + truth.sum() + 1))
    return loss


def loss_for(p: Preset) -> Callable[..., torch.Tensor]:
    """The preset's training loss as a function of (logits, targets[, label confidence])."""
    def loss(logits: torch.Tensor, y: torch.Tensor,
             confidence: torch.Tensor | None = None) -> torch.Tensor:
        w = None
        if confidence is not None and p.confidence_weight > 0:
            w = 1 - p.confidence_weight * (1 - confidence.float())
        return segmentation_loss(logits, y, p.border_weight, p.dice, w)
    return loss


def evaluate_tensors(model: torch.nn.Module, data: Tensors, device: torch.device,
                     batch: int = 32, amp: bool = True,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                     ) -> dict:
    """Validation loss (``loss_fn``, default cross-entropy) and metrics on preloaded tensors."""
    scores = Scores()
    model.eval()
    cl = use_channels_last(device)
    with torch.no_grad():
        for start in range(0, len(data), batch):
            x = data.images[start:start + batch].float().to(device)
            y = data.targets[start:start + batch].long().to(device)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, amp):
                logits = model(x)
            logits = logits.float()
            loss = loss_fn(logits, y) if loss_fn else F.cross_entropy(logits, y)
            scores.add_loss(loss.item(), y.numel())
            scores.add(logits.argmax(1).cpu().numpy(), y.cpu().numpy())
    return scores.summary()


def _make_optimizer(p: Preset, model: torch.nn.Module) -> torch.optim.Optimizer:
    if p.optimizer == "rmsprop":
        # Keras RMSprop defaults: rho 0.9, eps 1e-7
        return torch.optim.RMSprop(model.parameters(), lr=p.lr, alpha=0.9, eps=1e-7)
    if p.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=p.lr)
    raise SeglibError(f"unknown optimizer {p.optimizer!r}; choose adam or rmsprop")


def _write_history(path: Path, history: Sequence[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in history:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in HISTORY_FIELDS})
    write_bytes_atomic(path, buf.getvalue().encode())


def _write_json(path: Path, data: dict) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def selection_score(select: str, metrics: dict) -> float:
    """Lower is better: the validation loss, or minus the validation object IoU."""
    if select == "iou_object":
        return -float(metrics.get("iou_object") or 0.0)
    if select == "val_loss":
        return float(metrics["val_loss"])
    raise SeglibError(f"unknown checkpoint selection {select!r}; choose val_loss or iou_object")


def _row_metrics(m: dict) -> dict:
    return {"val_loss": m.get("val_loss"), "pixel_accuracy": m.get("pixel_accuracy"),
            "mean_iou": m.get("mean_iou"), "iou_object": m.get("iou_object")}


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, device: torch.device, amp: bool,
               loss_fn: Callable[..., torch.Tensor] | None = None,
               confidence: torch.Tensor | None = None) -> torch.Tensor:
    """One optimisation step (autocast forward, fp32 loss, backward, update); returns the loss.

    ``loss_fn(logits, targets)`` defaults to cross-entropy; with ``confidence`` (the labels'
    confidence per photo) it is called as ``loss_fn(logits, targets, confidence)``.
    """
    with autocast(device, amp):
        logits = model(x)
    if confidence is None:
        loss = (loss_fn or F.cross_entropy)(logits.float(), y)
    else:
        loss = (loss_fn or F.cross_entropy)(logits.float(), y, confidence)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def train_run(
    images: str | Path,
    trimaps: str | Path,
    out: str | Path,
    *,
    n: int | None = None,
    shuffle: bool = True,
    preset: str | Preset = "quick",
    arch: str | None = None,
    size: int | None = None,
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    seed: int = SPLIT_SEED,
    device: str = "auto",
    amp: bool = True,
    resume: bool = False,
    dataset: Dataset | None = None,
    inputs: RunInputs | None = None,
    init: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> RunResult:
    """Train one model on the first ``n`` training pairs and write the run folder ``out``.

    ``preset`` gives the defaults; ``arch``/``size``/``epochs``/``batch``/``lr`` override it.
    ``shuffle=False`` keeps one fixed batch order (the "711B" model). ``dataset`` reuses pairs
    already loaded by :func:`seglib.training.data.load_dataset` at the same size, and ``inputs`` its
    :func:`run_inputs` (hashed once for several runs). With ``resume`` an interrupted run
    continues from ``last.pt`` and a finished one is returned as is, when its
    ``manifest.json`` matches the photos, labels and options (else :class:`RunMismatchError`);
    a folder with no run in it starts a new run. ``init``: a ``best.pt`` (or ``last.pt``)
    whose weights the fresh model starts from (fine-tuning; its hash is in the config, so a
    resume with other starting weights is refused).

    The run folder is locked (``out/.seglib.lock``) while training: a second run started on
    the same folder stops with a one-line error naming the lock.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    p = p.with_overrides(arch=arch, size=size, epochs=epochs, batch=batch, lr=lr)
    selection_score(p.select, {"val_loss": 0.0})  # an unknown selection fails before loading
    out = Path(out)
    refuse_output(out, inputs=[images, trimaps], allow="run")
    with folder_lock(out):
        return _train_locked(images, trimaps, out, p, n=n, shuffle=shuffle, seed=seed,
                             device=device, amp=amp, resume=resume, dataset=dataset,
                             inputs=inputs, init=init, log=log, progress=progress)


@dataclass
class _Run:
    """A run in training: what it trains on and with, and how far it has come."""

    out: Path
    p: Preset
    config: dict
    dataset: Dataset
    train_data: Tensors
    total_epochs: int
    every: int  # validate every this many epochs (and after the first and the last)
    dev: torch.device
    amp: bool
    shuffle: bool
    say: Callable[[str], None]
    model: torch.nn.Module | None = None
    opt: torch.optim.Optimizer | None = None
    gen: torch.Generator | None = None
    loss_fn: Callable[..., torch.Tensor] | None = None
    cl: bool = False  # channels_last input batches
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best_score: float = float("inf")
    best_metrics: dict = field(default_factory=dict)
    elapsed: float = 0.0


def _train_locked(images: str | Path, trimaps: str | Path, out: Path, p: Preset, *,
                  n: int | None, shuffle: bool, seed: int, device: str, amp: bool,
                  resume: bool, dataset: Dataset | None, inputs: RunInputs | None,
                  init: str | Path | None, log: Callable[[str], None] | None,
                  progress: bool) -> RunResult:
    say = log or _log_default
    has_run = any((out / f).exists() for f in (BEST, LAST, "history.csv"))
    if not resume and has_run:
        raise SeglibError(f"{out}: already holds a training run; pass --resume to continue it "
                          "or choose another --out folder")
    if dataset is None or dataset.size != p.size:
        dataset = load_dataset(images, trimaps, p.size, seed=SPLIT_SEED, log=log)
        inputs = None
    run = _prepare(images, trimaps, out, p, n=n, shuffle=shuffle, seed=seed, device=device,
                   amp=amp, dataset=dataset, say=say, init=init)
    inputs = inputs or run_inputs(dataset)
    used = list(run.train_data.stems) + list(dataset.val.stems)
    last = check_resume(out, inputs, run.config, used) if has_run else None
    _build(run, seed, init)
    if last is not None:
        _restore(run, last)
    _announce(run, inputs.only(used), fresh=last is None)
    bar = tqdm(range(run.start_epoch, run.total_epochs), desc=out.name, unit="epoch",
               initial=run.start_epoch, total=run.total_epochs, disable=not progress)
    with bar:
        for epoch in bar:
            bar.set_postfix(_epoch(run, epoch))
    return _finish(run)


def _prepare(images: str | Path, trimaps: str | Path, out: Path, p: Preset, *,
             n: int | None, shuffle: bool, seed: int, device: str, amp: bool,
             dataset: Dataset, say: Callable[[str], None],
             init: str | Path | None = None) -> _Run:
    """The run's training subset, epochs, device and config (what its checkpoints hold)."""
    train = take_subset(dataset.train.stems, n, log=say)
    train_data = dataset.train.select(range(len(train)))
    config = run_config(images, trimaps, p, dataset, n=n, n_train=len(train_data),
                        shuffle=shuffle, seed=seed, init=init)
    total_epochs = config["epochs"]
    every = p.validate_every(total_epochs)
    dev = pick_device(device)
    return _Run(out, p, config, dataset, train_data, total_epochs, every, dev, amp, shuffle,
                say)


def run_config(images: str | Path, trimaps: str | Path, p: Preset, dataset: Dataset, *,
               n: int | None, n_train: int, shuffle: bool, seed: int,
               init: str | Path | None = None) -> dict:
    """What a run's checkpoints and manifest hold: every preset field under its own name
    ("preset" for the name), the epochs for ``n_train`` photos, the split, the folders and
    the hash of the starting weights ``init`` (None: a fresh model)."""
    recipe = p.as_dict()
    return {"preset": recipe.pop("name"), **recipe, "epochs": p.epochs_for(n_train),
            "num_classes": 3, "shuffle": bool(shuffle), "seed": int(seed), "n_requested": n,
            "n_train": n_train, "n_val": len(dataset.val), "images": str(images),
            "trimaps": str(trimaps), "val_stems": list(dataset.val.stems),
            "init": None if init is None else file_sha256(Path(init))}


def _build(run: _Run, seed: int, init: str | Path | None = None) -> None:
    """A fresh model (with the weights of the checkpoint ``init`` when given), loss,
    optimizer and shuffle generator, seeded with ``seed``."""
    torch.manual_seed(seed)
    model = build_model(run.p.arch, width=run.p.width)
    if init is not None:
        model.load_state_dict(load_checkpoint(Path(init))["state_dict"])
    model = model.to(run.dev)
    run.loss_fn = loss_for(run.p)
    run.cl = use_channels_last(run.dev)
    if run.cl:
        model = model.to(memory_format=torch.channels_last)
    run.model = model
    run.opt = _make_optimizer(run.p, model)
    run.gen = torch.Generator().manual_seed(seed)


def _restore(run: _Run, last: dict) -> None:
    """Continue from ``last.pt``: weights, optimizer, generator, history and best so far."""
    assert run.model is not None and run.opt is not None and run.gen is not None
    best_path = run.out / BEST
    run.model.load_state_dict(last["state_dict"])
    run.opt.load_state_dict(last["optimizer"])
    run.gen.set_state(last["generator"])
    run.history = list(last["history"])
    run.start_epoch = int(last["epoch"])
    run.best_score = float(last.get("best_score", last.get("best_val_loss", run.best_score)))
    run.elapsed = float(last.get("seconds", 0.0))
    if best_path.exists():  # may be one epoch ahead of last.pt after a kill
        try:
            run.best_metrics = load_checkpoint(best_path).get("metrics", {})
        except SeglibError:  # last.pt is fine: go on, the next validation rewrites best.pt
            if run.start_epoch >= run.total_epochs:
                raise SeglibError(f"{best_path}: damaged, and the run is finished, so no "
                                  "epoch will write it again; delete best.pt and last.pt "
                                  "and train again") from None
            run.say(f"notice: {best_path} is damaged; resuming from last.pt, the next "
                    "validation writes a new best.pt")
            run.best_metrics, run.best_score = {}, float("inf")
        if run.best_metrics:
            run.best_score = min(run.best_score, selection_score(run.p.select, run.best_metrics))
    run.say(f"{run.out}: resuming after epoch {run.start_epoch} of {run.total_epochs}")


def _announce(run: _Run, inputs: RunInputs, fresh: bool) -> None:
    """Say what will be trained (when epochs remain); a fresh run writes its manifest."""
    p, dev, amp = run.p, run.dev, run.amp
    if run.start_epoch < run.total_epochs:
        run.say(f"{run.out.name}: {p.arch} on {len(run.train_data)} photos "
                f"({'shuffled' if run.shuffle else 'fixed order'})"
                f", {len(run.dataset.val)} validation, {run.total_epochs} epochs at {p.size}px, "
                f"device {dev.type}"
                + (f", autocast {autocast_dtype(dev)}" if amp and autocast_dtype(dev) else ""))
    if fresh:
        write_manifest(run.out, inputs, run.config)


def _epoch(run: _Run, epoch: int) -> dict[str, str]:
    """Train one epoch, validate when due, write the files; returns the progress bar's
    postfix."""
    model, opt, gen, p = run.model, run.opt, run.gen, run.p
    assert model is not None and opt is not None and gen is not None
    t0 = time.perf_counter()
    for group in opt.param_groups:
        group["lr"] = p.lr_at(epoch, run.total_epochs)
    model.train()
    loss_sum, seen = 0.0, 0
    weighted = p.confidence_weight > 0
    for x, y, *conf in batches(run.train_data, p.batch, run.shuffle, p.flips, gen, p.jitter,
                               confidence=weighted):
        x, y = x.to(run.dev), y.to(run.dev)
        if run.cl:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = train_step(model, opt, x, y, run.dev, run.amp, run.loss_fn,
                          conf[0] if conf else None)
        loss_sum += loss.item() * len(x)
        seen += len(x)
    row: dict = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, seen)}
    validate = epoch == 0 or (epoch + 1) % run.every == 0 or epoch + 1 == run.total_epochs
    if validate:
        m = evaluate_tensors(model, run.dataset.val, run.dev, amp=run.amp, loss_fn=run.loss_fn)
        row.update(_row_metrics(m))
    _check_finite(run.out, epoch + 1, row, p.lr)
    run.elapsed += time.perf_counter() - t0
    row["seconds"] = round(run.elapsed, 2)
    run.history.append(row)
    if validate and selection_score(p.select, m) < run.best_score:
        run.best_score = selection_score(p.select, m)
        run.best_metrics = dict(m, epoch=epoch + 1)
        write_best(run.out, model, run.config, epoch + 1, run.best_metrics)
        _write_json(run.out / "metrics.json",
                    _metrics_doc(run.best_metrics, run.config, run.elapsed, False))
    write_last(run.out, model, run.config, opt, gen, epoch + 1, run.history, run.best_score,
               run.elapsed)
    _write_history(run.out / "history.csv", run.history)
    post = {"loss": f"{row['train_loss']:.3f}"}
    if validate:
        post.update(val=f"{m['val_loss']:.3f}", iou=f"{m['iou_object'] or 0:.3f}")
    return post


def _finish(run: _Run) -> RunResult:
    """The final ``metrics.json`` (``finished``) and the run's result."""
    doc = _metrics_doc(run.best_metrics, run.config, run.elapsed, True)
    _write_json(run.out / "metrics.json", doc)
    return RunResult(run.out, run.out / BEST, doc, run.history, run.config, run.elapsed,
                     len(run.train_data), len(run.dataset.val), list(run.dataset.skipped))


def _check_finite(out: Path, epoch: int, row: dict, lr: float) -> None:
    """A loss that became NaN or infinite ends the run with one line (the weights of that
    epoch are not saved; ``last.pt`` keeps the epoch before)."""
    losses = [row[k] for k in ("train_loss", "val_loss") if row.get(k) is not None]
    if all(math.isfinite(v) for v in losses):
        return
    raise SeglibError(f"{out}: training diverged at epoch {epoch} (loss "
                      f"{', '.join(f'{v:g}' for v in losses)}); train again with a smaller "
                      f"learning rate (--lr, now {lr:g}) in a new --out folder")


def _metrics_doc(best: dict, config: dict, seconds: float, finished: bool) -> dict:
    doc = dict(best)
    doc.update(arch=config["arch"], size=config["size"], preset=config["preset"],
               n_train=config["n_train"], n_val=config["n_val"], shuffle=config["shuffle"],
               epochs=config["epochs"], train_seconds=round(seconds, 1), finished=finished)
    return doc


def standard_run_dir(out: str | Path, name: str) -> Path:
    """``out/model_<name>`` (e.g. ``runs/quick/model_711B``)."""
    return Path(out) / f"model_{name}"


def train_standard(
    images: str | Path,
    trimaps: str | Path,
    out: str | Path,
    *,
    preset: str | Preset = "quick",
    subsets: Sequence[str] = STANDARD_SUBSETS,
    log: Callable[[str], None] | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    **kwargs: object,
) -> dict[str, RunResult]:
    """Train the standard models (10, 161, 207, 711 and 711B) into ``out/model_<name>``,
    each ``preset.repeats`` times (repeat r > 1 into ``out/model_<name>_r<r>``, seed + r - 1;
    the first repeat of every model first, then the second, ...).

    The photos are loaded once; all models share the same validation photos. Reruns skip
    finished models and resume interrupted ones; a model whose photos, labels or options
    changed since it was trained (or that cannot be continued) is trained again, its old run
    kept in ``out/model_<name>.old-<k>`` (:func:`renew_changed_run`, one line each). Writes
    ``out/summary.csv``.

    ``workers`` > 1 trains that many models at once (:func:`train_standard_spread`): locally
    in worker processes with one torch thread per core each (two one-thread runs of the small
    U-Net train 1.3x more photos per second on two cores than one two-thread run:
    docs/benchmarks.md), or with ``engine="ray"`` as Ray tasks; ``address`` and ``workers`` are
    those of :func:`seglib.core.parallel.map_photos`.
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    p = p.with_overrides(**{k: kwargs.pop(k, None) for k in ("arch", "size", "epochs",
                                                              "batch", "lr")})
    if engine not in ("local", "ray"):
        raise SeglibError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        import_ray()  # not installed: one line before the photos are loaded
    refuse_output(out, inputs=[images, trimaps], allow="runs")
    with folder_lock(Path(out)):
        if engine == "ray" or (workers or 1) > 1:
            return train_standard_spread(images, trimaps, Path(out), p, subsets, log,
                                         engine=engine, address=address, workers=workers,
                                         **kwargs)
        return _train_standard_locked(images, trimaps, Path(out), p, subsets, log, **kwargs)


def _train_standard_locked(images: str | Path, trimaps: str | Path, out: Path, p: Preset,
                           subsets: Sequence[str], log: Callable[[str], None] | None,
                           **kwargs: object) -> dict[str, RunResult]:
    say = log or _log_default
    dataset = load_dataset(images, trimaps, p.size, log=log)
    inputs = run_inputs(dataset)
    sizes = subset_sizes(len(dataset.train) + len(dataset.val), subsets)
    if len(dataset.train) < 711:
        shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
        say(f"only {len(dataset.train)} training photos: subset sizes {shown}")
    results: dict[str, RunResult] = {}
    seed = int(kwargs.pop("seed", SPLIT_SEED))  # type: ignore[call-overload]
    for r in range(1, max(1, p.repeats) + 1):  # repeat r: seed + r - 1, run repeat_name
        for name in subsets:
            run = repeat_name(name, r)
            renew_changed_run(standard_run_dir(out, run), images, trimaps, p, dataset, inputs,
                              n=sizes[name], shuffle=not name.endswith("B"), seed=seed + r - 1,
                              say=say)
            results[run] = train_run(
                images, trimaps, standard_run_dir(out, run), n=sizes[name],
                shuffle=not name.endswith("B"), preset=p, resume=True, dataset=dataset,
                inputs=inputs, log=log, seed=seed + r - 1, **kwargs)  # type: ignore[arg-type]
    write_summary(Path(out) / "summary.csv", results)
    return results


RUN_FILES = (MANIFEST, "last.pt", "history.csv", "best.pt", "metrics.json")  # as written


def renew_changed_run(run_dir: Path, images: str | Path, trimaps: str | Path, p: Preset,
                      dataset: Dataset, inputs: RunInputs, *, n: int | None, shuffle: bool,
                      seed: int, say: Callable[[str], None]) -> Path | None:
    """Set aside a standard model's run that cannot be continued with these photos, labels
    and options (:func:`check_resume` would refuse it: its inputs changed, it has no
    manifest or no readable ``last.pt``), so it is trained again; says so in one line and
    returns where the old run went (``model_N.old-K``). A run with the same inputs, or no
    run, is left as it is (``None``): it is reused or resumed."""
    if not any((run_dir / f).exists() for f in (BEST, LAST, "history.csv")):
        return None
    train = take_subset(dataset.train.stems, n, log=lambda m: None)
    config = run_config(images, trimaps, p, dataset, n=n, n_train=len(train),
                        shuffle=shuffle, seed=seed)
    try:
        check_resume(run_dir, inputs, config, list(train) + list(dataset.val.stems))
        return None
    except RunMismatchError as exc:
        why = exc.why
    with folder_lock(run_dir):
        old = set_aside(run_dir)
    say(f"{run_dir.name}: trained again: {why}; the old run is kept in {old.name}")
    return old


def _train_job(dataset: Dataset, job: tuple) -> tuple[dict[str, bytes], RunResult]:
    """A worker's task: train one model and return its result. A local worker (``run_dir``
    given) trains in the run folder itself, so an interrupted run resumes from its last
    epoch; a Ray task trains in a temporary folder of its node, starting from ``files`` (an
    interrupted run's), and also returns the run folder's files."""
    images, trimaps, name, n, shuffle, p, files, kwargs, run_dir = job
    if run_dir is not None:
        r = train_run(images, trimaps, run_dir, n=n, shuffle=shuffle, preset=p, resume=True,
                      dataset=dataset, progress=False, log=lambda m: None, **kwargs)
        return {}, r
    with tempfile.TemporaryDirectory(prefix="seglib-train-") as tmp:
        run_dir = Path(tmp) / f"model_{name}"
        run_dir.mkdir()
        for fname, data in files.items():
            write_bytes_atomic(run_dir / fname, data)
        r = train_run(images, trimaps, run_dir, n=n, shuffle=shuffle, preset=p, resume=True,
                      dataset=dataset, progress=False, log=lambda m: None, **kwargs)
        out = {f: (run_dir / f).read_bytes() for f in RUN_FILES if (run_dir / f).is_file()}
    return out, r


def _photos_seen(p: Preset, n: int | None, available: int) -> int:
    """Photos a run of ``n`` training photos (of ``available``) sees: its cost."""
    n_train = min(n or available, available)
    return p.epochs_for(n_train) * n_train


def _spread_jobs(images: str | Path, trimaps: str | Path, out: Path, p: Preset,
                 subsets: Sequence[str], dataset: Dataset, engine: str,
                 say: Callable[[str], None], kwargs: dict) -> tuple[list[tuple], list[str]]:
    """The workers' jobs, longest first, and the runs in the standard order."""
    kwargs = dict(kwargs, inputs=run_inputs(dataset))  # hashed here: nodes need no photos
    sizes = subset_sizes(len(dataset.train) + len(dataset.val), subsets)
    jobs, order = [], []
    seed = int(kwargs.pop("seed", SPLIT_SEED))
    for r in range(1, max(1, p.repeats) + 1):  # repeat r: seed + r - 1, run repeat_name
        for name in subsets:
            run = repeat_name(name, r)
            order.append(run)
            run_dir = standard_run_dir(out, run)
            renew_changed_run(run_dir, images, trimaps, p, dataset, kwargs["inputs"],
                              n=sizes[name], shuffle=not name.endswith("B"), seed=seed + r - 1,
                              say=say)
            files = {f: (run_dir / f).read_bytes() for f in RUN_FILES
                     if engine == "ray" and (run_dir / f).is_file()}
            jobs.append((images, trimaps, run, sizes[name], not name.endswith("B"), p, files,
                         dict(kwargs, seed=seed + r - 1),
                         run_dir if engine == "local" else None))
    jobs.sort(key=lambda job: -_photos_seen(p, job[3], len(dataset.train)))
    return jobs, order


def train_standard_spread(images: str | Path, trimaps: str | Path, out: Path, p: Preset,
                          subsets: Sequence[str], log: Callable[[str], None] | None = None, *,
                          engine: str = "ray", address: str | None = None,
                          workers: int | None = None,
                          **kwargs: object) -> dict[str, RunResult]:
    """The standard models on ``workers`` at once, longest first; call it holding ``out``'s
    lock. Each model equals the one :func:`train_run` trains with one torch thread on the
    same device.

    ``engine="local"``: worker processes of this machine, each training in its model's run
    folder (an interrupted model resumes from its last epoch). ``engine="ray"``: Ray tasks
    (one GPU each when the cluster has GPUs, else one CPU and one torch thread each); the
    photos are loaded here once and sent to the workers, so the nodes need no copy of them.
    Each task trains in a temporary folder of its node and returns the run's files; this
    process writes them to ``out/model_<name>``: no shared folder is needed, and a model
    interrupted mid-way restarts from its last ``last.pt`` written here (a model's progress
    inside a task is lost when the task is).
    """
    say = log or _log_default
    dataset = load_dataset(images, trimaps, p.size, log=log)
    jobs, order = _spread_jobs(images, trimaps, out, p, subsets, dataset, engine, say, kwargs)
    results: dict[str, RunResult] = {}
    failed: list[str] = []
    with tqdm(total=len(jobs), desc=f"train ({engine})", unit="model", file=sys.stderr) as bar:
        for done in map_photos(_train_job, jobs, setup=preloaded(dataset), engine=engine,
                               address=address, workers=workers, gpu=engine == "ray"):
            bar.update()
            name = done.item[2]
            if not done.ok:
                failed.append(f"model_{name}: {done.error}")
                continue
            files, r = done.value
            sent = done.item[6]
            run_dir = standard_run_dir(out, name)
            if files:  # a Ray task's files (a local worker wrote its run folder itself)
                with folder_lock(run_dir):
                    for fname in RUN_FILES:
                        if fname in files and files[fname] != sent.get(fname):  # new, changed
                            write_bytes_atomic(run_dir / fname, files[fname])
            results[name] = dataclasses.replace(r, out=run_dir, best=run_dir / "best.pt")
            say(f"model_{name}: {r.n_train} photos, {r.metrics.get('epochs')} epochs, "
                f"{r.seconds:.0f} s")
    results = {name: results[name] for name in order if name in results}
    write_summary(out / "summary.csv", results)
    if failed:
        raise SeglibError("; ".join(failed))
    return results


def write_summary(path: Path, results: dict[str, RunResult]) -> None:
    """One CSV row per model: photos, epochs, time and validation metrics."""
    fields = ("model", "n_train", "n_val", "epochs", "best_epoch", "train_seconds", "val_loss",
              "pixel_accuracy", "mean_iou", "iou_object", "iou_object_per_photo")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for name, r in results.items():
        m = r.metrics
        w.writerow({"model": name, "n_train": r.n_train, "n_val": r.n_val,
                    "epochs": m.get("epochs"), "best_epoch": m.get("epoch"),
                    "train_seconds": m.get("train_seconds"),
                    **{k: _round(m.get(k)) for k in fields[6:]}})
    write_bytes_atomic(path, buf.getvalue().encode())


def _round(v: object) -> object:
    return round(v, 4) if isinstance(v, float) else v


def describe(model_or_arch: torch.nn.Module | str) -> str:
    """``"unet: 491,891 parameters"``."""
    m = build_model(model_or_arch) if isinstance(model_or_arch, str) else model_or_arch
    name = model_or_arch if isinstance(model_or_arch, str) else type(m).__name__
    return f"{name}: {count_params(m):,} parameters"


__all__ = ["RunResult", "train_run", "train_standard", "train_standard_spread", "evaluate_tensors",
           "segmentation_loss", "selection_score", "standard_run_dir", "train_step"]
