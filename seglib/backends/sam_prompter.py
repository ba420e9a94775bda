"""SAM, SAM 2.1, EdgeTAM and SlimSAM as :class:`~seglib.backends.prompts.Prompter` s.

The photo is encoded once (:meth:`set_photo`, cached by its pixels); each :meth:`mask` call
runs only the prompt encoder and the mask decoder on the cached embedding, and the chosen
low-resolution logits go straight to the photo's size
(:func:`seglib.backends.sam.logits_to_photo`). One positive point without a box asks the
decoder for its three masks and keeps the one with the highest predicted IoU (a single click
is ambiguous: shoe, sole, lace); any other prompt asks for one mask, as SAM's own notebooks
do. The model runs in the precision :mod:`seglib.core.device` picks.

A click runs on :data:`CLICK_THREADS` torch thread. The decoder is small (64 x 64 image
tokens): on a quiet 2-core CPU a second thread saves ~0.03 s, on a busy one each of its steps
waits for the other core (random-weight SAM ViT-B, fp32, shared 2-core EPYC, median / 90th
percentile of a later click: 0.09 / 0.10-0.20 s on one thread, 0.06-0.12 / 0.9-1.1 s on two;
docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np
import torch

from seglib.backends.hf_sam import SQUARE, HfSamProposer
from seglib.backends.prompts import PhotoCache, Prompts
from seglib.backends.sam import SamProposer, logits_to_photo
from seglib.core.device import at_most_threads
from seglib.core.device import autocast as autocast_ctx

CLICK_THREADS = 1  # torch threads of a click (prompt encoder, mask decoder, upscale)


def _multimask(prompts: Prompts) -> bool:
    return prompts.box is None and len(prompts.positive) + len(prompts.negative) == 1


def _points(prompts: Prompts) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (N, 2) float32 and labels (N,) (1 object, 0 background) of the points."""
    pts = [*prompts.positive, *prompts.negative]
    labels = [1] * len(prompts.positive) + [0] * len(prompts.negative)
    return np.array(pts, np.float32).reshape(-1, 2), np.array(labels, np.int64)


class _EncodedOnce:
    """The per-photo step of a SAM prompter: the photo's embedding, computed once per photo
    (the photo cached by its pixels) by the subclass's ``_encode``."""

    proposer: SamProposer | HfSamProposer
    cache: PhotoCache

    @property
    def photos_encoded(self) -> int:
        return self.cache.photos_set

    def set_photo(self, rgb: np.ndarray) -> None:
        if self.cache.changed(rgb):
            p = self.proposer
            with torch.inference_mode(), autocast_ctx(p.device, enabled=p.autocast):
                self._encode(self.cache.photo())

    def _encode(self, photo: np.ndarray) -> None:
        raise NotImplementedError


class SamPrompter(_EncodedOnce):
    """A ``segment_anything`` SAM answering prompts through its ``SamPredictor``."""

    backend = "sam"

    def __init__(self, proposer: SamProposer) -> None:
        self.proposer = proposer
        self.cache = PhotoCache()
        self.description = f"sam {proposer.model_name}, {proposer.precision} on {proposer.device}"

    def _encode(self, photo: np.ndarray) -> None:
        self.proposer.predictor.set_image(photo)

    def mask(self, prompts: Prompts) -> np.ndarray:
        photo = self.cache.photo()
        size = photo.shape[:2]
        prompts = prompts.checked(size)
        p = self.proposer
        pred, model, dev = p.predictor, p.model, p.device
        coords, labels = _points(prompts)
        points = box = None
        if len(coords):
            c = pred.transform.apply_coords(coords, size)
            points = (torch.as_tensor(c[None], dtype=torch.float32, device=dev),
                      torch.as_tensor(labels[None], dtype=torch.int, device=dev))
        if prompts.box is not None:
            b = pred.transform.apply_boxes(np.array([prompts.box], np.float32), size)
            box = torch.as_tensor(b, dtype=torch.float32, device=dev)
        with (torch.inference_mode(), autocast_ctx(dev, enabled=p.autocast),
              at_most_threads(CLICK_THREADS)):
            sparse, dense = model.prompt_encoder(points=points, boxes=box, masks=None)
            logits, iou = model.mask_decoder(
                image_embeddings=pred.features, image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=_multimask(prompts))
            best = int(iou[0].float().argmax())
            return logits_to_photo(logits[0, best:best + 1].float(), size,
                                   tuple(pred.input_size), model.image_encoder.img_size,
                                   model.mask_threshold)[0]


class HfSamPrompter(_EncodedOnce):
    """A ``transformers`` SAM 2.1 / EdgeTAM / SlimSAM answering prompts: the image
    embeddings once per photo (``get_image_embeddings``), then the prompt encoder and the
    mask decoder per call."""

    def __init__(self, proposer: HfSamProposer) -> None:
        self.proposer = proposer
        self.backend = proposer.backend
        self.cache = PhotoCache()
        self.description = (f"{proposer.backend} {proposer.model_name}, {proposer.precision} "
                            f"on {proposer.device}")
        self._embeddings: object = None
        self._scale: tuple[float, float] = (1.0, 1.0)
        self._inner: tuple[int, int] = (proposer.size, proposer.size)

    def _encode(self, photo: np.ndarray) -> None:
        pixels, self._scale, self._inner = self.proposer._input(photo)
        self._embeddings = self.proposer.model.get_image_embeddings(pixels)

    def mask(self, prompts: Prompts) -> np.ndarray:
        photo = self.cache.photo()
        size = photo.shape[:2]
        prompts = prompts.checked(size).scaled(*self._scale)
        p = self.proposer
        m, dev = p.model, p.device
        coords, labels = _points(prompts)
        kw: dict[str, object] = dict(input_points=None, input_labels=None, input_boxes=None,
                                     input_masks=None)
        if len(coords):
            kw["input_points"] = torch.from_numpy(coords)[None, None].to(dev)
            kw["input_labels"] = torch.from_numpy(labels)[None, None].to(dev)
        if prompts.box is not None:
            kw["input_boxes"] = torch.tensor([[prompts.box]], dtype=torch.float32, device=dev)
        embeddings = self._embeddings
        extra: dict[str, object] = {}
        if p.family in SQUARE:  # high-resolution features, then the embedding
            extra["high_resolution_features"] = embeddings[:-1]  # type: ignore[index]
            embeddings = embeddings[-1]  # type: ignore[index]
        with (torch.inference_mode(), autocast_ctx(dev, enabled=p.autocast),
              at_most_threads(CLICK_THREADS)):
            sparse, dense = m.prompt_encoder(**kw)
            out = m.mask_decoder(image_embeddings=embeddings,
                                 image_positional_embeddings=m.get_image_wide_positional_embeddings(),
                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                 multimask_output=_multimask(prompts), **extra)
            logits, iou = out[0][0, 0].float(), out[1][0, 0].float()
            best = int(iou.argmax())
            return p._to_photo(logits[best:best + 1], size, self._inner)[0]

