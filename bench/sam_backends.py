"""SAM 2.1-tiny, EdgeTAM and SlimSAM against SAM ViT-B: seconds per photo and peak memory.

    python bench/sam_backends.py [--n 2] [--points-per-side 32] [--threads N]
                                 [--no-everything | --everything vit_b sam2.1_tiny]

Every model is the real architecture with random weights (no checkpoint can be downloaded
here): ViT-B from segment_anything, SAM 2.1 hiera-tiny (transformers' default Sam2Config) and
EdgeTAM (transformers' EdgeTamModel on timm's RepViT-M1, as yonigozlan/EdgeTAM-hf) and
SlimSAM-77's shape (a ViT-B pruned to width 168, MLP 696: transformers' SamModel). Speed does
not depend on the weights; quality cannot be measured here (no checkpoint). Each model runs
in its own process (so peak memory is its own: max resident set size), on the same photo
(1024 x 768); prompt mode prints the encoder and the decoder separately (the first call a
warm-up), everything mode (``--points-per-side`` squared points) SAM 2.1-tiny and ViT-B
(no warm-up: a call takes minutes, a warm-up would save under a second). Ratios are against
ViT-B's prompt mode and, for everything mode, also ViT-B's everything mode (targets:
SAM 2.1-tiny <= 0.3x, the light model <= 0.15x).
Run with SEGLIB_PRECISION=fp32 to compare in fp32 on a CPU with native bf16.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch

MODELS = ("vit_b", "sam2.1_tiny", "edgetam", "slimsam_77")
PHOTOS = 711  # the course's full set


def build(name: str, mode: str, points_per_side: int):  # noqa: ANN201
    torch.manual_seed(0)
    if name == "vit_b":
        from segment_anything import sam_model_registry

        from seglib.backends.sam import SamProposer

        return SamProposer(sam_model_registry["vit_b"](checkpoint=None), mode=mode,
                           points_per_side=points_per_side, device="cpu")
    from transformers import Sam2Config, Sam2Model, SamConfig, SamModel

    from seglib.backends.hf_sam import HfSamProposer

    if name == "sam2.1_tiny":
        return HfSamProposer(Sam2Model(Sam2Config()), "sam2", "sam2", mode=mode,
                             points_per_side=points_per_side, device="cpu")
    if name == "edgetam":
        from transformers import EdgeTamConfig, EdgeTamModel, TimmWrapperConfig

        # transformers' default EdgeTamConfig misspells the backbone ("archirecture") and so
        # builds a ResNet-50; the published checkpoint's config names RepViT-M1.
        backbone = TimmWrapperConfig(architecture="repvit_m1.dist_in1k", do_pooling=False,
                                     model_args=dict(in_chans=3, features_only=True,
                                                     out_indices=[0, 1, 2, 3]))
        model = EdgeTamModel(EdgeTamConfig(vision_config=dict(backbone_config=backbone)))
        return HfSamProposer(model, "edgetam", "edgetam", mode=mode,
                             points_per_side=points_per_side, device="cpu")
    vision = dict(hidden_size=168, mlp_dim=696, num_attention_heads=12)
    return HfSamProposer(SamModel(SamConfig(vision_config=vision)), "sam", "slimsam",
                         mode=mode, points_per_side=points_per_side, device="cpu")


def one(name: str, mode: str, n: int, points_per_side: int) -> dict:
    """Time ``name`` in ``mode`` on ``n`` calls after a warm-up (this process)."""
    img = (np.random.default_rng(0).random((768, 1024, 3)) * 255).astype(np.uint8)
    proposer = build(name, mode, points_per_side)
    params = sum(p.numel() for p in proposer.model.parameters())
    if mode == "prompt":
        proposer(img)
    enc, dec = [], []
    for _ in range(n):
        proposer(img)
        enc.append(proposer.encode_seconds)
        dec.append(proposer.decode_seconds)
    return dict(name=name, mode=mode, params=params, precision=proposer.precision,
                encode=min(enc), decode=min(dec),
                peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)


def run_all(args: argparse.Namespace) -> list[dict]:
    jobs = [(m, "prompt") for m in MODELS if m == "vit_b" or m in args.models]
    if not args.no_everything:
        jobs += [(m, "everything") for m in args.everything]
    rows = []
    for name, mode in jobs:
        cmd = [sys.executable, __file__, "--one", name, "--mode", mode, "--n", str(args.n),
               "--points-per-side", str(args.points_per_side), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  measured {json.dumps(rows[-1])}", file=sys.stderr)
    return rows


def table(rows: list[dict], threads: int) -> None:
    base = next(r for r in rows if r["name"] == "vit_b" and r["mode"] == "prompt")
    total0 = base["encode"] + base["decode"]
    print(f"CPU: {cpu_name()}, {threads} threads, torch {torch.__version__}; random weights, "
          "quality cannot be measured here (no checkpoint)")
    print("| model | mode | params | precision | encoder s | decoder s | s/photo | "
          f"x ViT-B prompt | {PHOTOS} photos | peak RSS GB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    every = next((r for r in rows if r["name"] == "vit_b" and r["mode"] == "everything"), None)
    for r in rows:
        total = r["encode"] + r["decode"]
        ratio = f"{total / total0:.2f}"
        if r["mode"] == "everything" and every is not None and r is not every:
            ratio += f" ({total / (every['encode'] + every['decode']):.2f} x ViT-B everything)"
        print(f"| {r['name']} | {r['mode']} | {r['params'] / 1e6:.1f} M | {r['precision']} | "
              f"{r['encode']:.2f} | {r['decode']:.2f} | {total:.2f} | {ratio} | "
              f"{total * PHOTOS / 60:.0f} min | {r['peak_gb']:.2f} |")


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2, help="timed calls per model (after a warm-up)")
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-everything", action="store_true", help="prompt mode only")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="models timed in prompt mode (vit_b is always the baseline)")
    p.add_argument("--everything", nargs="+", choices=MODELS[:3], default=list(MODELS[:2]),
                   help="models timed in everything mode (ViT-B's takes minutes a photo)")
    p.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="prompt", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(one(args.one, args.mode, args.n, args.points_per_side)))
        return
    t = time.perf_counter()
    table(run_all(args), args.threads)
    print(f"({time.perf_counter() - t:.0f} s in all)")


if __name__ == "__main__":
    main()
