"""Training speed: plain fp32 eager vs seglib's default path, same model, same run.

Prints images/second for the seed model at 200×200 in plain fp32 (contiguous, no autocast),
with autocast only, and with seglib's default (autocast + channels_last where it helps), with
the rounds interleaved so a busy machine slows all variants alike. Also prints the FLOPs of
the U-Net and the seed model.

    python bench/train.py [--arch seed] [--size 200] [--batch 16] [--rounds 3] [--threads N]

With ``--recipe IMAGES TRIMAPS TRUTH`` it compares training recipes instead: the quick
preset's 711-photo model trained plainly (cross-entropy only, no jitter, no flip averaging)
and with the quick preset's recipe, on the same labels and split, and prints each one's
training time and object IoU against the 0/255 truth masks in TRUTH (``<stem>.png``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from seglib.core.device import autocast_dtype, pick_device
from seglib.training.loop import train_step
from seglib.training.models import build_model, count_flops, seed_cnn, unet, use_channels_last


def make_step(arch: str, size: int, batch: int, device: torch.device, amp: bool, cl: bool):
    torch.manual_seed(0)
    model = build_model(arch).to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    x = (torch.rand(batch, 3, size, size) * 255).to(device)
    y = torch.randint(0, 3, (batch, size, size), device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        train_step(model, opt, x, y, device, amp)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="seed", choices=("seed", "unet"))
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--recipe", nargs=3, metavar=("IMAGES", "TRIMAPS", "TRUTH"),
                    help="compare the plain and the quick training recipe instead")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.recipe:
        compare_recipes(*map(Path, a.recipe), device=a.device)
        return
    dev = pick_device(a.device)
    seed_f, unet_f = count_flops(seed_cnn(), 200), count_flops(unet(), 200)
    print(f"FLOPs per 200×200 image: seed {seed_f / 1e9:.2f} G, unet {unet_f / 1e9:.2f} G "
          f"(unet/seed = {unet_f / seed_f:.3f})")
    default_cl = use_channels_last(dev)
    variants = {
        "fp32 eager": (False, False),
        f"autocast {autocast_dtype(dev)}": (True, False),
        f"default (autocast, channels_last={default_cl})": (True, default_cl),
    }
    steps = {name: make_step(a.arch, a.size, a.batch, dev, amp, cl)
             for name, (amp, cl) in variants.items()}
    for step in steps.values():  # warm-up: oneDNN/cuDNN pick kernels on first use
        step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(a.rounds):
        for name, step in steps.items():
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(a.steps):
                step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            rates[name].append(a.batch * a.steps / (time.perf_counter() - t0))
    print(f"{a.arch} at {a.size}×{a.size}, batch {a.batch}, device {dev.type}, "
          f"threads {torch.get_num_threads()}, median of {a.rounds} interleaved rounds:")
    base = statistics.median(rates["fp32 eager"])
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"  {name:<45} {med:7.1f} img/s  ({med / base:.2f}× fp32)")


def truth_iou(run: Path, images: Path, truth: Path, tta: bool) -> tuple[float, int]:
    """Mean object IoU of a run's predictions against the truth masks (``<stem>.png``)."""
    import cv2
    import numpy as np

    from seglib.core.images import list_images, read_image
    from seglib.masks.metrics import mask_iou
    from seglib.training.predict import load_model, predict_image

    model = load_model(run / "best.pt")
    photos = {p.stem: p for p in list_images(images)}
    ious = []
    for mask_path in sorted(truth.glob("*.png")):
        if mask_path.stem not in photos:
            continue
        t = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 0
        p = predict_image(model, read_image(photos[mask_path.stem]), tta=tta) == 1
        ious.append(mask_iou(p, t))
    return float(np.mean(ious)), len(ious)


def compare_recipes(images: Path, trimaps: Path, truth: Path, device: str = "auto") -> None:
    from seglib.training.data import load_dataset
    from seglib.training.loop import train_run
    from seglib.training.presets import get_preset

    quick = get_preset("quick")
    plain = quick.with_overrides(jitter=0.0, dice=0.0, border_weight=1.0, select="val_loss",
                                 tta=False)
    dataset = load_dataset(images, trimaps, quick.size)
    print(f"711-photo model, quick preset, {truth}: object IoU against the truth masks")
    with tempfile.TemporaryDirectory() as tmp:
        for name, p in (("plain", plain), ("quick recipe", quick)):
            r = train_run(images, trimaps, Path(tmp) / name, n=711, preset=p, dataset=dataset,
                          device=device, progress=False, log=lambda m: None)
            iou, n = truth_iou(r.out, images, truth, p.tta)
            print(f"  {name:<13} {r.seconds / 60:5.1f} min  val object IoU "
                  f"{r.metrics['iou_object']:.4f}  truth object IoU {iou:.4f} ({n} photos)",
                  flush=True)


if __name__ == "__main__":
    main()
