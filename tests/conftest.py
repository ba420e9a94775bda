"""Shared fixtures: a folder of messy photos (the bad-input matrix), photo/trimap pairs, the
command line run in this process (``cli``) and a tiny trained run (``trained_run``).

``bad_folder(name)`` writes, next to good photos copied from ``data/sample``: a zero-byte
file, a truncated JPEG, a text file named .jpg, a grayscale JPEG, an RGBA PNG, a 16-bit PNG,
a 6000×4000 photo, a 1×1 photo, ``.DS_Store`` and ``._*`` files, a nested folder, upper-case
extensions and non-ASCII / space-containing names. Its ``expect`` map says what each file
should become (``ok``, ``skipped`` or ``either``); ignored files must not appear at all.

Trained numbers must not depend on the machine: every test, and every process a test starts
(CLI runs, notebook kernels), runs on the CPU (``SEGLIB_DEVICE=cpu``: a GPU, when there is
one, is not used), in fp32 (``SEGLIB_PRECISION=fp32``: no bf16 autocast on CPUs with AMX or
AVX512-BF16) and, in this process, on one torch thread. A test that trains seeds it with the
``train_seed`` fixture and checks what training must show with the ``bounds`` fixture, whose
limits are set with the spread over seeds in fp32 and in bf16 in view (bench/seed_sweep.py
measures it; the results are in docs/benchmarks.md). To run the suite another way, set
before pytest: ``SEGLIB_PRECISION=bf16`` (emulated on CPUs without native bf16),
``SEGLIB_TEST_SEED=N``, ``SEGLIB_TEST_RECORD=FILE`` (bounds append their values to FILE as
JSON lines instead of failing: the sweep's way).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("SEGLIB_DEVICE", "cpu")
os.environ.setdefault("SEGLIB_PRECISION", "fp32")

ROOT = Path(__file__).resolve().parents[1]
SEED_ENV = "SEGLIB_TEST_SEED"
RECORD_ENV = "SEGLIB_TEST_RECORD"
SAMPLE = ROOT / "data" / "sample"
HUGE_HW = (4000, 6000)  # a 6000×4000 photo (width × height)

Cli = Callable[..., tuple[int, str, str]]


def sample_stems(n: int) -> list[str]:
    """The first ``n`` stems of the committed sample (photo + trimap)."""
    stems = sorted(p.stem for p in (SAMPLE / "images").glob("*.jpg"))
    if len(stems) < n:
        pytest.skip(f"data/sample holds {len(stems)} photos, {n} needed")
    return stems[:n]


def _encode(ext: str, img: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok, f"cannot encode {ext}"
    return buf.tobytes()


@dataclass
class BadFolder:
    """A messy photo folder and what each file should turn into."""

    images: Path
    expect: dict[str, str]  # file name -> "ok" | "skipped" | "either"
    sizes: dict[str, tuple[int, int]]  # file name -> (h, w) for decodable photos
    ignored: list[str] = field(default_factory=list)  # names that must give no output
    source: dict[str, str] = field(default_factory=dict)  # file name -> sample stem

    @property
    def stems(self) -> dict[str, str]:
        """stem -> file name of every file a run should consider."""
        return {Path(n).stem: n for n in self.expect}

    def write_trimaps(self, out: Path, *, all_pairs: bool = True) -> Path:
        """A trimap for every considered file, at its photo's size (the sample's trimap
        resized nearest); undecodable photos get a 240×240 one so that they pair."""
        out.mkdir(parents=True, exist_ok=True)
        for name in self.expect:
            stem = Path(name).stem
            src = cv2.imread(str(SAMPLE / "trimaps" / f"{self.source.get(name, 'sample_000')}.png"),
                             cv2.IMREAD_UNCHANGED)
            h, w = self.sizes.get(name, (240, 240))
            t = cv2.resize(src, (w, h), interpolation=cv2.INTER_NEAREST)
            (out / f"{stem}.png").write_bytes(_encode(".png", t))
            if not all_pairs:
                break
        return out


_HUGE_CACHE: dict[str, bytes] = {}


def _huge_jpeg(photo: np.ndarray) -> bytes:
    if "huge" not in _HUGE_CACHE:
        big = cv2.resize(photo, HUGE_HW[::-1], interpolation=cv2.INTER_LINEAR)
        _HUGE_CACHE["huge"] = _encode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return _HUGE_CACHE["huge"]


def make_bad_folder(folder: Path, n_good: int = 3, huge: bool = True) -> BadFolder:
    """Write the bad-input matrix into ``folder`` (see the module doc)."""
    folder.mkdir(parents=True, exist_ok=True)
    stems = sample_stems(max(n_good, 1))
    expect: dict[str, str] = {}
    sizes: dict[str, tuple[int, int]] = {}
    source: dict[str, str] = {}

    def put(name: str, data: bytes, outcome: str, hw: tuple[int, int] | None = None,
            src: str | None = None) -> None:
        (folder / name).write_bytes(data)
        expect[name] = outcome
        if hw is not None:
            sizes[name] = hw
        source[name] = src or stems[0]

    for s in stems[:n_good]:
        put(f"{s}.jpg", (SAMPLE / "images" / f"{s}.jpg").read_bytes(), "ok", (240, 240), s)
    base_src = stems[0]
    bgr = cv2.imread(str(SAMPLE / "images" / f"{base_src}.jpg"))
    jpeg = _encode(".jpg", bgr)
    put("zero.jpg", b"", "skipped")
    put("truncated.jpg", jpeg[: len(jpeg) // 3], "either", (240, 240))
    put("notes.jpg", b"these are my notes, not a photo\n", "skipped")
    put("gray.jpg", _encode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)), "ok", (240, 240))
    rgba = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    rgba[:20, :20, 3] = 0
    put("alpha.png", _encode(".png", rgba), "ok", (240, 240))
    put("deep16.png", _encode(".png", bgr.astype(np.uint16) * 257), "ok", (240, 240))
    put("tiny.jpg", _encode(".jpg", bgr[120:121, 120:121]), "ok", (1, 1))
    put("UPPER.JPG", _encode(".jpg", np.ascontiguousarray(bgr[:, ::-1])), "ok", (240, 240))
    put("Flat.PNG", _encode(".png", bgr[20:220, 10:230]), "ok", (200, 220))
    put("schuh_grün é.jpg", jpeg, "ok", (240, 240))
    put("my shoe.jpeg", jpeg, "ok", (240, 240))
    if huge:
        put("huge.jpg", _huge_jpeg(bgr), "ok", HUGE_HW)
    ignored = [".DS_Store", "._sample_000.jpg", "._gray.jpg", "notes.txt", "nested"]
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 64)
    (folder / "._sample_000.jpg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 80)
    (folder / "._gray.jpg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 80)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "nested").mkdir(exist_ok=True)
    (folder / "nested" / "inner_photo.jpg").write_bytes(jpeg)
    return BadFolder(folder, expect, sizes, ignored, source)


@pytest.fixture
def bad_folder(tmp_path: Path) -> Callable[..., BadFolder]:
    """Factory: ``bad_folder("name", n_good=3, huge=True)`` -> :class:`BadFolder`."""

    def make(name: str = "photos", n_good: int = 3, huge: bool = True) -> BadFolder:
        return make_bad_folder(tmp_path / name, n_good=n_good, huge=huge)

    return make


def copy_pairs(images: Path, trimaps: Path, n: int) -> list[str]:
    """Copy the first ``n`` sample photos and trimaps (cycled, renamed, when ``n`` > 48)."""
    images.mkdir(parents=True, exist_ok=True)
    trimaps.mkdir(parents=True, exist_ok=True)
    stems = sorted(p.stem for p in (SAMPLE / "images").glob("*.jpg"))
    if not stems:
        pytest.skip("data/sample is missing")
    out = []
    for i in range(n):
        src = stems[i % len(stems)]
        stem = src if i < len(stems) else f"{src}_copy{i // len(stems)}"
        shutil.copyfile(SAMPLE / "images" / f"{src}.jpg", images / f"{stem}.jpg")
        shutil.copyfile(SAMPLE / "trimaps" / f"{src}.png", trimaps / f"{stem}.png")
        out.append(stem)
    return out


@pytest.fixture
def sample_pairs(tmp_path: Path) -> Callable[[int], tuple[Path, Path, list[str]]]:
    """Factory: ``sample_pairs(n)`` -> (images dir, trimaps dir, stems) in tmp."""

    def make(n: int, name: str = "pairs") -> tuple[Path, Path, list[str]]:
        images, trimaps = tmp_path / name / "images", tmp_path / name / "trimaps"
        return images, trimaps, copy_pairs(images, trimaps, n)

    return make


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """One torch thread for the whole run: tiny models on a busy 2-core machine run many
    times faster, and trained numbers do not depend on the core count (set once for the
    session, so module fixtures that train get it too)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def train_seed() -> int:
    """The seed of the tests' training runs: ``$SEGLIB_TEST_SEED``, else train_run's own
    default (data.SPLIT_SEED)."""
    from seglib.training.data import SPLIT_SEED

    return int(os.environ.get(SEED_ENV) or SPLIT_SEED)


@dataclass
class Bounds:
    """What a trained number must show: ``above(name, value, limit)`` / ``below(...)`` assert
    it; with ``$SEGLIB_TEST_RECORD`` set they append it to that file instead (one JSON line:
    test, name, value, op, limit, seed, precision) and go on (bench/seed_sweep.py)."""

    test: str
    seed: int
    record: Path | None = None

    def above(self, name: str, value: float, limit: float) -> None:
        self._check(name, float(value), ">", limit)

    def below(self, name: str, value: float, limit: float) -> None:
        self._check(name, float(value), "<", limit)

    def _check(self, name: str, value: float, op: str, limit: float) -> None:
        if self.record is not None:
            from seglib.core.device import precision

            row = {"test": self.test, "name": name, "value": value, "op": op, "limit": limit,
                   "seed": self.seed, "precision": precision()}
            with self.record.open("a") as f:
                f.write(json.dumps(row) + "\n")
            return
        ok = value > limit if op == ">" else value < limit
        assert ok, f"{name} = {value:.4f}, must be {op} {limit}"


@pytest.fixture
def bounds(request: pytest.FixtureRequest, train_seed: int) -> Bounds:
    """:class:`Bounds` for this test (its node id names the records)."""
    record = os.environ.get(RECORD_ENV)
    return Bounds(request.node.nodeid, train_seed, Path(record) if record else None)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke course run once for the session (tests/test_notebooks.py, test_browser.py)."""
    from seglib.course import runner as course

    out = tmp_path_factory.mktemp("course") / "smoke run"  # a space in the path, on purpose
    # headless, as the runner always is (interactive=False): widget messages through a kernel
    # with no front end can leave the notebook client waiting forever, so the widgets are
    # tested in-process (test_notebooks.py, test_course.py) and in a browser (test_browser.py)
    return course.run_course("smoke", out=out, log=lambda s: None)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``python -m seglib ARGS`` in this process: (exit code, stdout, stderr)."""
    from seglib.cli import main

    def run(*argv: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, _one_torch_thread: None) -> Path:
    """A tiny trained run (smoke preset, 32 px, 1 epoch) on 12 sample pairs."""
    from seglib.training.loop import train_run

    root = tmp_path_factory.mktemp("trained")
    copy_pairs(root / "images", root / "trimaps", 12)
    train_run(root / "images", root / "trimaps", root / "run", preset="smoke", epochs=1,
              size=32, amp=False, device="cpu", progress=False, log=lambda m: None)
    return root / "run"


@pytest.fixture(scope="session")
def ray_local() -> Iterator[object]:
    """A real local Ray instance for the session: 2 CPUs, no dashboard, 127.0.0.1; shut down
    at the end. Skipped (with the reason) when Ray is not installed."""
    import os

    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'seglib[ray]')")
    from seglib.core.errors import SeglibError
    from seglib.core.parallel import ray_connect

    # Ray's workers import seglib (and tests/parallel_toys.py) as this process does
    paths = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    try:
        assert ray_connect(None, num_cpus=2)
    except SeglibError as exc:  # Ray's agents missed its own start-up deadline (a busy CPU)
        pytest.skip(f"Ray could not start a local instance here: {exc}")
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    yield ray
    ray.shutdown()
