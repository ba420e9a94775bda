"""SAM 2.1 and SlimSAM as labeling backends, run through ``transformers``.

:class:`HfSamProposer` wraps a ``transformers`` ``Sam2Model`` (SAM 2.1, family ``sam2``) or
``SamModel`` (SlimSAM, a pruned SAM-1 ViT-B, family ``sam``) and returns the same
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

The two families differ only in how a photo becomes the model input: SAM 2.1 resizes the
photo to a square, SAM-1 models resize the long side and pad (:meth:`HfSamProposer._input`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seglib.backends.sam import MODES, prompt_layout, stability_score
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


class HfSamProposer:
    """Propose candidate masks with a ``transformers`` SAM 2.1 or SAM-1-style model.

    ``family`` is ``"sam2"`` or ``"sam"``; ``backend`` is the name the candidates record.
    ``autocast`` as in :class:`~seglib.backends.sam.SamProposer` (bf16/fp16 on CUDA, bf16 on
    CPUs with native bf16, else fp32; :mod:`seglib.core.device`).
    """

    def __init__(self, model: torch.nn.Module, family: str, backend: str,
                 mode: str = "prompt", points_per_side: int = 32, autocast: bool = True,
                 device: str | torch.device = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose prompt or everything")
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.model = model.to(self.device).eval()
        self.family, self.backend, self.mode = family, backend, mode
        self.points_per_side = int(points_per_side)
        self.autocast = autocast
        self.size = int(_image_size(model))
        self.encode_seconds = self.decode_seconds = 0.0
        self.decoded_masks = 0

    @property
    def precision(self) -> str:
        from seglib.core.device import autocast_dtype

        dtype = autocast_dtype(self.device) if self.autocast else None
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")

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
        if self.family == "sam2":  # squashed to a square, no padding
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
        ``points`` (P, 2), one foreground point each, or ``boxes`` (P, 4)."""
        kw: dict[str, torch.Tensor] = {}
        if points is not None:
            kw["input_points"] = points[None, :, None].to(self.device)
            kw["input_labels"] = torch.ones(1, len(points), 1, dtype=torch.long,
                                            device=self.device)
        if boxes is not None:
            kw["input_boxes"] = boxes[None].to(self.device)
        out = self.model(image_embeddings=embeddings, multimask_output=True, **kw)
        return out.pred_masks[0].float(), out.iou_scores[0].float()

    def _prompt(self, embeddings: object, size: tuple[int, int], scale: tuple[float, float],
                inner: tuple[int, int]) -> Candidates:
        h, w = size
        prompts = prompt_layout(h, w)
        sx, sy = scale
        pts = torch.tensor([[p.point[0] * sx, p.point[1] * sy] for p in prompts if p.point])
        bxs = torch.tensor([[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]
                            for p in prompts if (b := p.box)])
        lp, ip = self._decode(embeddings, points=pts)
        lb, ib = self._decode(embeddings, boxes=bxs)
        logits, iou = torch.cat([lp, lb]), torch.cat([ip, ib])
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
        lh, lw = logits.shape[-2:]
        ch = max(1, -(-inner[0] * lh // self.size))
        cw = max(1, -(-inner[1] * lw // self.size))
        return logits[..., :ch, :cw]

    def _to_photo(self, logits: torch.Tensor, size: tuple[int, int],
                  inner: tuple[int, int]) -> np.ndarray:
        """Masks (N, H, W) at the photo's size from low-res logits (N, h, w), a few at a time:
        logits -> model input size -> crop the padding -> photo size, thresholded at 0."""
        h, w = size
        masks = np.empty((logits.shape[0], h, w), dtype=bool)
        step = max(1, int(4_000_000 // max(1, self.size * self.size)))
        for i in range(0, logits.shape[0], step):
            part = F.interpolate(logits[i : i + step, None], size=(self.size, self.size),
                                 mode="bilinear", align_corners=False)
            part = part[..., : inner[0], : inner[1]]
            part = F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False)
            masks[i : i + step] = (part[:, 0] > 0).cpu().numpy()
        return masks

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
    from seglib.backends.hf_weights import load_model

    dev = pick_device(device)
    model = load_model(checkpoint, family, dev)
    return HfSamProposer(model, family, backend, mode=mode, points_per_side=points_per_side,
                         device=dev)


def build_sam2(checkpoint: str | Path, *, model_type: str | None = None, mode: str = "prompt",
               points_per_side: int = 32, device: str = "auto") -> HfSamProposer:
    """Load a SAM 2.1 checkpoint folder and wrap it as a proposer (the registry's builder)."""
    return _build(checkpoint, "sam2", "sam2", mode, points_per_side, device)


def build_slimsam(checkpoint: str | Path, *, model_type: str | None = None,
                  mode: str = "prompt", points_per_side: int = 32,
                  device: str = "auto") -> HfSamProposer:
    """Load a SlimSAM checkpoint folder and wrap it as a proposer (the registry's builder)."""
    return _build(checkpoint, "sam", "slimsam", mode, points_per_side, device)
