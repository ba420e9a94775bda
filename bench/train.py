"""Training speed: plain fp32 eager vs seglib's default path, same model, same run.

Prints images/second for the seed model at 200×200 in plain fp32 (contiguous, no autocast),
with autocast only, and with seglib's default (autocast + channels_last where it helps), with
the rounds interleaved so a busy machine slows all variants alike. Also prints the FLOPs of
the U-Net and the seed model.

    python bench/train.py [--arch seed] [--size 200] [--batch 16] [--rounds 3] [--threads N]

With ``--limit`` it prints, for the quick preset's U-Net (128 px) and the seed model (200 px)
in fp32, images per second and the achieved GFLOP/s as a share of this CPU's fp32 peak, for
the old fp32 path (contiguous, one process of all threads), channels_last, and the course's
path on a laptop (channels_last, one one-thread process per core, as ``--workers``/``workers``
train): the physical limit side by side. The peak is cores × clock × 32 FLOPs per cycle (two
256-bit FMA units × 8 fp32 lanes × 2 FLOPs: AVX2; run it with ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`` on a CPU with AVX-512 to see an AVX2 laptop's kernels), the clock the
one ``/proc/cpuinfo`` reports; a training image costs three forward passes (forward, and a
backward of about twice the forward).

With ``--recipe IMAGES TRIMAPS TRUTH`` it compares training recipes instead: the quick
preset's 711-photo model trained plainly (cross-entropy only, no jitter, no flip averaging)
and with the quick preset's recipe, on the same labels and split, and prints each one's
training time and object IoU against the 0/255 truth masks in TRUTH (``<stem>.png``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing as mp
import os
import statistics
import subprocess
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
    ap.add_argument("--limit", action="store_true",
                    help="images/s and GFLOP/s vs the fp32 peak: old path, channels_last, "
                         "one one-thread process per core")
    ap.add_argument("--recipe", nargs=3, metavar=("IMAGES", "TRIMAPS", "TRUTH"),
                    help="compare the plain and the quick training recipe instead")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.recipe:
        compare_recipes(*map(Path, a.recipe), device=a.device)
        return
    if a.limit:
        physical_limit(a.rounds)
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


LIMIT_MODELS = (("unet", 128, 16, 4), ("seed", 200, 8, 1))  # arch, size, batch, steps


def cpu_peak_gflops(cores: int) -> tuple[float, float]:
    """(clock GHz, fp32 peak GFLOP/s) with AVX2 FMA: cores × clock × 32 FLOPs per cycle."""
    ghz = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                ghz = float(line.split(":")[1]) / 1000
                break
    return ghz, cores * ghz * 32


def _timed_steps(arch: str, size: int, batch: int, steps: int, cl: bool, threads: int,
                 start: object = None) -> float:
    """Seconds for ``steps`` fp32 training steps after one warm-up step (``start``: a
    barrier that the processes of one measurement pass together)."""
    torch.set_num_threads(threads)
    step = make_step(arch, size, batch, torch.device("cpu"), False, cl)
    step()
    if start is not None:
        start.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t0


def _one_process_rate(arch: str, size: int, batch: int, steps: int, *, cl: bool,
                      threads: int) -> float:
    return batch * steps / _timed_steps(arch, size, batch, steps, cl, threads)


def _process_rate(arch: str, size: int, batch: int, steps: int, procs: int) -> float:
    """Images/s of ``procs`` one-thread processes training at once (channels_last)."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(procs)
        with ctx.Pool(procs) as pool:
            secs = pool.starmap(_timed_steps, [(arch, size, batch, steps, True, 1, barrier)]
                                * procs)
    return procs * batch * steps / max(secs)


def physical_limit(rounds: int) -> None:
    """Images/s and GFLOP/s against the fp32 peak for the old and the new training paths."""
    cores = os.cpu_count() or 1
    ghz, peak = cpu_peak_gflops(cores)
    print(f"CPU: {cpu_name()}, {cores} cores at {ghz:.2f} GHz, torch kernels "
          f"{torch.backends.cpu.get_cpu_capability()}; fp32 peak {peak:.0f} GFLOP/s "
          f"= {cores} × {ghz:.2f} GHz × 32 FLOPs/cycle (AVX2 FMA)")
    for arch, size, batch, steps in LIMIT_MODELS:
        flops = 3 * count_flops(build_model(arch), size)  # forward + backward per image
        one = functools.partial(_one_process_rate, arch, size, batch, steps, threads=cores)
        paths = {
            f"fp32 contiguous, 1 process × {cores} threads (before)":
                functools.partial(one, cl=False),
            f"fp32 channels_last, 1 process × {cores} threads": functools.partial(one, cl=True),
            f"fp32 channels_last, {cores} processes × 1 thread (workers)":
                functools.partial(_process_rate, arch, size, batch, steps, cores),
        }
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(rounds):  # interleaved: a busy machine slows every path alike
            for name, rate in paths.items():
                rates[name].append(rate())
        print(f"{arch} at {size} px, batch {batch}, {flops / 1e9:.2f} GFLOP per training "
              f"image, median of {rounds} interleaved rounds:")
        base = statistics.median(next(iter(rates.values())))
        for name, r in rates.items():
            med = statistics.median(r)
            gflops = med * flops / 1e9
            print(f"  {name:<58} {med:7.2f} img/s {gflops:6.1f} GFLOP/s "
                  f"{gflops / peak:6.1%} of peak  ({med / base:.2f}×)", flush=True)


def cpu_name() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


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
