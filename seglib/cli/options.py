"""Options shared by several commands: ``--workers/--engine/--address`` and the check of every
option named like a setting (:data:`seglib.core.settings.SETTINGS`)."""

from __future__ import annotations

import argparse
from typing import Any

from seglib.core.errors import SeglibError
from seglib.core.parallel import ENGINES, INSTALL_RAY, parse_workers, probe_address
from seglib.core.settings import SETTINGS, check


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """Every option of a command named like a setting (``--size``, ``--lr``, ``--limit``,
    ``--device`` ...), checked in place; options left at None are not checked."""
    for name, value in vars(args).items():
        if name in SETTINGS and value is not None:
            setattr(args, name, check(name, value, f"--{name.replace('_', '-')}"))
    return args


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--workers N|auto``, ``--engine local|ray`` and ``--address`` for a per-photo command."""
    p.add_argument("--workers", type=parse_workers, default=None, metavar="N",
                   help="photos processed at a time: a number or 'auto' (the machine's cores); "
                        "default 1, or with --engine ray every CPU (GPU with SAM) of the "
                        "cluster; Ray never gets more workers than its CPUs (GPUs) or photos")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local (processes on this machine, default) or ray (a Ray cluster; "
                        f"needs {INSTALL_RAY})")
    p.add_argument("--address", default=None,
                   help="with --engine ray: the cluster to join (HOST:PORT, or 'auto' for the "
                        "one `ray start` began on this machine); default: a local one for this "
                        "run")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`map_photos` from the parsed ``--workers/--engine/--address``."""
    if args.address is not None and args.engine != "ray":
        raise SeglibError(f"--address {args.address}: only used with --engine ray; add "
                          "--engine ray or leave --address out")
    if args.address is not None:  # before any work: a dead address fails in seconds
        probe_address(args.address)
    return {"workers": args.workers, "engine": args.engine, "address": args.address}
