"""Segmentation CNNs: the original Keras model ported to PyTorch, and a small U-Net.

Every model takes a float N×3×H×W batch of RGB pixel values in 0..255 (the rescaling is part
of the model, as in the original) and returns N×C×H×W logits; softmax over C gives the class
probabilities (class 0 object, 1 background, 2 border, i.e. trimap label minus one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("unet", "seed")


class SameConv2d(nn.Conv2d):
    """Keras ``Conv2D(padding="same")``: for stride 2 the extra pad goes bottom/right."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(cin, cout, 3, stride=stride, padding=1 if stride == 1 else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        h, w = x.shape[-2:]
        ph = max((-(-h // 2) - 1) * 2 + 3 - h, 0)
        pw = max((-(-w // 2) - 1) * 2 + 3 - w, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """Keras ``Conv2DTranspose(padding="same")``: output = input × stride.

    TensorFlow crops the full transposed output ((n-1)·s + 3) from the bottom/right first, so
    for stride 2 the first row/column is kept and the last one dropped.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(cin, cout, 3, stride=stride, padding=1 if stride == 1 else 0)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        y = super().forward(x)
        if self.stride[0] == 1:
            return y
        h, w = x.shape[-2:]
        return y[..., : 2 * h, : 2 * w]


class SeedCNN(nn.Module):
    """The original project's Keras model (input 200×200 RGB), layer for layer."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        enc = [(3, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2)]
        dec = [(256, 256, 1), (256, 256, 2), (256, 128, 1), (128, 128, 2), (128, 64, 1),
               (64, 64, 2)]
        self.encoder = nn.ModuleList(SameConv2d(i, o, s) for i, o, s in enc)
        self.decoder = nn.ModuleList(SameConvTranspose2d(i, o, s) for i, o, s in dec)
        self.head = SameConv2d(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = x * (1.0 / 255.0)
        for layer in self.encoder:
            x = F.relu(layer(x))
        for layer in self.decoder:
            x = F.relu(layer(x))
        x = self.head(x)
        if x.shape[-2:] != size:  # sizes not divisible by 8 come back a few pixels larger
            x = x[..., : size[0], : size[1]]
        return x


def seed_cnn(num_classes: int = 3) -> SeedCNN:
    """The original model: 5 strided/plain 3×3 convs down, 6 transposed convs up, softmax head.

    Returns logits; the Keras model's final softmax is applied by the loss / at prediction.
    """
    return SeedCNN(num_classes)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A small U-Net: ``depth`` max-pool levels, channels doubling from ``base``, skip
    connections by concatenation, bilinear upsampling."""

    def __init__(self, num_classes: int = 3, base: int = 8, depth: int = 4) -> None:
        super().__init__()
        chans = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(3, chans[0])])
        self.down.extend(_block(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            _block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(chans[0], num_classes, 1)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def unet(num_classes: int = 3, base: int = 8, depth: int = 4) -> UNet:
    """The default model: a small U-Net (about a quarter of the seed model's FLOPs or less)."""
    return UNet(num_classes, base, depth)


def build_model(arch: str, num_classes: int = 3, width: int | None = None) -> nn.Module:
    """``unet`` or ``seed`` by name (the name stored in a checkpoint's config).

    ``width`` is the U-Net's first-level channel count (default 8; the seed model has none).
    """
    if arch == "seed":
        return seed_cnn(num_classes)
    if arch == "unet":
        return unet(num_classes, base=width or 8)
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")


def use_channels_last(device: torch.device) -> bool:
    """channels_last (NHWC) on CUDA and the CPU, in bf16 and in fp32: oneDNN's NHWC
    convolutions train the U-Net 1.1-1.4x faster in fp32 too with torch 2.15 on AVX2 kernels
    (``bench/train.py``, docs/benchmarks.md); MPS keeps the default layout."""
    return device.type in ("cuda", "cpu")


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, size: int | tuple[int, int] = 200) -> int:
    """Forward FLOPs for one size×size RGB image (multiply-adds count as 2).

    Counted on a copy of the model on the ``meta`` device: shapes only, no arithmetic.
    """
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    h, w = (size, size) if isinstance(size, int) else size
    meta = copy.deepcopy(model).to("meta").eval()
    x = torch.zeros(1, 3, h, w, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta(x)
    return int(counter.get_total_flops())
