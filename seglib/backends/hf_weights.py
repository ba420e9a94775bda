"""Checkpoints of the transformers backends (SAM 2.1, EdgeTAM, SlimSAM): table, finder, loader,
download.

A checkpoint here is a folder in the layout ``transformers`` saves and the model hub serves:
``config.json`` (whose ``model_type`` names the family: ``sam2``, ``edgetam`` or ``sam``) and
``model.safetensors`` (plain tensors: loading runs no pickled code). ``seglib weights NAME``
downloads the two files resumably into ``~/.cache/seglib/<folder>/``. No SHA-256 is published
for these files, so a download is checked instead by its structure: the safetensors header
names every tensor's byte range, so a cut-short or padded file is caught exactly, and the
config must be of the right family; the file's SHA-256 is printed for the record.

Meta's own SAM 2.1 files (``sam2.1_hiera_tiny.pt`` ...) hold the same weights with other
names; seglib runs SAM 2.1 through ``transformers`` and so uses the converted copies
(docs/benchmarks.md says why). Given one of Meta's files, the loader says which folder to get.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from seglib.core.errors import SeglibError

HUB = "https://huggingface.co/"
FILES = ("config.json", "model.safetensors")
FAMILY_TITLE = {"sam2": "SAM 2.1", "edgetam": "EdgeTAM", "sam": "SlimSAM"}


@dataclass(frozen=True)
class HfCheckpoint:
    """One downloadable checkpoint: its name, family, hub repository and rough size."""

    name: str
    family: str  # config.json's model_type: "sam2" (Sam2Model), "edgetam" (EdgeTamModel) or
    # "sam" (SamModel)
    repo: str
    megabytes: int  # about; the exact size is read from the file's own header

    @property
    def folder(self) -> str:
        return self.repo.split("/")[-1]

    def url(self, file: str, base: str | None = None) -> str:
        return f"{base or HUB}{self.repo}/resolve/main/{file}"


CHECKPOINTS: dict[str, HfCheckpoint] = {
    c.name: c for c in (
        HfCheckpoint("sam2.1_tiny", "sam2", "facebook/sam2.1-hiera-tiny", 156),
        HfCheckpoint("sam2.1_small", "sam2", "facebook/sam2.1-hiera-small", 184),
        HfCheckpoint("sam2.1_base_plus", "sam2", "facebook/sam2.1-hiera-base-plus", 324),
        HfCheckpoint("sam2.1_large", "sam2", "facebook/sam2.1-hiera-large", 898),
        HfCheckpoint("edgetam", "edgetam", "yonigozlan/EdgeTAM-hf", 40),
        HfCheckpoint("slimsam_77", "sam", "Zigeng/SlimSAM-uniform-77", 38),
    )
}
GET_ONE = {"sam2": "python -m seglib weights sam2.1_tiny",
           "edgetam": "python -m seglib weights edgetam",
           "sam": "python -m seglib weights slimsam_77"}
MODEL_CLASS = {"sam2": "Sam2Model", "edgetam": "EdgeTamModel", "sam": "SamModel"}
META_FILES = {"sam2.1_hiera_tiny.pt", "sam2.1_hiera_small.pt", "sam2.1_hiera_base_plus.pt",
              "sam2.1_hiera_large.pt", "sam2_hiera_tiny.pt", "sam2_hiera_small.pt",
              "sam2_hiera_base_plus.pt", "sam2_hiera_large.pt"}


def names(family: str) -> list[str]:
    """The checkpoint names of ``family``, smallest (fastest on a CPU) first."""
    return [c.name for c in CHECKPOINTS.values() if c.family == family]


def folder_of(path: str | Path) -> Path:
    """The checkpoint folder: ``path`` itself, or the folder of a file inside one."""
    p = Path(path).expanduser()
    return p if p.is_dir() else p.parent


def config_family(path: str | Path) -> str | None:
    """``model_type`` of the folder's config.json, or None when there is none to read."""
    try:
        return str(json.loads((folder_of(path) / "config.json").read_text()).get("model_type"))
    except (OSError, ValueError, AttributeError):
        return None


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file, or None when it is."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n <= 0 or n > min(size, 100_000_000):
                return "not a safetensors file"
            header = json.loads(f.read(n))
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError, struct.error):
        return "not a safetensors file"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    if not ends:
        return "holds no tensors"
    expected = 8 + n + max(ends)
    if size != expected:
        return f"damaged or incomplete ({size} of {expected} bytes)"
    return None


def check_folder(path: str | Path, family: str) -> Path:
    """The checkpoint folder of ``path`` when it holds a ``family`` model, else a one-line
    error naming the file and how to get a right one."""
    p, title, get = Path(path).expanduser(), FAMILY_TITLE[family], GET_ONE[family]
    if p.name in META_FILES:
        return _refuse(f"{p}: Meta's own SAM 2 file; seglib runs SAM 2.1 through transformers, "
                       f"get the same weights in its layout with `{GET_ONE['sam2']}`")
    if not p.exists():
        return _refuse(f"{p}: {title} checkpoint not found; get one with `{get}`")
    folder = folder_of(p)
    found = config_family(folder)
    if found is None:
        return _refuse(f"{p}: not a {title} checkpoint folder (no readable config.json beside "
                       f"model.safetensors); get one with `{get}`")
    if found != family:
        other = FAMILY_TITLE.get(found, f"a {found!r} model")
        hint = f"; use --backend {BACKEND_OF[found]}" if found in BACKEND_OF else ""
        return _refuse(f"{p}: this checkpoint is {other}, not {title}{hint}")
    problem = safetensors_problem(folder / "model.safetensors")
    if problem is not None:
        return _refuse(f"{folder / 'model.safetensors'}: {problem}; download it again with "
                       f"`{get}`")
    return folder


BACKEND_OF = {"sam2": "sam2", "edgetam": "edgetam", "sam": "slimsam"}


def _refuse(message: str) -> Path:
    raise SeglibError(message)


def load_model(path: str | Path, family: str, device: object = "cpu"):  # noqa: ANN201
    """The ``transformers`` model of the checkpoint folder at ``path``, checked and in eval
    mode; a file that does not fit is a one-line error, not a traceback."""
    folder = check_folder(path, family)
    import transformers
    from transformers.utils import logging as hf_logging

    if family == "edgetam" and importlib.util.find_spec("timm") is None:
        raise SeglibError("EdgeTAM's image encoder needs timm: pip install -e \".[sam2]\" "
                          "(or pip install timm)")
    hf_logging.disable_progress_bar()
    cls = getattr(transformers, MODEL_CLASS[family])
    try:
        model, info = cls.from_pretrained(folder, local_files_only=True,
                                          output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means a damaged checkpoint
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise SeglibError(f"{folder}: cannot load this {FAMILY_TITLE[family]} checkpoint "
                          f"({first}); download it again with `{GET_ONE[family]}`") from None
    bad = [*info.get("missing_keys", []), *info.get("mismatched_keys", [])]
    if bad:
        raise SeglibError(f"{folder}: does not fit its config ({len(bad)} missing or "
                          f"mismatched weights); download it again with `{GET_ONE[family]}`")
    return model.to(device).eval()


def model_name(path: str | Path, family: str) -> str:
    """The short name of the checkpoint at ``path`` (``sam2.1_tiny``): the table's name of its
    folder, else the folder's own name (a renamed or home-made checkpoint)."""
    folder = folder_of(path)
    for c in CHECKPOINTS.values():
        if c.family == family and c.folder in (Path(path).name, folder.name):
            return c.name
    return folder.name


def find_checkpoint(family: str, dirs: Iterable[str | Path] | None = None,
                    model_type: str | None = None) -> Path | None:
    """A ``family`` checkpoint folder found here, or None: ``$SEGLIB_CHECKPOINT`` when it is
    one, then each folder of ``dirs`` (``./checkpoints``, ``~/.cache/seglib``) for the
    official folder names, smallest first (only ``model_type`` when given)."""
    from seglib.backends.sam_weights import ENV_CHECKPOINT, default_dirs

    env = os.environ.get(ENV_CHECKPOINT)
    if env and Path(env).expanduser().exists() and config_family(env) == family:
        return folder_of(env)
    if model_type is not None and model_type not in names(family):
        return None
    order = [model_type] if model_type else names(family)
    for d in default_dirs() if dirs is None else dirs:
        for name in order:
            candidate = Path(d).expanduser() / CHECKPOINTS[name].folder
            if config_family(candidate) == family:
                return candidate
    return None


def find_edgetam(model_type: str | None = None) -> Path | None:
    return find_checkpoint("edgetam", model_type=model_type)


def find_sam2(model_type: str | None = None) -> Path | None:
    return find_checkpoint("sam2", model_type=model_type)


def find_slimsam(model_type: str | None = None) -> Path | None:
    return find_checkpoint("sam", model_type=model_type)


def download(name: str, dir: str | Path | None = None, base: str | None = None,
             timeout: float = 30.0, progress: bool = True) -> Path:
    """Download checkpoint ``name`` into ``dir/<folder>`` (default ``~/.cache/seglib``):
    each file goes to ``<file>.part`` (resumed with HTTP Range when cut) and is renamed only
    when complete; the folder is then checked (family, safetensors size)."""
    from seglib.backends.sam_weights import _fetch_resumable, default_download_dir

    if name not in CHECKPOINTS:
        raise SeglibError(f"unknown checkpoint {name!r}; choose one of {', '.join(CHECKPOINTS)}")
    ckpt = CHECKPOINTS[name]
    root = Path(dir).expanduser() if dir is not None else default_download_dir()
    folder = root / ckpt.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeglibError(f"{folder}: cannot create the folder ({exc.strerror}); "
                          f"choose another with --dir") from None
    for file in FILES:
        final = folder / file
        done = (safetensors_problem(final) is None if file.endswith(".safetensors")
                else final.is_file())
        if done:
            continue
        part = folder / (file + ".part")
        _fetch_resumable(ckpt.url(file, base), part, 0, timeout, progress, final)
        if file.endswith(".safetensors") and safetensors_problem(part) is not None:
            problem = safetensors_problem(part)
            part.unlink(missing_ok=True)
            raise SeglibError(f"{ckpt.url(file, base)}: download is {problem}; run the same "
                              f"command again")
        os.replace(part, final)
    return check_folder(folder, ckpt.family)
