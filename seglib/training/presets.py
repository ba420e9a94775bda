"""Training presets: how big, how long and how to optimise.

- ``smoke``: seconds, for tests.
- ``demo``: the embedded 48-photo synthetic sample, five models within a few minutes on a CPU.
- ``quick``: the five standard models on ~800 real photos in well under half an hour on a
  2-core CPU (a small U-Net at 128×128 with bf16 autocast where the CPU has it). Machine
  labels are noisy: random zoom/shift/colour (``jitter``) keeps the U-Net from copying each
  label's mistakes, a soft Dice term on the object class sharpens it, and predictions average
  the photo and its mirror image (see docs/benchmarks.md).
- ``full``: the original protocol (seed model, 200×200, 100 epochs, batch 32, RMSprop), for a
  GPU.

Small subsets see few optimizer steps per epoch, so a preset can ask for a number of training
images (``images_per_run``): the epochs then grow for small subsets, between ``min_epochs`` and
``max_epochs``. With ``growth`` > 0 smaller subsets get fewer images, ``images_per_run ×
(n / 711) ** growth`` (the original gave every subset the same epochs: growth 1; the same
images for all: growth 0). With ``images_per_run=0`` every subset trains ``epochs`` epochs.

``repeats``: each standard model is trained this many times on the same split and subset with
different seeds (weights, batch order, augmentation), so notebook 04 can draw every point of
the learning curve as a mean with a 95 % interval (3 in ``demo`` and ``quick``, 1 in ``smoke``
and ``full``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace

from seglib.core.errors import SeglibError


@dataclass(frozen=True)
class Preset:
    """One training recipe (plain data; ``asdict`` goes into the checkpoint config)."""

    name: str
    size: int
    epochs: int
    batch: int
    arch: str
    lr: float
    optimizer: str  # "adam" or "rmsprop"
    flips: bool
    images_per_run: int = 0
    growth: float = 0.0  # images_per_run × (n_train / 711) ** growth for smaller subsets
    min_epochs: int = 1
    max_epochs: int = 1000
    max_validations: int = 40  # validate at most this many times per run (every k epochs)
    schedule: str = "constant"  # learning rate: "constant" or "cosine" (decays to 0)
    width: int = 8  # U-Net channels at the first level (doubling at each of 4 levels)
    jitter: float = 0.0  # random zoom/shift/colour strength (0: none), see data.jitter_batch
    border_weight: float = 1.0  # cross-entropy weight of the border class (0: ignored)
    dice: float = 0.0  # weight of a soft Dice loss on the object class added to the loss
    confidence_weight: float = 0.0  # photo loss weight 1 - c·(1 - label confidence); 0: off
    select: str = "val_loss"  # best.pt = lowest "val_loss" or highest "iou_object"
    tta: bool = False  # predict: average the logits of the photo and its mirror image
    repeats: int = 1  # train_standard trains each model this many times (seeds 0, 1, ...)

    def epochs_for(self, n_train: int) -> int:
        """Epochs for a training set of ``n_train`` photos."""
        if self.images_per_run <= 0 or n_train <= 0:
            return self.epochs
        images = self.images_per_run * min(1.0, n_train / 711) ** self.growth
        e = math.ceil(images / n_train)
        return max(self.min_epochs, min(self.max_epochs, e))

    def lr_at(self, epoch: int, epochs: int) -> float:
        """Learning rate for 0-based ``epoch`` of ``epochs`` (cosine: half a cosine to 0)."""
        if self.schedule == "cosine" and epochs > 1:
            return self.lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        return self.lr

    def validate_every(self, epochs: int) -> int:
        """Validate every k epochs so a run validates at most ``max_validations`` times."""
        return max(1, math.ceil(epochs / max(1, self.max_validations)))

    def with_overrides(self, **kw: object) -> Preset:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        from seglib.core.settings import SETTINGS, check

        kw = {k: (check(k, v) if k in SETTINGS else v) for k, v in kw.items() if v is not None}
        if "epochs" in kw:  # an explicit epoch count wins over the per-subset rule
            kw.setdefault("images_per_run", 0)
        return replace(self, **kw)

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "smoke": Preset("smoke", size=32, epochs=2, batch=4, arch="unet", lr=3e-3,
                    optimizer="adam", flips=True),
    "demo": Preset("demo", size=96, epochs=30, batch=8, arch="unet", lr=3e-3,
                   optimizer="adam", flips=True, images_per_run=600, min_epochs=15,
                   max_epochs=120, repeats=3),
    "quick": Preset("quick", size=128, epochs=12, batch=16, arch="unet", lr=3e-3,
                    optimizer="adam", flips=True, images_per_run=8000, growth=0.5,
                    min_epochs=8, max_epochs=120, max_validations=20, schedule="cosine",
                    jitter=0.2, dice=1.0, tta=True, repeats=3),
    "full": Preset("full", size=200, epochs=100, batch=32, arch="seed", lr=1e-3,
                   optimizer="rmsprop", flips=False),
}


def get_preset(name: str) -> Preset:
    """A preset by name, or a one-line error listing the names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SeglibError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def repeat_name(name: str, repeat: int) -> str:
    """The run name of a model's ``repeat`` (1-based): ``"711"``, then ``"711_r2"``, ..."""
    return name if repeat <= 1 else f"{name}_r{repeat}"


def model_of_run(run: str) -> str:
    """The model a run name belongs to (the inverse of :func:`repeat_name`): ``"711_r2"``
    -> ``"711"``."""
    return re.sub(r"_r\d+$", "", run)
