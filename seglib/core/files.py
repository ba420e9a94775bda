"""Atomic file writes and content hashes: what every writer and every cache key uses."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from seglib.core.errors import SeglibError

TEMP_NAME_CHARS = 40  # characters of the file name kept in its temp file's name
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes: what caches and manifests key a photo or label by."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise SeglibError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename.

    A reader (or a rerun after SIGKILL) sees either the old file or the complete new one.
    Errors name ``path``, never the temp file; a file name longer than the file system
    allows is a :class:`SeglibError` naming the file (a per-file problem, not the folder's),
    and so is a file that cannot be replaced (read-only, immutable, another user's) in a
    folder that can be written: the command fails that file's photo, not the whole run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a short temp name: ".<start of the name>.<random>.tmp" fits wherever the name itself fits
    prefix = f".{path.name[:TEMP_NAME_CHARS]}."
    tmp, replacing = None, False
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        replacing = True
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with _suppress_oserror():
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            if exc.errno == errno.ENAMETOOLONG:
                raise SeglibError(f"{path}: file name too long for this file system "
                                  f"({len(os.fsencode(path.name))} bytes); rename the photo "
                                  "to a shorter name") from None
            if replacing and exc.errno in (errno.EACCES, errno.EPERM):  # this file only
                raise SeglibError(f"{path}: cannot be replaced ({exc.strerror}); make it "
                                  "writable, or move it away") from None
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    return path


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        return exc_type is not None and issubclass(exc_type, OSError)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array (H×W gray, or H×W×3 RGB)."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", a)
    if not ok:
        raise SeglibError(f"cannot encode array of shape {a.shape} as PNG")
    return buf.tobytes()


def write_png_atomic(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` (gray or RGB) as PNG atomically."""
    return write_bytes_atomic(path, encode_png(array))


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of an RGB array."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SeglibError(f"cannot encode array of shape {rgb.shape} as JPEG")
    return buf.tobytes()


def write_jpeg_atomic(path: str | Path, rgb: np.ndarray, quality: int = 92) -> Path:
    """Write an RGB array as JPEG atomically."""
    return write_bytes_atomic(path, encode_jpeg(rgb, quality))


def unreadable_reason(path: Path, exc: BaseException) -> str:
    """A short reason why ``torch.load`` failed on ``path`` (any PyTorch file)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        return "empty file (0 bytes)"
    if head.startswith(b"PK"):  # a zip, the format torch.save writes
        if "Weights only load failed" in str(exc):
            return "the checkpoint holds Python objects, which are not loaded for safety"
        return "damaged or incomplete PyTorch file"
    if head[:1] == b"\x80":  # an older pickle-based torch file
        return "old-format or damaged PyTorch file"
    return "not a PyTorch checkpoint"


def write_bytes_new(path: str | Path, data: bytes) -> bool:
    """Write ``path`` atomically unless it exists (then leave it and return False).

    The bytes go to a temp file in the same folder that is then hard-linked to ``path``: the
    link fails when ``path`` exists, so an existing file is never replaced, even by a race.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:TEMP_NAME_CHARS]}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: check, then rename
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def move_aside(path: str | Path, tag: str = "edited") -> Path:
    """Rename the file ``path`` to the first free ``NAME.TAG-K.EXT`` (K = 1, 2, ...) next to
    it, so that a file a person changed is kept when seglib writes its own there."""
    path = Path(path)
    k = 1
    while (kept := path.with_name(f"{path.stem}.{tag}-{k}{path.suffix}")).exists():
        k += 1
    path.rename(kept)
    return kept
