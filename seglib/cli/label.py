"""``python -m seglib label IMAGES_DIR --out OUT_DIR``: candidates, pick and trimap per photo."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from seglib import backends
from seglib.backends import hf_weights
from seglib.cli import options
from seglib.core import parallel
from seglib.masks.policy import POLICIES

HELP = "Label a folder of photos: propose candidate masks, pick the object, write trimaps."


HF_CHECKPOINTS = tuple(hf_weights.CHECKPOINTS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", type=Path, help="folder of photos (.jpg/.jpeg/.png)")
    p.add_argument("--out", type=Path, required=True, help="output folder (trimaps, labels.csv)")
    p.add_argument("--backend", choices=backends.CHOICES, default="auto",
                   help="auto: the first backend whose checkpoint is given or found "
                        f"({', '.join(backends.AUTO_ORDER)}); opencv needs none")
    p.add_argument("--checkpoint", type=Path,
                   help="SAM checkpoint file (.pth), or a SAM 2.1 / SlimSAM checkpoint folder")
    p.add_argument("--model-type", choices=("vit_h", "vit_l", "vit_b", *HF_CHECKPOINTS),
                   help="which checkpoint to look for (SAM: inferred from the file when "
                        "omitted)")
    p.add_argument("--mode", choices=backends.MODES, default="prompt",
                   help="SAM mode: prompt (fast default) or everything (the original way)")
    p.add_argument("--points-per-side", type=int, default=32,
                   help="grid size of everything mode (default 32)")
    p.add_argument("--policy", choices=POLICIES, default="foreground",
                   help="foreground (default) or seed (highest predicted_iou, the original); "
                        "picks of the other policy are picked again from their cached "
                        "candidates")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--limit", type=int, help="label at most the first N photos")
    p.add_argument("--overwrite", action="store_true",
                   help="propose candidates again for photos already labeled (refined, "
                        "imported, hand-edited and override labels are kept unless --replace-kept)")
    p.add_argument("--replace-kept", action="store_true",
                   help="also replace override, refined, imported and hand-edited labels "
                        "(with --overwrite; and those of photos that changed)")
    p.add_argument("--refine", type=int, default=0, metavar="ROUNDS",
                   help="then refine the labels in ROUNDS rounds, as `python -m seglib refine` "
                        "does (default 0: no refinement; 2 is the refine command's default)")
    options.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from seglib.labels.labeling import label_folder

    if args.images.is_dir():
        from seglib.core.images import scan_images

        for line in scan_images(args.images).skipped_lines():
            print(line, file=sys.stderr)
    spread = options.options(args)
    one_process = spread["engine"] == "local" and (spread["workers"] or 1) == 1
    say = functools.partial(print, file=sys.stderr)
    settings = dict(model_type=args.model_type, mode=args.mode,
                    points_per_side=args.points_per_side, device=args.device)
    if one_process:  # load here: an unreadable checkpoint found by auto falls back to opencv
        opened = backends.open_proposer(args.backend, args.checkpoint, say=say, **settings)
        choice, mode, setup = opened.choice, opened.mode, parallel.preloaded(opened.proposer)
    else:  # each worker loads the model once (docs/scaling.md)
        choice = backends.choose(args.backend, args.checkpoint, args.model_type, say=say)
        mode, setup = choice.backend.mode(args.mode), backends.proposer_setup(choice, **settings)
    summary = label_folder(args.images, args.out, setup=setup, backend=choice.name, mode=mode,
                           policy=args.policy, limit=args.limit, overwrite=args.overwrite,
                           replace_kept=args.replace_kept, **spread)
    print(summary.describe())
    if args.refine > 0 and summary.ok:
        from seglib.refine.rounds import refine_labels

        refined = refine_labels(args.images, args.out, rounds=args.refine, device=args.device,
                                **spread)
        print(refined.describe())
    return summary.exit_code
