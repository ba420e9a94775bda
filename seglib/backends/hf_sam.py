"""SAM 2.1, EdgeTAM and SlimSAM as labeling backends, run through ``transformers``.

:class:`HfSamProposer` wraps a ``transformers`` ``Sam2Model`` (SAM 2.1, family ``sam2``),
``EdgeTamModel`` (EdgeTAM: SAM 2's prompt encoder and mask decoder on a RepViT-M1 image
encoder, no global attention; family ``edgetam``) or ``SamModel`` (SlimSAM, a pruned SAM-1
ViT-B, family ``sam``) and returns the same
:class:`~seglib.masks.candidates.Candidates` as :class:`seglib.backends.sam.SamProposer`:

``prompt`` (default)
    The image is encoded once; the same prompts as the SAM backend
    (:func:`seglib.backends.sam.prompt_layout`: five points, two boxes) are decoded, three
    masks each (21 candidates), scored by the model's own predicted IoU and by SAM's
    stability score on the low-resolution logits.

``everything``
    The grid logic of SAM's automatic mask generator: ``points_per_side**2`` single-point
    prompts decoded in batches, three masks each, kept when predicted IoU and stability pass
    SAM's thresholds, duplicates removed by box NMS, highest predicted IoU first.

The families differ only in how a photo becomes the model input: SAM 2.1 and EdgeTAM resize
the photo to a square, SAM-1 models resize the long side and pad
(:meth:`HfSamProposer._input`); SAM 2.1 and EdgeTAM also hand the decoder high-resolution
features beside the image embedding.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seglib.backends.sam import (
    MODES,
    crop_padding,
    logits_to_photo,
    prompt_layout,
    stability_score,
)
from seglib.core.device import autocast as autocast_ctx
from seglib.core.device import pick_device
from seglib.core.images import as_rgb
from seglib.masks.candidates import Candidates

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
PRED_IOU_THRESH = 0.88  # SAM's automatic mask generator defaults
STABILITY_THRESH = 0.95
BOX_NMS_THRESH = 0.7
GRID_BATCH = 64
SQUARE = ("sam2", "edgetam")  # families whose input is the photo squashed to a square


class HfSamProposer:
    """Propose candidate masks with a ``transformers`` SAM 2.1 or SAM-1-style model.

    ``family`` is ``"sam2"``, ``"edgetam"`` or ``"sam"``; ``backend`` is the name the
    candidates record; ``model_name`` (e.g. ``sam2.1_tiny``) is said in :attr:`description`.
    ``autocast`` as in :class:`~seglib.backends.sam.SamProposer` (bf16/fp16 on CUDA, bf16 on
    CPUs with native bf16, else fp32; :mod:`seglib.core.device`).
    """

    def __init__(self, model: torch.nn.Module, family: str, backend: str,
                 mode: str = "prompt", points_per_side: int = 32, autocast: bool = True,
                 device: str | torch.device = "auto", model_name: str = "") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose prompt or everything")
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.model = model.to(self.device).eval()
        self.family, self.backend, self.mode = family, backend, mode
        self.model_name = model_name or family
        self.points_per_side = int(points_per_side)
        self.autocast = autocast
        self.size = int(_image_size(model))
        self.encode_seconds = self.decode_seconds = 0.0
        self.decoded_masks = 0

    @property
    def precision(self) -> str:
        from seglib.core.device import precision_name

        return precision_name(self.device, self.autocast)

    @property
    def description(self) -> str:
        """One line naming the model, mode and precision, e.g.
        ``sam2.1_tiny (SAM 2.1, transformers), prompt mode, fp32 on cpu``."""
        title = {"sam2": "SAM 2.1", "edgetam": "EdgeTAM", "sam": "SlimSAM"}[self.family]
        return (f"{self.model_name} ({title}, transformers), {self.mode} mode, "
                f"{self.precision} on {self.device}")

    def __call__(self, image: np.ndarray) -> Candidates:
        image = as_rgb(image)
        with torch.inference_mode(), autocast_ctx(self.device, enabled=self.autocast):
            t0 = time.perf_counter()
            pixels, scale, inner = self._input(image)
            embeddings = self.model.get_image_embeddings(pixels)
            t1 = time.perf_counter()
            if self.mode == "everything":
                out = self._everything(embeddings, image.shape[:2], scale, inner)
            else:
                out = self._prompt(embeddings, image.shape[:2], scale, inner)
            self.encode_seconds, self.decode_seconds = t1 - t0, time.perf_counter() - t1
        self.decoded_masks = len(out)
        return out

    def _input(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[float, float],
                                                 tuple[int, int]]:
        """The normalised model input, the photo-to-input scale (x, y) and the input's
        inner size that holds the photo (the rest is padding)."""
        h, w = image.shape[:2]
        s = self.size
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
        if self.family in SQUARE:  # squashed to a square, no padding
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False,
                              antialias=True)
            return ((x - MEAN) / STD).to(self.device), (s / w, s / h), (s, s)
        k = s / max(h, w)
        ih, iw = max(1, round(h * k)), max(1, round(w * k))
        x = F.interpolate(x, size=(ih, iw), mode="bilinear", align_corners=False,
                          antialias=True)
        x = F.pad((x - MEAN) / STD, (0, s - iw, 0, s - ih))
        return x.to(self.device), (iw / w, ih / h), (ih, iw)

    def _decode(self, embeddings: object, points: torch.Tensor | None = None,
                boxes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res logits (P, 3, h, w) and predicted IoU (P, 3) of P prompts (input pixels):
        ``points`` (Pp, 2), one foreground point each, then ``boxes`` (Pb, 4), P = Pp + Pb.

        Each kind is embedded by the prompt encoder on its own (as the model's ``forward``
        would), and all P prompts go through the mask decoder in one batch: a point prompt
        and a box prompt are both two tokens (a point and a padding point; two corners), so
        they stack, and the image-wide positional embedding is computed once."""
        m, dev = self.model, self.device
        sparse, dense = [], None
        if points is not None and len(points):
            labels = torch.ones(1, len(points), 1, dtype=torch.long, device=dev)
            s, dense = m.prompt_encoder(input_points=points[None, :, None].to(dev),
                                        input_labels=labels, input_boxes=None,
                                        input_masks=None)
            sparse.append(s)
        if boxes is not None and len(boxes):
            s, dense = m.prompt_encoder(input_points=None, input_labels=None,
                                        input_boxes=boxes[None].to(dev), input_masks=None)
            sparse.append(s)
        if len({s.shape[2] for s in sparse}) > 1:  # another prompt encoder: one call each
            parts = [self._decode(embeddings, points=points),
                     self._decode(embeddings, boxes=boxes)]
            return torch.cat([q[0] for q in parts]), torch.cat([q[1] for q in parts])
        kw: dict[str, object] = {}
        if self.family in SQUARE:  # a list: high-resolution features, then the embedding
            kw["high_resolution_features"] = embeddings[:-1]  # type: ignore[index]
            embeddings = embeddings[-1]  # type: ignore[index]
        out = m.mask_decoder(image_embeddings=embeddings,
                             image_positional_embeddings=m.get_image_wide_positional_embeddings(),
                             sparse_prompt_embeddings=torch.cat(sparse, dim=1),
                             dense_prompt_embeddings=dense, multimask_output=True, **kw)
        return out[0][0].float(), out[1][0].float()

    def _prompt(self, embeddings: object, size: tuple[int, int], scale: tuple[float, float],
                inner: tuple[int, int]) -> Candidates:
        h, w = size
        prompts = prompt_layout(h, w)
        sx, sy = scale
        pts = torch.tensor([[p.point[0] * sx, p.point[1] * sy] for p in prompts if p.point])
        bxs = torch.tensor([[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]
                            for p in prompts if (b := p.box)])
        if [p.point is not None for p in prompts] != [True] * len(pts) + [False] * len(bxs):
            raise ValueError("prompt_layout must list points before boxes")
        logits, iou = self._decode(embeddings, points=pts, boxes=bxs)
        p, k = logits.shape[:2]
        flat = logits.reshape(p * k, *logits.shape[2:])
        stability = stability_score(self._crop(flat, inner)).cpu().numpy()
        return Candidates(
            masks=self._to_photo(flat, size, inner),
            predicted_iou=np.clip(iou.reshape(-1).cpu().numpy(), 0.0, 1.0),
            stability=stability,
            sources=[f"{q.source}/m{j}" for q in prompts for j in range(k)],
            backend=self.backend,
        )

    def _crop(self, logits: torch.Tensor, inner: tuple[int, int]) -> torch.Tensor:
        """The part of low-res logits (N, h, w) that covers the photo (no padding)."""
        return crop_padding(logits, inner, self.size)

    def _to_photo(self, logits: torch.Tensor, size: tuple[int, int],
                  inner: tuple[int, int]) -> np.ndarray:
        """Masks (N, H, W) at the photo's size from low-res logits (N, h, w), thresholded
        at 0, in one bilinear step (:func:`seglib.backends.sam.logits_to_photo`)."""
        return logits_to_photo(logits, size, inner, self.size)

    def _everything(self, embeddings: object, size: tuple[int, int],
                    scale: tuple[float, float], inner: tuple[int, int]) -> Candidates:
        from torchvision.ops import batched_nms

        h, w = size
        n = self.points_per_side
        grid = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        ys, xs = torch.meshgrid(grid * h * scale[1], grid * w * scale[0], indexing="ij")
        points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
        kept_logits, kept_iou, kept_stab = [], [], []
        for i in range(0, len(points), GRID_BATCH):
            logits, iou = self._decode(embeddings, points=points[i : i + GRID_BATCH])
            logits, iou = logits.reshape(-1, *logits.shape[2:]), iou.reshape(-1)
            stab = stability_score(self._crop(logits, inner))
            keep = (iou > PRED_IOU_THRESH) & (stab >= STABILITY_THRESH)
            kept_logits.append(logits[keep])
            kept_iou.append(iou[keep])
            kept_stab.append(stab[keep])
        logits, iou, stab = torch.cat(kept_logits), torch.cat(kept_iou), torch.cat(kept_stab)
        if len(logits):
            keep = batched_nms(_boxes(self._crop(logits, inner) > 0), iou,
                               torch.zeros_like(iou), BOX_NMS_THRESH)  # highest IoU first
            logits, iou, stab = logits[keep], iou[keep], stab[keep]
        masks = (self._to_photo(logits, size, inner) if len(logits)
                 else np.zeros((0, h, w), dtype=bool))
        return Candidates(masks=masks, predicted_iou=np.clip(iou.cpu().numpy(), 0.0, 1.0),
                          stability=stab.cpu().numpy(), sources=["everything"] * len(masks),
                          backend=self.backend)


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    """Boxes (N, 4) x0, y0, x1, y1 of masks (N, h, w); an empty mask gets a zero box."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4)
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    ar_h, ar_w = torch.arange(h, device=masks.device), torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ar_h, h).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values
    x0 = torch.where(cols, ar_w, w).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values
    empty = ~rows.any(dim=1)
    box = torch.stack([x0, y0, x1 + 1, y1 + 1], dim=1).float()
    box[empty] = 0
    return box


def _image_size(model: torch.nn.Module) -> int:
    size = model.config.prompt_encoder_config.image_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _build(checkpoint: str | Path, family: str, backend: str, mode: str, points_per_side: int,
           device: str) -> HfSamProposer:
    from seglib.backends.hf_weights import load_model, model_name

    dev = pick_device(device)
    model = load_model(checkpoint, family, dev)
    return HfSamProposer(model, family, backend, mode=mode, points_per_side=points_per_side,
                         device=dev, model_name=model_name(checkpoint, family))


def build_sam2(checkpoint: str | Path, *, model_type: str | None = None, mode: str = "prompt",
               points_per_side: int = 32, device: str = "auto") -> HfSamProposer:
    """Load a SAM 2.1 checkpoint folder and wrap it as a proposer (the registry's builder)."""
    return _build(checkpoint, "sam2", "sam2", mode, points_per_side, device)


def build_edgetam(checkpoint: str | Path, *, model_type: str | None = None,
                  mode: str = "prompt", points_per_side: int = 32,
                  device: str = "auto") -> HfSamProposer:
    """Load an EdgeTAM checkpoint folder and wrap it as a proposer (the registry's builder)."""
    return _build(checkpoint, "edgetam", "edgetam", mode, points_per_side, device)


def build_slimsam(checkpoint: str | Path, *, model_type: str | None = None,
                  mode: str = "prompt", points_per_side: int = 32,
                  device: str = "auto") -> HfSamProposer:
    """Load a SlimSAM checkpoint folder and wrap it as a proposer (the registry's builder)."""
    return _build(checkpoint, "sam", "slimsam", mode, points_per_side, device)
