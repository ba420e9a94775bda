"""The candidate set: every labeling backend proposes masks in this one format.

A policy (``seglib.policy``) later picks one of them, so picks can be redone or overridden
from the cached ``.npz`` without running a model again.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seglib.errors import SeglibError
from seglib.io import write_bytes_atomic


@dataclass
class Candidates:
    """K candidate masks for one photo, with the scores their backend gave them.

    ``masks`` is (K, H, W) bool at the photo's size; ``predicted_iou`` and ``stability`` are
    (K,) float32 in [0, 1] (backends without such scores estimate them); ``sources`` says how
    each mask was proposed (e.g. ``"everything"``, ``"point:centre"``, ``"box"``,
    ``"grabcut:rect90"``).
    """

    masks: np.ndarray
    predicted_iou: np.ndarray
    stability: np.ndarray
    sources: list[str] = field(default_factory=list)
    backend: str = ""
    photo_hash: str = ""  # SHA-256 of the photo bytes they were proposed for ("" unknown)

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be (K, H, W), got shape {self.masks.shape}")
        k = self.masks.shape[0]
        self.predicted_iou = np.asarray(self.predicted_iou, dtype=np.float32).reshape(k)
        self.stability = np.asarray(self.stability, dtype=np.float32).reshape(k)
        if not self.sources:
            self.sources = [self.backend or "unknown"] * k
        if len(self.sources) != k:
            raise ValueError(f"{len(self.sources)} sources for {k} masks")

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        k, h, w = self.masks.shape
        np.savez_compressed(
            buf,
            bits=np.packbits(self.masks.reshape(k, h * w), axis=1),
            shape=np.array([k, h, w], dtype=np.int64),
            predicted_iou=self.predicted_iou,
            stability=self.stability,
            sources=np.array(self.sources, dtype=str),
            backend=np.array(self.backend),
            photo_hash=np.array(self.photo_hash),
        )
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (.npz) atomically."""
        return write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> Candidates:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                k, h, w = (int(v) for v in z["shape"])
                bits = np.unpackbits(z["bits"], axis=1, count=h * w)
                return cls(
                    masks=bits.reshape(k, h, w).astype(bool),
                    predicted_iou=z["predicted_iou"],
                    stability=z["stability"],
                    sources=[str(s) for s in z["sources"]],
                    backend=str(z["backend"]),
                    photo_hash=str(z["photo_hash"]) if "photo_hash" in z.files else "",
                )
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise SeglibError(
                f"{path}: not a seglib candidates file ({exc}); delete it and label again"
            ) from None
