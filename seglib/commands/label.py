"""``python -m seglib label IMAGES_DIR --out OUT_DIR``: candidates, pick and trimap per photo."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from seglib import parallel
from seglib.errors import SeglibError
from seglib.policy import POLICIES

if TYPE_CHECKING:
    from seglib.sam_candidates import SamProposer

HELP = "Label a folder of photos: propose candidate masks, pick the object, write trimaps."
GET_CHECKPOINT = "python -m seglib weights vit_b"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", type=Path, help="folder of photos (.jpg/.jpeg/.png)")
    p.add_argument("--out", type=Path, required=True, help="output folder (trimaps, labels.csv)")
    p.add_argument("--backend", choices=("auto", "sam", "opencv"), default="auto",
                   help="auto: SAM when a checkpoint is given or found, else opencv")
    p.add_argument("--checkpoint", type=Path, help="SAM checkpoint file (.pth)")
    p.add_argument("--model-type", choices=("vit_h", "vit_l", "vit_b"),
                   help="SAM model type (inferred from the checkpoint when omitted)")
    p.add_argument("--mode", choices=("prompt", "everything"), default="prompt",
                   help="SAM mode: prompt (fast default) or everything (the original way)")
    p.add_argument("--points-per-side", type=int, default=32,
                   help="grid size of everything mode (default 32)")
    p.add_argument("--policy", choices=POLICIES, default="foreground",
                   help="foreground (default) or seed (highest predicted_iou, the original)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument("--limit", type=int, help="label at most the first N photos")
    p.add_argument("--overwrite", action="store_true",
                   help="propose candidates again for photos already labeled (refined, "
                        "imported and hand-edited labels are kept unless --replace-kept)")
    p.add_argument("--replace-kept", action="store_true",
                   help="with --overwrite: also replace refined, imported and hand-edited labels")
    p.add_argument("--refine", type=int, default=0, metavar="ROUNDS",
                   help="then refine the labels in ROUNDS rounds, as `python -m seglib refine` "
                        "does (default 0: no refinement; 2 is the refine command's default)")
    parallel.add_arguments(p)


def _choose_backend(args: argparse.Namespace) -> tuple[str, Path | None]:
    if args.backend == "opencv":
        return "opencv", None
    checkpoint = args.checkpoint
    if checkpoint is not None and not checkpoint.is_file():
        raise SeglibError(f"{checkpoint}: checkpoint file not found; get one with "
                          f"`{GET_CHECKPOINT}`")
    if checkpoint is None:
        from seglib.sam_weights import find_checkpoint

        checkpoint = find_checkpoint(model_type=args.model_type)
    if checkpoint is not None:
        return "sam", checkpoint
    if args.backend == "sam":
        raise SeglibError(f"no SAM checkpoint found; get one with `{GET_CHECKPOINT}` "
                          f"or pass --checkpoint PATH")
    print(f"notice: no SAM checkpoint found, using the opencv backend "
          f"(for SAM labels run `{GET_CHECKPOINT}`)", file=sys.stderr)
    return "opencv", None


def sam_proposer(checkpoint: Path, model_type: str | None, mode: str, points_per_side: int,
                 device: str) -> SamProposer:
    """Load SAM and wrap it as a proposer (a worker's ``setup``)."""
    from seglib.sam_candidates import SamProposer
    from seglib.sam_weights import load_sam

    model = load_sam(checkpoint, model_type, device)
    return SamProposer(model, mode=mode, points_per_side=points_per_side, device=device)


def run(args: argparse.Namespace) -> int:
    from seglib.labeling import label_folder

    if args.images.is_dir():
        from seglib.io import scan_images

        for line in scan_images(args.images).skipped_lines():
            print(line, file=sys.stderr)
    spread = parallel.options(args)
    one_process = spread["engine"] == "local" and (spread["workers"] or 1) == 1
    backend, checkpoint = _choose_backend(args)
    setup = None
    if backend == "sam" and not one_process:
        # each worker loads SAM once; the checkpoint path must be readable where the workers
        # run (docs/scaling.md)
        setup = functools.partial(sam_proposer, checkpoint, args.model_type, args.mode,
                                  args.points_per_side, args.device)
    elif backend == "sam":
        from seglib.sam_weights import load_sam

        try:
            model = load_sam(checkpoint, args.model_type, args.device)
        except SeglibError as exc:
            if args.backend != "auto" or args.checkpoint is not None:
                raise  # asked for this checkpoint or for SAM: say why and stop
            print(f"notice: {exc}; using the opencv backend this time", file=sys.stderr)
            backend = "opencv"
        else:
            from seglib.sam_candidates import SamProposer

            setup = parallel.preloaded(SamProposer(
                model, mode=args.mode, points_per_side=args.points_per_side,
                device=args.device))
    if setup is None:
        from seglib.opencv_candidates import propose

        setup = parallel.preloaded(propose)
    mode = args.mode if backend == "sam" else "classical"
    summary = label_folder(args.images, args.out, setup=setup, backend=backend, mode=mode,
                           policy=args.policy, limit=args.limit, overwrite=args.overwrite,
                           replace_kept=args.replace_kept, **spread)
    print(summary.describe())
    if args.refine > 0 and summary.ok:
        from seglib.refine import refine_labels

        refined = refine_labels(args.images, args.out, rounds=args.refine, device=args.device,
                                **spread)
        print(refined.describe())
    return summary.exit_code
