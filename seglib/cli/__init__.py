"""``python -m seglib COMMAND ...``: one module per command under ``seglib.cli``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Command modules are imported only when chosen, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from pathlib import Path

from seglib.core.errors import SeglibError

COMMANDS: dict[str, str] = {
    "sample": "write the embedded synthetic sample (photos + true masks)",
    "trimap": "convert a folder of binary masks to trimaps",
    "label": "label a folder of photos: candidates, pick, trimap",
    "pick": "re-pick labels from cached candidates (no model needed)",
    "fix": "redraw one wrong label from a box and clicks (GrabCut, or SAM)",
    "refine": "refine labels with a CNN trained on the folder's confident ones",
    "weights": "download an official SAM checkpoint (sha256-checked)",
    "train": "train a segmentation CNN on photos + trimaps",
    "predict": "predict trimaps for a folder of photos",
    "evaluate": "compare predicted trimaps with true ones",
    "course": "run the four course notebooks headless with papermill",
    "notebooks": "copy the four course notebooks out to open in JupyterLab",
    "export": "export labels as COCO, YOLO, Oxford-IIIT Pet or Pascal VOC",
    "import": "make the masks of a COCO file (CVAT, Label Studio) the photos' labels",
}
MODULES = {"import": "import_"}  # command names that are Python keywords


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<10} {text}" for name, text in COMMANDS.items())
    return argparse.ArgumentParser(
        prog="python -m seglib",
        description="seglib: photos -> SAM labels -> trimaps -> segmentation CNN.",
        epilog=f"commands:\n{lines}\n\nRun 'python -m seglib COMMAND --help' for its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def user_path(path: Path) -> Path:
    """A path argument as the user meant it: ``~`` expanded (also in ``--out=~/x``, which the
    shell leaves alone); a symbolic link loop is a one-line error."""
    path = path.expanduser()
    try:
        path.resolve()
        loop = False
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        loop = True
    except OSError as exc:
        loop = exc.errno == errno.ELOOP
        if not loop:
            raise
    if loop:
        raise SeglibError(f"{path}: is a symbolic link loop (a link that points back to "
                          "itself); pass the real folder or file")
    return path


def user_paths(args: argparse.Namespace) -> argparse.Namespace:
    """Every path argument of a command through :func:`user_path` (the one place for all)."""
    for name, value in vars(args).items():
        if isinstance(value, Path):
            setattr(args, name, user_path(value))
        elif isinstance(value, list) and value and all(isinstance(v, Path) for v in value):
            setattr(args, name, [user_path(v) for v in value])
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    top.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND")
    top.add_argument("--version", action="store_true", help="print the version and exit")
    if not argv or argv[0] not in COMMANDS:
        args, _ = top.parse_known_args(argv)
        if args.version:
            from seglib import __version__

            print(__version__)
            return 0
        top.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(f"seglib.cli.{MODULES.get(name, name)}")
    parser = argparse.ArgumentParser(prog=f"python -m seglib {name}", description=module.HELP)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        from seglib.cli.options import check_args

        return int(module.run(check_args(user_paths(args))) or 0)
    except SeglibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished files are kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except OSError as exc:  # a path that is a file, a full disk, no permission: user-fixable
        if os.environ.get("SEGLIB_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check the path (a folder you can write "
              f"to, with free space)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence against traceback walls
        if os.environ.get("SEGLIB_DEBUG"):
            raise
        print(f"error: {_describe(exc)} (set SEGLIB_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _describe(exc: BaseException) -> str:
    """An unexpected error in one line: its type (module-qualified when the bare name would
    read as a second ``error:``, as OpenCV's ``cv2.error`` does) and the message's lines."""
    kind = type(exc)
    name = kind.__name__
    if name.islower() and kind.__module__ != "builtins":
        name = f"{kind.__module__.split('.')[0]}.{name}"
    text = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
    return f"{name}: {text}" if text else name
