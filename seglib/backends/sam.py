"""SAM as a labeling backend: one photo in, a :class:`~seglib.masks.candidates.Candidates` set out.

Two modes:

``everything``
    The original way: ``segment_anything.SamAutomaticMaskGenerator`` decodes a grid of
    ``points_per_side**2`` point prompts, three masks each, upsamples every mask to the photo's
    size, filters them by predicted IoU and stability and removes duplicates. Slow on a CPU.

``prompt`` (default)
    The image is encoded once and a handful of prompts a photographer's framing suggests are
    decoded in one batched call: the centre point, four points around it, and two boxes over
    most of the frame (see :func:`prompt_layout`). All four decoder outputs of every prompt
    become candidates (7 prompts x 4 = 28 masks), each with SAM's predicted IoU and a
    stability score computed the way SAM computes it. Only these few masks are upsampled, and
    only from the low-resolution logits straight to the photo's size. The policy
    (``seglib.masks.policy``) then picks one.

The proposer records ``encode_seconds`` and ``decode_seconds`` of its last call, for the
notebooks' timing display, and ``decoded_masks``: how many masks the decoder produced and
were upsampled to the photo's size (``3 * points_per_side**2`` in ``everything`` mode, 28 in
``prompt`` mode).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seglib.core.device import autocast as autocast_ctx
from seglib.core.device import pick_device
from seglib.core.images import as_rgb
from seglib.masks.candidates import Candidates

MODES = ("prompt", "everything")
STABILITY_OFFSET = 1.0  # SAM's default stability_score_offset


@dataclass(frozen=True)
class Prompt:
    """One prompt in photo pixels: a foreground point (x, y) or a box (x0, y0, x1, y1)."""

    source: str
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None


def prompt_layout(height: int, width: int, spread: float = 0.15) -> list[Prompt]:
    """The prompts decoded in ``prompt`` mode for a photo of ``height`` x ``width``.

    A centre point, four points ``spread`` of the photo's size away from it (left, right,
    above, below), a box with a 5% margin and a box with a 15% margin.
    """
    cx, cy = width / 2.0, height / 2.0
    dx, dy = spread * width, spread * height
    points = [
        ("point:centre", (cx, cy)),
        ("point:left", (cx - dx, cy)),
        ("point:right", (cx + dx, cy)),
        ("point:above", (cx, cy - dy)),
        ("point:below", (cx, cy + dy)),
    ]
    prompts = [Prompt(name, point=p) for name, p in points]
    for margin in (0.05, 0.15):
        mx, my = margin * width, margin * height
        prompts.append(
            Prompt(f"box:{round(100 * (1 - 2 * margin))}", box=(mx, my, width - mx, height - my))
        )
    return prompts


def stability_score(logits: torch.Tensor, threshold: float = 0.0,
                    offset: float = STABILITY_OFFSET) -> torch.Tensor:
    """SAM's stability score: IoU of the masks thresholded at ``threshold +/- offset``.

    ``logits`` is (..., H, W); returns (...) float32 in [0, 1] (0 for an empty mask).
    """
    inter = (logits > threshold + offset).sum(dim=(-2, -1), dtype=torch.int64)
    union = (logits > threshold - offset).sum(dim=(-2, -1), dtype=torch.int64)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter,
                       dtype=torch.float32)).float()


class SamProposer:
    """Propose candidate masks for photos with a SAM model.

    ``model`` is a ``segment_anything`` ``Sam`` (see
    :func:`seglib.backends.sam_weights.load_sam`; any ``Sam`` works, also a small one with
    random weights). ``autocast`` runs the model in bf16 on CPUs with native bf16 and in
    fp16/bf16 on CUDA (see :func:`seglib.core.device.autocast`).
    ``everything_kwargs`` go to ``SamAutomaticMaskGenerator`` in ``everything`` mode.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        mode: str = "prompt",
        points_per_side: int = 32,
        autocast: bool = True,
        device: str | torch.device = "auto",
        everything_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from segment_anything import SamAutomaticMaskGenerator, SamPredictor

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose prompt or everything")
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.model = model.to(self.device).eval()
        self.mode = mode
        self.points_per_side = int(points_per_side)
        self.autocast = autocast
        self.encode_seconds = 0.0
        self.decode_seconds = 0.0
        self.decoded_masks = 0
        self.predictor = SamPredictor(self.model)
        self.generator = None
        if mode == "everything":
            self.generator = SamAutomaticMaskGenerator(
                self.model,
                points_per_side=self.points_per_side,
                output_mode="binary_mask",
                **(everything_kwargs or {}),
            )
            self.predictor = self.generator.predictor

    @property
    def precision(self) -> str:
        """``bf16``, ``fp16`` or ``fp32``: what the model actually runs in."""
        from seglib.core.device import precision_name

        return precision_name(self.device, self.autocast)

    @property
    def model_name(self) -> str:
        """``vit_b``, ``vit_l`` or ``vit_h`` by the image encoder's width (else ``sam``)."""
        from seglib.backends.sam_weights import _BY_EMBED_DIM

        width = getattr(getattr(self.model.image_encoder, "patch_embed", None), "proj", None)
        return _BY_EMBED_DIM.get(getattr(width, "out_channels", None), "sam")

    @property
    def description(self) -> str:
        """One line naming the model, mode and precision, e.g.
        ``vit_b (SAM), prompt mode, fp32 on cpu``."""
        return f"{self.model_name} (SAM), {self.mode} mode, {self.precision} on {self.device}"

    def __call__(self, image: np.ndarray) -> Candidates:
        image = as_rgb(image)
        with torch.inference_mode(), autocast_ctx(self.device, enabled=self.autocast):
            if self.mode == "everything":
                return self._everything(image)
            return self._prompt(image)

    # -- everything mode: the original way -------------------------------------------------
    def _everything(self, image: np.ndarray) -> Candidates:
        assert self.generator is not None
        predictor = self.generator.predictor
        encode = [0.0]
        decoded = [0]
        set_image, predict_torch = predictor.set_image, predictor.predict_torch

        def timed_set_image(*args: Any, **kwargs: Any) -> None:
            t = time.perf_counter()
            set_image(*args, **kwargs)
            encode[0] += time.perf_counter() - t

        def counted_predict_torch(*args: Any, **kwargs: Any) -> Any:
            masks, iou, low = predict_torch(*args, **kwargs)
            decoded[0] += masks.shape[0] * masks.shape[1]
            # The generator hands these to numpy, which has no bf16.
            return masks.float(), iou.float(), low.float()

        predictor.set_image = timed_set_image  # type: ignore[method-assign]
        predictor.predict_torch = counted_predict_torch  # type: ignore[method-assign]
        t0 = time.perf_counter()
        try:
            records = self.generator.generate(image)
        finally:
            del predictor.set_image, predictor.predict_torch
        total = time.perf_counter() - t0
        self.encode_seconds, self.decode_seconds = encode[0], total - encode[0]
        self.decoded_masks = decoded[0]
        # Highest predicted IoU first, so that the argmax of the stored (clipped to [0, 1])
        # scores is the original's argmax of the raw scores even when some exceed 1.
        raw = np.array([float(r["predicted_iou"]) for r in records], dtype=np.float64)
        order = np.argsort(-raw, kind="stable")
        iou = raw[order]
        h, w = image.shape[:2]
        masks = np.zeros((len(records), h, w), dtype=bool)
        for j, i in enumerate(order):
            masks[j] = records[i]["segmentation"]
        return Candidates(
            masks=masks,
            predicted_iou=np.clip(iou, 0.0, 1.0),
            stability=[float(records[i]["stability_score"]) for i in order],
            sources=["everything"] * len(records),
            backend="sam",
        )

    # -- prompt mode: encode once, decode a few prompts ------------------------------------
    def _prompt(self, image: np.ndarray) -> Candidates:
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        self.predictor.set_image(image)
        t1 = time.perf_counter()
        logits, iou = self._decode(prompt_layout(h, w))
        masks, stability = self._to_photo(logits, (h, w))
        t2 = time.perf_counter()
        self.encode_seconds, self.decode_seconds = t1 - t0, t2 - t1
        self.decoded_masks = masks.shape[0]
        prompts = prompt_layout(h, w)
        sources = [f"{p.source}/m{j}" for p in prompts for j in range(logits.shape[1])]
        return Candidates(
            masks=masks,
            predicted_iou=np.clip(iou.float().reshape(-1).cpu().numpy(), 0.0, 1.0),
            stability=stability,
            sources=sources,
            backend="sam",
        )

    def _decode(self, prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (P, 4, h, w) and predicted IoU (P, 4) of all prompts, one batch."""
        model, pred = self.model, self.predictor
        size = pred.original_size
        pe = model.prompt_encoder
        sparse, dense = [], []
        pts = [p.point for p in prompts if p.point is not None]
        boxes = [p.box for p in prompts if p.box is not None]
        if pts:
            coords = pred.transform.apply_coords(np.array(pts, dtype=np.float32)[:, None], size)
            coords_t = torch.as_tensor(coords, dtype=torch.float32, device=self.device)
            labels = torch.ones(coords_t.shape[:2], dtype=torch.int, device=self.device)
            s, d = pe(points=(coords_t, labels), boxes=None, masks=None)
            sparse.append(s)
            dense.append(d)
        if boxes:
            b = pred.transform.apply_boxes(np.array(boxes, dtype=np.float32), size)
            s, d = pe(points=None, boxes=torch.as_tensor(b, dtype=torch.float32,
                                                         device=self.device), masks=None)
            sparse.append(s)
            dense.append(d)
        # Points come first, then boxes: the same order as prompt_layout lists them.
        order = [p.point is not None for p in prompts]
        if order != sorted(order, reverse=True):
            raise ValueError("prompt_layout must list points before boxes")
        logits, iou = model.mask_decoder.predict_masks(
            image_embeddings=pred.features,
            image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=torch.cat(sparse),
            dense_prompt_embeddings=torch.cat(dense),
        )
        return logits.float(), iou.float()

    def _to_photo(self, logits: torch.Tensor, size: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Masks at the photo's size (:func:`logits_to_photo`) and stability scores (on the
        low-res logits that cover the photo), from the low-res logits (P, K, h, w)."""
        p, k, lh, lw = logits.shape
        flat = logits.reshape(p * k, lh, lw)
        img = self.model.image_encoder.img_size
        inner = tuple(self.predictor.input_size)
        thr = self.model.mask_threshold
        stability = stability_score(crop_padding(flat, inner, img), thr).cpu().numpy()
        return logits_to_photo(flat, size, inner, img, thr), stability


def crop_padding(logits: torch.Tensor, inner: tuple[int, int], img_size: int) -> torch.Tensor:
    """The part of low-res logits (..., h, w) that covers the photo: the model input is
    ``img_size`` square, the photo fills its top-left ``inner`` (height, width)."""
    lh, lw = logits.shape[-2:]
    ch = max(1, -(-inner[0] * lh // img_size))
    cw = max(1, -(-inner[1] * lw // img_size))
    return logits[..., :ch, :cw]


def logits_to_photo(logits: torch.Tensor, size: tuple[int, int], inner: tuple[int, int],
                    img_size: int, threshold: float = 0.0) -> np.ndarray:
    """Masks (N, H, W) at the photo's ``size`` from low-res logits (N, h, w), in one step.

    SAM upsamples the low-res logits to the ``img_size`` square model input, crops the
    padding (the photo fills its top-left ``inner``) and resizes to the photo. Here each
    photo pixel samples the low-res logits bilinearly at the very point that chain maps it
    to, a few masks at a time: no 1024 x 1024 intermediate, one interpolation, and the
    photo's own size (often 240 px) is all that is computed. One helper for SAM, SAM 2.1
    and the light SAMs.
    """
    n = logits.shape[0]
    h, w = size
    ih, iw = inner
    # Photo pixel centre -> position in the model input -> normalised [-1, 1] coordinate.
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (iw / w) / img_size * 2 - 1
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (ih / h) / img_size * 2 - 1
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)
    grid = grid.to(logits.device)[None]
    masks = np.empty((n, h, w), dtype=bool)
    step = max(1, int(4_000_000 // max(1, h * w)))  # bounded memory for big photos
    for i in range(0, n, step):
        part = logits[i : i + step, None].float()
        up = F.grid_sample(part, grid.expand(part.shape[0], -1, -1, -1), mode="bilinear",
                           padding_mode="border", align_corners=False)
        masks[i : i + step] = (up[:, 0] > threshold).cpu().numpy()
    return masks


def build_proposer(checkpoint: str | Path, *, model_type: str | None = None,
                   mode: str = "prompt", points_per_side: int = 32,
                   device: str = "auto") -> SamProposer:
    """Load a SAM checkpoint and wrap it as a proposer (the registry's builder)."""
    from seglib.backends.sam_weights import load_sam

    model = load_sam(checkpoint, model_type, device)
    return SamProposer(model, mode=mode, points_per_side=points_per_side, device=device)
