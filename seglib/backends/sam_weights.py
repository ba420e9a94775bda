"""SAM checkpoints: the official files, a checked download, model-type inference and loading.

The three official Segment Anything checkpoints are plain PyTorch state dicts. They are
loaded here with ``torch.load(..., weights_only=True)`` (no pickled code runs) into a model
built by ``segment_anything.sam_model_registry``. Every problem a user can fix is raised as a
one-line :class:`~seglib.core.errors.SeglibError` that names the file and the fix.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from seglib.core.device import pick_device
from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, unreadable_reason

URL_BASE = "https://dl.fbaipublicfiles.com/segment_anything/"
PATCH_EMBED_KEY = "image_encoder.patch_embed.proj.weight"
ENV_CHECKPOINT = "SEGLIB_CHECKPOINT"


@dataclass(frozen=True)
class Checkpoint:
    """One official SAM checkpoint: its file name, URL, size in bytes and sha256."""

    model_type: str
    filename: str
    size: int
    sha256: str
    embed_dim: int

    @property
    def url(self) -> str:
        return URL_BASE + self.filename


CHECKPOINTS: dict[str, Checkpoint] = {
    "vit_h": Checkpoint(
        "vit_h", "sam_vit_h_4b8939.pth", 2_564_550_879,
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 1280,
    ),
    "vit_l": Checkpoint(
        "vit_l", "sam_vit_l_0b3195.pth", 1_249_524_607,
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1024,
    ),
    "vit_b": Checkpoint(
        "vit_b", "sam_vit_b_01ec64.pth", 375_042_383,
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 768,
    ),
}
_BY_EMBED_DIM = {c.embed_dim: c.model_type for c in CHECKPOINTS.values()}
GET_ONE = "python -m seglib weights vit_b"


def default_dirs() -> list[Path]:
    """Where :func:`find_checkpoint` looks: ``./checkpoints`` and ``~/.cache/seglib``."""
    return [Path.cwd() / "checkpoints", Path.home() / ".cache" / "seglib"]


def default_download_dir() -> Path:
    return Path.home() / ".cache" / "seglib"


def model_type_from_state_dict(state: Mapping[str, torch.Tensor]) -> str | None:
    """vit_b / vit_l / vit_h from the image encoder's embedding width, else None."""
    w = state.get(PATCH_EMBED_KEY)
    if not isinstance(w, torch.Tensor) or w.ndim != 4:
        return None
    return _BY_EMBED_DIM.get(int(w.shape[0]))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict, read safely on the CPU; clear errors for wrong files."""
    path = Path(path)
    if not path.is_file():
        raise SeglibError(
            f"{path}: SAM checkpoint not found; get one with `{GET_ONE}` "
            f"(or pass --backend opencv)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a checkpoint"
        raise SeglibError(
            f"{path}: {unreadable_reason(path, exc)}; download an official checkpoint with "
            f"`{GET_ONE}` (or pass --backend opencv)"
        ) from None
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and PATCH_EMBED_KEY in inner:
                obj = inner
                break
    if not isinstance(obj, Mapping) or PATCH_EMBED_KEY not in obj:
        raise SeglibError(
            f"{path}: a PyTorch file but not a SAM checkpoint (no {PATCH_EMBED_KEY}); "
            f"download an official one with `{GET_ONE}`"
        )
    return dict(obj)


def load_sam(
    checkpoint: str | Path,
    model_type: str | None = None,
    device: str | torch.device = "auto",
) -> torch.nn.Module:
    """Build a SAM model with ``segment_anything``'s registry and load ``checkpoint`` into it.

    ``model_type`` (vit_b, vit_l, vit_h) is inferred when omitted; a checkpoint of another
    type than the one asked for is an error that says which type to pass.
    """
    from segment_anything import sam_model_registry

    path = Path(checkpoint)
    if model_type is not None and model_type not in CHECKPOINTS:
        raise SeglibError(f"unknown SAM model type {model_type!r}; choose vit_b, vit_l or vit_h")
    state = read_state_dict(path)
    found = model_type_from_state_dict(state)
    if found is None:
        width = tuple(state[PATCH_EMBED_KEY].shape)
        raise SeglibError(
            f"{path}: not an official SAM model (image encoder weight of shape {width}); "
            f"download one with `{GET_ONE}`"
        )
    if model_type is not None and model_type != found:
        raise SeglibError(
            f"{path}: this checkpoint is {found}, not {model_type}; pass --model-type {found}"
        )
    model = sam_model_registry[found](checkpoint=None)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise SeglibError(
            f"{path}: does not fit SAM {found} ({len(result.missing_keys)} missing, "
            f"{len(result.unexpected_keys)} unexpected weights); the file may be damaged, "
            f"download it again with `python -m seglib weights {found}`"
        )
    dev = device if isinstance(device, torch.device) else pick_device(device)
    return model.to(dev).eval()


def find_checkpoint(
    dirs: Iterable[str | Path] | None = None, model_type: str | None = None
) -> Path | None:
    """A checkpoint file found in the standard places, or None.

    ``$SEGLIB_CHECKPOINT`` (a file) wins; then each of ``dirs`` (default
    :func:`default_dirs`) is searched for an official file name, smallest model first
    unless ``model_type`` is given.
    """
    env = os.environ.get(ENV_CHECKPOINT)
    if env and Path(env).expanduser().is_file():
        return Path(env).expanduser()
    if model_type is not None and model_type not in CHECKPOINTS:
        return None  # another backend's checkpoint name (sam2.1_tiny ...)
    order = [model_type] if model_type else ["vit_b", "vit_l", "vit_h"]
    for d in default_dirs() if dirs is None else dirs:
        d = Path(d).expanduser()
        for mt in order:
            candidate = d / CHECKPOINTS[mt].filename
            if candidate.is_file():
                return candidate
    return None


def env_checkpoint_missing() -> str:
    """`` ($SEGLIB_CHECKPOINT=PATH does not exist)`` when the variable names a path that is
    not there (what a "no checkpoint found" line adds), else ``""``."""
    env = os.environ.get(ENV_CHECKPOINT)
    if env and not Path(env).expanduser().exists():
        return f" (${ENV_CHECKPOINT}={env} does not exist)"
    return ""


def download_weights(
    model_type: str,
    dir: str | Path | None = None,
    url: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download an official checkpoint into ``dir`` (default ``~/.cache/seglib``).

    The bytes go to ``<file>.part`` and an interrupted download resumes from it (HTTP Range).
    The finished file is checked against the official sha256 and only then renamed to its
    final name, so a file with the official name is always complete. A file already present
    with the right checksum is kept as is.
    """
    if model_type not in CHECKPOINTS:
        raise SeglibError(f"unknown SAM model type {model_type!r}; choose vit_b, vit_l or vit_h")
    ckpt = CHECKPOINTS[model_type]
    url = url or ckpt.url
    folder = Path(dir).expanduser() if dir is not None else default_download_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeglibError(f"{folder}: cannot create the folder ({exc.strerror}); "
                          f"choose another with --dir") from None
    final = folder / ckpt.filename
    if final.is_file() and file_sha256(final) == ckpt.sha256:
        return final
    part = folder / (ckpt.filename + ".part")
    _fetch_resumable(url, part, ckpt.size, timeout, progress, final)
    digest = file_sha256(part)
    if digest != ckpt.sha256:
        part.unlink(missing_ok=True)
        raise SeglibError(
            f"{url}: download is damaged (sha256 {digest[:12]}..., expected "
            f"{ckpt.sha256[:12]}...); run the same command again"
        )
    os.replace(part, final)
    return final


def _offline_error(url: str, final: Path, exc: BaseException) -> SeglibError:
    reason = getattr(exc, "reason", None) or exc
    return SeglibError(
        f"cannot download {url} ({reason}); download it on a machine with internet and put "
        f"it at {final}"
    )


def _fetch_resumable(
    url: str, part: Path, total: int, timeout: float, progress: bool, final: Path
) -> None:
    from tqdm.auto import tqdm

    have = part.stat().st_size if part.exists() else 0
    if total and have > total:
        part.unlink()
        have = 0
    if total and have == total:
        return
    headers = {"User-Agent": "seglib"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part file already holds everything
            return
        raise _offline_error(url, final, exc) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _offline_error(url, final, exc) from None
    with response:
        resumed = have and response.status == 206
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length else (total or None)
        mode = "ab" if resumed else "wb"
        bar = tqdm(total=expected, initial=have, unit="B", unit_scale=True,
                   desc=final.name, disable=not progress)
        try:
            with open(part, mode) as f:
                while block := response.read(1 << 20):
                    f.write(block)
                    bar.update(len(block))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise SeglibError(
                f"download of {url} stopped ({getattr(exc, 'reason', exc)}); run the same "
                f"command again to resume from {part}"
            ) from None
        finally:
            bar.close()
    got = part.stat().st_size
    if expected and got < expected:
        raise SeglibError(
            f"download of {url} stopped after {got} of {expected} bytes; run the same command "
            f"again to resume from {part}"
        )
