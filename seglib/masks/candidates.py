"""The candidate set: every labeling backend proposes masks in this one format.

A policy (``seglib.masks.policy``) later picks one of them, so picks can be redone or overridden
from the cached ``.npz`` without running a model again.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.files import write_bytes_atomic

REFINED_SOURCE = "grabcut:cnn"  # the source of the mask seglib.refine adds to a photo's candidates


@dataclass
class Candidates:
    """K candidate masks for one photo, with the scores their backend gave them.

    ``masks`` is (K, H, W) bool at the photo's size; ``predicted_iou`` and ``stability`` are
    (K,) float32 in [0, 1] (backends without such scores estimate them); ``sources`` says how
    each mask was proposed (e.g. ``"everything"``, ``"point:centre"``, ``"box"``,
    ``"grabcut:rect90"``). ``predicted_iou`` rates how clean a *segment* each mask is (SAM's
    meaning: a plain background is a very clean segment), not whether it is the object.
    ``object_score`` is, when the backend has one (opencv), its own (K,) estimate of each mask's
    IoU with the photo's object; the ``foreground`` policy then rates a mask's quality by it
    instead of ``predicted_iou`` and ``stability`` (see :func:`seglib.masks.policy.quality_inputs`).
    """

    masks: np.ndarray
    predicted_iou: np.ndarray
    stability: np.ndarray
    sources: list[str] = field(default_factory=list)
    backend: str = ""
    photo_hash: str = ""  # SHA-256 of the photo bytes they were proposed for ("" unknown)
    object_score: np.ndarray | None = None  # (K,) the backend's object-IoU estimate, or None

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be (K, H, W), got shape {self.masks.shape}")
        k = self.masks.shape[0]
        self.predicted_iou = np.asarray(self.predicted_iou, dtype=np.float32).reshape(k)
        self.stability = np.asarray(self.stability, dtype=np.float32).reshape(k)
        if self.object_score is not None:
            self.object_score = np.asarray(self.object_score, dtype=np.float32).reshape(k)
        if not self.sources:
            self.sources = [self.backend or "unknown"] * k
        if len(self.sources) != k:
            raise ValueError(f"{len(self.sources)} sources for {k} masks")

    def without(self, source: str) -> Candidates:
        """These candidates except those of ``source`` (e.g. refinement's ``grabcut:cnn``)."""
        keep = [i for i, s in enumerate(self.sources) if s != source]
        if len(keep) == len(self.sources):
            return self
        return Candidates(self.masks[keep], self.predicted_iou[keep], self.stability[keep],
                          [self.sources[i] for i in keep], self.backend, self.photo_hash,
                          object_score=None if self.object_score is None
                          else self.object_score[keep])

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        k, h, w = self.masks.shape
        extra = {} if self.object_score is None else {"object_score": self.object_score}
        np.savez_compressed(
            buf,
            **extra,
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
            with open(path, "rb") as f:
                if f.read(2) != b"PK":  # np.load would try it as a pickle and say so
                    raise _NotCandidates("not an .npz file (empty, cut short or another kind "
                                         "of file)")
            with np.load(path, allow_pickle=False) as z:
                shape = np.asarray(z["shape"])
                bits = np.asarray(z["bits"])
                if shape.shape != (3,) or shape.dtype.kind not in "iu" or (shape < 0).any():
                    raise _NotCandidates("no K, H, W shape array inside")
                k, h, w = (int(v) for v in shape)
                if bits.dtype != np.uint8 or bits.shape != (k, -(-h * w // 8)):
                    raise _NotCandidates("its masks do not match its shape array")
                masks = np.unpackbits(bits, axis=1, count=h * w).reshape(k, h, w).astype(bool)
                return cls(
                    masks=masks,
                    predicted_iou=z["predicted_iou"],
                    stability=z["stability"],
                    sources=[str(s) for s in z["sources"]],
                    backend=str(z["backend"]),
                    photo_hash=str(z["photo_hash"]) if "photo_hash" in z.files else "",
                    object_score=z["object_score"] if "object_score" in z.files else None,
                )
        except (OSError, KeyError, ValueError, TypeError, IndexError, EOFError, MemoryError,
                RuntimeError, NotImplementedError,  # zipfile: "encrypted", unknown compression
                zipfile.BadZipFile, zlib.error, _NotCandidates) as exc:
            raise SeglibError(
                f"{path}: not a seglib candidates file ({_reason(exc)}); delete it and label "
                "again"
            ) from None


class _NotCandidates(Exception):
    """A readable file that is not what :meth:`Candidates.save` writes."""


def _reason(exc: BaseException) -> str:
    """A short reason for a candidates file that cannot be loaded."""
    text = str(exc)
    if isinstance(exc, _NotCandidates):
        return text
    if "allow_pickle" in text or "Object arrays" in text:
        return "it holds Python objects, which are not loaded for safety"
    if isinstance(exc, KeyError):
        return f"no {text} array inside"
    if isinstance(exc, zipfile.BadZipFile | zlib.error | EOFError):
        return "damaged or cut short"
    if isinstance(exc, OSError):
        return exc.strerror or "cannot be read"
    return f"unexpected arrays: {type(exc).__name__}"
