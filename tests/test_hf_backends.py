"""SAM 2.1 (``sam2``), EdgeTAM (``edgetam``) and SlimSAM (``slimsam``) backends through
transformers.

Every model here is a tiny one of the real architecture (Hiera SAM 2.1, EdgeTAM's RepViT-M1
from timm, SlimSAM's SAM-1 ViT)
with random weights, saved as a checkpoint folder (config.json + model.safetensors) like the
ones ``seglib weights`` downloads; the download is tested against a server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from test_labeling import csv_rows, make_folder  # noqa: E402
from test_sam_weights import FakeServer  # noqa: E402
from toys import tiny_hf_sam  # noqa: E402

from seglib import backends  # noqa: E402
from seglib.backends import hf_weights  # noqa: E402
from seglib.backends.hf_sam import build_edgetam, build_sam2, build_slimsam  # noqa: E402
from seglib.cli import main  # noqa: E402
from seglib.core.errors import SeglibError  # noqa: E402
from seglib.masks.candidates import Candidates  # noqa: E402

pytest.importorskip("timm")  # EdgeTAM's image encoder (in the sam2 and dev extras)
FAMILY = {"sam2": "sam2", "edgetam": "edgetam", "slimsam": "sam"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ckpt")
    return {b: tiny_hf_sam(root / b, fam) for b, fam in FAMILY.items()}


@pytest.fixture(autouse=True)
def no_found_checkpoints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEGLIB_CHECKPOINT", raising=False)
    monkeypatch.setattr("seglib.backends.sam_weights.default_dirs", lambda: [tmp_path / "none"])


@pytest.mark.parametrize("mode", ["prompt", "everything"])
@pytest.mark.parametrize("backend", ["sam2", "edgetam", "slimsam"])
def test_label_pick_refine(backend: str, mode: str, folders: dict[str, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    img, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(img, 3, h=48, w=64)
    assert main(["label", str(img), "--out", str(out), "--backend", backend, "--checkpoint",
                 str(folders[backend]), "--mode", mode, "--points-per-side", "4",
                 "--device", "cpu"]) == 0
    rows = csv_rows(out)
    assert {r["backend"] for r in rows} == {backend} and {r["mode"] for r in rows} == {mode}
    c = Candidates.load(out / "candidates" / f"{stems[0]}.npz")
    assert c.shape == (48, 64) and c.backend == backend
    if mode == "prompt":
        assert len(c) == 21 and c.sources[0] == "point:centre/m0"
        assert c.sources[-1] == "box:70/m2"
    assert main(["pick", str(out), "--policy", "seed"]) == 0
    assert main(["refine", str(img), "--out", str(out), "--rounds", "1", "--epochs", "1",
                 "--size", "32", "--device", "cpu"]) == 0  # too few labels: skipped
    capsys.readouterr()


def test_proposer_scores_and_timing(folders: dict[str, Path]) -> None:
    import numpy as np

    img = (np.random.default_rng(0).random((40, 70, 3)) * 255).astype(np.uint8)
    for build, backend in ((build_sam2, "sam2"), (build_edgetam, "edgetam"),
                           (build_slimsam, "slimsam")):
        p = build(folders[backend], device="cpu")
        c = p(img)
        assert c.masks.shape == (21, 40, 70) and c.backend == backend
        assert ((c.predicted_iou >= 0) & (c.predicted_iou <= 1)).all()
        assert ((c.stability >= 0) & (c.stability <= 1)).all()
        assert p.encode_seconds > 0 and p.decode_seconds > 0 and p.decoded_masks == 21
        assert p.precision in ("fp32", "bf16")
        assert p.description.startswith(f"{backend} ({hf_weights.FAMILY_TITLE[FAMILY[backend]]}")
    # an official folder name is said by its checkpoint name
    assert hf_weights.model_name(Path("x") / "sam2.1-hiera-tiny", "sam2") == "sam2.1_tiny"
    assert hf_weights.model_name(Path("x") / "EdgeTAM-hf", "edgetam") == "edgetam"


def test_auto_finds_and_orders(folders: dict[str, Path], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    monkeypatch.setattr("seglib.backends.sam_weights.default_dirs", lambda: [root])
    assert backends.choose("auto").name == "opencv"
    slim = tiny_hf_sam(root / "SlimSAM-uniform-77", "sam")
    assert backends.choose("auto").checkpoint == slim
    edge = tiny_hf_sam(root / "EdgeTAM-hf", "edgetam")
    assert backends.choose("auto").checkpoint == edge  # EdgeTAM before SlimSAM
    assert backends.choose("edgetam").checkpoint == edge
    tiny = tiny_hf_sam(root / "sam2.1-hiera-tiny", "sam2")
    assert backends.choose("auto") == backends.Choice(backends.BACKENDS["sam2"], tiny)
    assert backends.choose("auto", folders["slimsam"]).name == "slimsam"
    assert backends.choose("auto", folders["edgetam"]).name == "edgetam"
    assert backends.choose("auto", model_type="sam2.1_large").name == "opencv"  # not here
    assert backends.AUTO_ORDER[0] == "sam2" and backends.AUTO_ORDER[-1] == "opencv"


def test_wrong_family_and_damaged_files_are_one_line(folders: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    make_folder(tmp_path / "img", 1)

    def label(backend: str, ckpt: Path) -> str:
        assert main(["label", str(tmp_path / "img"), "--out", str(tmp_path / "o"),
                     "--backend", backend, "--checkpoint", str(ckpt)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        return err

    assert "this checkpoint is SlimSAM, not SAM 2.1; use --backend slimsam" in label(
        "sam2", folders["slimsam"])
    assert "weights sam2.1_tiny" in label("sam2", tmp_path / "missing")
    assert "this checkpoint is SAM 2.1, not EdgeTAM; use --backend sam2" in label(
        "edgetam", folders["sam2"])
    assert "weights edgetam" in label("edgetam", tmp_path / "missing")
    meta = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": {}}, meta)
    assert "Meta's own SAM 2 file" in label("sam2", meta)
    vit = tmp_path / "sam.pth"
    torch.save({"x": torch.zeros(1)}, vit)
    assert "not a SlimSAM checkpoint folder" in label("slimsam", vit)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "config.json").write_bytes((folders["sam2"] / "config.json").read_bytes())
    data = (folders["sam2"] / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert "damaged or incomplete" in label("sam2", cut)
    with pytest.raises(SeglibError, match="SAM checkpoint not found|not a PyTorch"):
        backends.build_proposer(backends.Choice(backends.BACKENDS["sam"], folders["sam2"]))


@pytest.fixture()
def hub(folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """A hub on 127.0.0.1 serving the tiny SlimSAM's two files by their names."""
    files = {f: (folders["slimsam"] / f).read_bytes() for f in hf_weights.FILES}
    srv = FakeServer(b"")
    srv.files = files  # type: ignore[attr-defined]
    handler = srv.httpd.RequestHandlerClass
    get = handler.do_GET

    def do_get(self) -> None:  # noqa: ANN001
        srv.payload = files[self.path.rsplit("/", 1)[-1]]
        get(self)

    monkeypatch.setattr(handler, "do_GET", do_get)
    monkeypatch.setattr(hf_weights, "HUB", srv.base)
    yield srv
    srv.close()


def test_download_resumes_checks_and_loads(hub: FakeServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    hub.cut_after = 3000
    assert main(["weights", "slimsam_77", "--dir", str(tmp_path), "--quiet"]) == 2
    assert "run the same command again to resume" in capsys.readouterr().err
    folder = tmp_path / "SlimSAM-uniform-77"
    assert not (folder / "model.safetensors").exists()
    hub.cut_after = None
    assert main(["weights", "slimsam_77", "--dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "sha256" in out and "--backend slimsam" in out
    assert any(r and r.startswith("bytes=") for r in hub.ranges)  # resumed, not restarted
    assert hf_weights.safetensors_problem(folder / "model.safetensors") is None
    assert hf_weights.find_checkpoint("sam", dirs=[tmp_path]) == folder
    build_slimsam(folder, device="cpu")


def test_damaged_download_is_not_kept(hub: FakeServer, tmp_path: Path) -> None:
    data = hub.files["model.safetensors"]  # type: ignore[attr-defined]
    hub.files["model.safetensors"] = data[:-10]  # type: ignore[attr-defined]
    with pytest.raises(SeglibError, match="download is damaged or incomplete") as err:
        hf_weights.download("slimsam_77", tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "SlimSAM-uniform-77" / "model.safetensors").exists()
    assert not (tmp_path / "SlimSAM-uniform-77" / "model.safetensors.part").exists()


def test_course_accepts_the_new_backends(folders: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from seglib.course.parameters import check_course_parameters

    for name in ("sam2", "slimsam"):
        assert check_course_parameters({"backend": name})["backend"] == name
        monkeypatch.setenv("SEGLIB_CHECKPOINT", str(folders[name]))
        assert backends.choose(name).checkpoint == folders[name]  # what the course checks
    with pytest.raises(SeglibError, match="weights sam2.1_tiny"):
        monkeypatch.delenv("SEGLIB_CHECKPOINT")
        backends.choose("sam2")


def test_edgetam_without_timm_is_one_line(folders: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "timm" else find(name, *a))
    with pytest.raises(SeglibError, match="EdgeTAM's image encoder needs timm"):
        hf_weights.load_model(folders["edgetam"], "edgetam")
    assert hf_weights.CHECKPOINTS["edgetam"].family == "edgetam"


def test_course_notebook_01_with_sam2_says_the_model_and_its_speed(tmp_path: Path) -> None:
    """The smoke course's notebook 01 with ``-p backend sam2`` and a random-weight SAM 2.1
    checkpoint folder: it labels with SAM 2.1 and says which model and how many seconds a
    photo."""
    import nbformat

    from seglib.course import runner as course

    ckpt = tiny_hf_sam(tmp_path / "sam2.1-hiera-tiny", "sam2")
    first = course.notebook_paths()[0]
    res = course.run_course("smoke", checkpoint=ckpt, out=tmp_path / "run",
                            overrides={"backend": "sam2", "label_limit": 4},
                            notebooks=[first], html=False, log=lambda s: None)
    nb = nbformat.read(str(res.notebooks[0]), as_version=4)
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "sam2 backend: sam2.1_tiny (SAM 2.1, transformers), prompt mode" in text
    assert "s per photo on average with sam2.1_tiny (sam2 backend, prompt mode)" in text
    rows = csv_rows(tmp_path / "run" / "labels")
    assert len(rows) == 4 and {r["backend"] for r in rows} == {"sam2"}
    print("\n".join(line for line in text.splitlines() if "sam2" in line))
