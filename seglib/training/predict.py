"""A trained run -> predicted trimaps at each photo's own size.

The photo is resized to the training size, the class logits are resized back to the photo's
size (bilinear) and the most likely class becomes the label (1 object, 2 background,
3 border). By default (``clean=True``) only the predicted object mask is kept and the trimap
is recomputed from it with :func:`seglib.masks.trimap.mask_to_trimap`, which gives the exact
one-pixel border of the training trimaps. Measured on 100 validation photos of sneakers this
leaves object IoU unchanged, lifts border IoU from 0.00 to 0.08 and mean IoU by 0.02-0.03,
for 0.4% less pixel accuracy.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from seglib.core.device import autocast, pick_device
from seglib.core.errors import SeglibError
from seglib.core.files import write_png_atomic
from seglib.core.folders import keep_existing, mark_folder, refuse_output
from seglib.core.images import as_rgb, read_image, scan_images
from seglib.core.parallel import map_photos, preloaded
from seglib.masks.trimap import BORDER, OBJECT, mask_to_trimap, save_trimap
from seglib.training.checkpoints import load_checkpoint
from seglib.training.data import network_photo
from seglib.training.models import build_model, use_channels_last

KIND = "predictions"


@dataclass
class TrainedModel:
    """A model in eval mode with the config it was trained with."""

    module: torch.nn.Module
    config: dict
    device: torch.device
    path: Path

    @property
    def size(self) -> int:
        return int(self.config["size"])


def load_model(path: str | Path, device: str = "auto") -> TrainedModel:
    """Load ``RUN/best.pt`` (or a run folder) safely with ``weights_only=True``."""
    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    dev = pick_device(device)
    try:
        if int(cfg["size"]) < 1:
            raise ValueError(f"size {cfg['size']!r}")
        model = build_model(cfg["arch"], int(cfg.get("num_classes", 3)),
                            width=int(cfg.get("width", 8)))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as exc:
        raise SeglibError(f"{path}: checkpoint does not match its model "
                          f"({str(exc).splitlines()[0][:120]}); retrain the run") from None
    model = model.to(dev).eval()
    if use_channels_last(dev):
        model = model.to(memory_format=torch.channels_last)
    return TrainedModel(model, cfg, dev, Path(path))


def _model_logits(model: TrainedModel, image: np.ndarray, tta: bool | None) -> torch.Tensor:
    """The network's class logits (1×C×size×size float32, NCHW) for an RGB uint8 photo."""
    small = network_photo(as_rgb(image), model.size)
    x = torch.from_numpy(small).permute(2, 0, 1)[None].float().to(model.device)
    if use_channels_last(model.device):
        x = x.contiguous(memory_format=torch.channels_last)
    if model.config.get("tta", False) if tta is None else tta:
        x = torch.cat([x, x.flip(-1)])
    with torch.no_grad(), autocast(model.device):
        logits = model.module(x).float()
    if len(logits) == 2:
        logits = (logits[:1] + logits[1:].flip(-1)) / 2
    return logits.cpu().contiguous()


def _upsized(logits: torch.Tensor, h: int, w: int) -> Iterator[np.ndarray]:
    """Each class's logits resized (bilinear) to h×w, one photo-sized float map at a time.

    One class at a time also makes PyTorch use the same kernel on every CPU and thread count:
    a 3-channel NCHW map on one thread goes to its channels-last kernel, which writes a second
    photo-sized copy (a 6000×4000 photo peaked at 549 MB instead of 275 MB) and rounds
    differently in the last bit from the one-channel kernel used here.
    """
    for c in range(logits.shape[1]):
        up = torch.nn.functional.interpolate(logits[:, c:c + 1], size=(h, w), mode="bilinear",
                                             align_corners=False)
        yield up[0, 0].numpy()
        del up  # before the next class's map is allocated


def predict_logits(model: TrainedModel, image: np.ndarray, tta: bool | None = None) -> np.ndarray:
    """Class logits (3×H×W float32) at the photo's own size (softmax gives probabilities).

    ``tta`` averages the logits of the photo and its mirror image (default: the run's
    ``tta`` setting).
    """
    logits = _model_logits(model, image, tta)  # checks the photo first
    h, w = np.asarray(image).shape[:2]
    out = np.empty((logits.shape[1], h, w), np.float32)
    for c, up in enumerate(_upsized(logits, h, w)):
        out[c] = up
    return out


def _argmax_uint8(scores: Iterable[np.ndarray]) -> np.ndarray:
    """``argmax`` over class maps as uint8 (first max wins), without int64 copies of a
    photo-sized map; ``scores`` is a C×H×W array or any iterable of H×W maps."""
    maps = iter(scores)
    best = np.array(next(maps))  # a copy: updated in place below
    cls = np.zeros(best.shape, np.uint8)
    better = np.empty(best.shape, bool)
    c = 0  # not enumerate(): its cached (index, map) pair would keep the last map alive
    for score in maps:
        c += 1
        np.greater(score, best, out=better)
        cls[better] = c
        np.maximum(best, score, out=best)
        del score  # before the next class's map is allocated
    return cls


def _classes_to_trimap(cls: np.ndarray, clean: bool) -> np.ndarray:
    if not clean:
        cls += np.uint8(1)
        return cls
    return mask_to_trimap((cls == OBJECT - 1).astype(np.uint8))


def predict_image(model: TrainedModel, image: np.ndarray, clean: bool = True,
                  tta: bool | None = None) -> np.ndarray:
    """Predicted trimap (uint8, labels 1/2/3) at the photo's own size.

    ``clean`` (default) keeps the predicted object and redraws the one-pixel border around
    it; ``clean=False`` gives the raw most likely class per pixel (the network rarely picks
    the thin border class, so raw trimaps have almost no border). Equal to the most likely
    class of :func:`predict_logits` (first class on ties) while holding one photo-sized float
    map at a time instead of all three.
    """
    logits = _model_logits(model, image, tta)  # checks the photo first
    h, w = np.asarray(image).shape[:2]
    cls = _argmax_uint8(_upsized(logits, h, w))
    return _classes_to_trimap(cls, clean)


def predict_photo(model: TrainedModel, path: Path, clean: bool = True, overlays: bool = False,
                  ) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """One photo: (trimap, overlay or None, "") or (None, None, why it was skipped)."""
    try:
        img = read_image(path)
    except SeglibError as exc:
        return None, None, str(exc)
    tri = predict_image(model, img, clean)
    if not overlays:
        return tri, None, ""
    from seglib.masks.draw import overlay

    return tri, overlay(img, tri == OBJECT, (0.0, 1.0, 0.0), 0.45, edge=tri == BORDER,
                        edge_color=(1.0, 0.0, 0.0)), ""


def predict_folder(checkpoint: str | Path, images: str | Path, out: str | Path, *,
                   overlays: bool = False, clean: bool = True, device: str = "auto",
                   overwrite: bool = False, log: Callable[[str], None] | None = None,
                   workers: int | None = None, engine: str = "local",
                   address: str | None = None) -> tuple[int, list[tuple[Path, str]], int]:
    """Write ``out/<stem>.png`` trimaps (and ``out/overlays/<stem>.png``) for every photo.

    ``out`` is marked as a predictions folder; a label folder, a run, the photo folder or a
    folder whose files the trimaps would replace is refused (see
    :func:`seglib.core.folders.refuse_output`). Unreadable photos are skipped with their reason.
    A trimap that exists is kept (it may be corrected by hand), as ``trimap`` does
    (:func:`seglib.core.folders.keep_existing`), unless ``overwrite``.
    Returns (written, skipped, kept). ``workers``/``engine``/``address`` run the photos in parallel
    (:mod:`seglib.core.parallel`; each worker loads the model once); the files are the same as with
    one process.
    """
    say = log or (lambda m: tqdm.write(m, file=sys.stderr))
    model = load_model(checkpoint, device)  # a bad checkpoint fails here, before any bar
    scan = scan_images(images)
    paths = scan.photos
    if not paths:
        raise SeglibError(f"{images}: no .jpg/.jpeg/.png photos found; check the folder")
    out = Path(out)
    run_dir = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
    refuse_output(out, inputs=[images, run_dir], allow=KIND,
                  writes=[f"{p.stem}.png" for p in paths])
    mark_folder(out, KIND)
    written, skipped = 0, list(scan.skipped)
    for line in scan.skipped_lines():
        say(line)
    seen: set[str] = set()
    todo = []
    for path in paths:
        if path.stem in seen:
            reason = f"{path}: another photo is also named {path.stem!r}; rename one of them"
            skipped.append((path, reason))
            say(f"skipped {path.name}: another photo is also named {path.stem!r}")
            continue
        seen.add(path.stem)
        todo.append(path)
    todo, kept = keep_existing(out, todo, overwrite=overwrite)
    work = functools.partial(predict_photo, clean=clean, overlays=overlays)
    one_process = engine == "local" and (workers or 1) == 1
    setup = preloaded(model) if one_process else functools.partial(load_model, checkpoint, device)
    with tqdm(total=len(todo), desc="predict", unit="photo") as bar:
        for done in map_photos(work, todo, setup=setup, workers=workers, engine=engine,
                               address=address, gpu=True):
            bar.update()
            path = done.item
            tri, over, why = done.value if done.ok else (None, None, f"{path}: {done.error}")
            if tri is None:
                skipped.append((path, why))
                say(f"skipped: {why}")
                continue
            save_trimap(out / f"{path.stem}.png", tri)
            if over is not None:
                write_png_atomic(out / "overlays" / f"{path.stem}.png", over)
            written += 1
    return written, skipped, len(kept)
