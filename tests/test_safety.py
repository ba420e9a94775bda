"""Safety: no pickled code from user files runs, and runs write only into their output folder."""

from __future__ import annotations

import ast
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT

from seglib.cli import main
from seglib.core.errors import SeglibError

SOURCES = sorted((ROOT / "seglib").rglob("*.py"))


# -- static checks ---------------------------------------------------------------------------
def _calls(tree: ast.AST, module: str, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == name and isinstance(node.func.value, ast.Name)
                and node.func.value.id == module):
            yield node


def _keyword(call: ast.Call, key: str) -> object:
    for kw in call.keywords:
        if kw.arg == key:
            return kw.value.value if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_every_torch_load_is_weights_only_and_nothing_unpickles() -> None:
    assert SOURCES
    n_torch_load = 0
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for call in _calls(tree, "torch", "load"):
            n_torch_load += 1
            assert _keyword(call, "weights_only") is True, f"{path}:{call.lineno}"
        for call in _calls(tree, "np", "load"):
            assert _keyword(call, "allow_pickle") in (None, False), f"{path}:{call.lineno}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                for bad in ("pickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"):
                    assert not any(n == bad or n.startswith(bad + ".") for n in names), (
                        f"{path}:{node.lineno} imports {bad}")
                if isinstance(node, ast.ImportFrom) and node.module == "torch":
                    assert "load" not in [a.name for a in node.names], f"{path}:{node.lineno}"
    assert n_torch_load >= 2  # the run checkpoints and the SAM checkpoints


# Writes that are not temp-file-and-rename, each with why it is fine.
DIRECT_WRITES = {
    ("files.py", "write_bytes_atomic"),  # the temp file itself
    ("files.py", "write_bytes_new"),  # the temp file, hard-linked to a name that must be new
    ("folders.py", "folder_lock"),  # the lock file, created with O_EXCL
    ("sam_weights.py", "_fetch_resumable"),  # <file>.part, renamed once its sha256 is right
    ("runner.py", "kernel_of_this_python"),  # kernel.json in a temporary folder
}
# serializer -> index of its file argument; it must be an in-memory buffer
SERIALIZERS = {("torch", "save"): 1, ("json", "dump"): 1, ("np", "save"): 0, ("np", "savez"): 0,
               ("np", "savez_compressed"): 0, ("cv2", "imwrite"): 0, (None, "savefig"): 0}


def file_writes(source: str, filename: str) -> tuple[set[tuple[str, str]], list[str]]:
    """Functions that open files for writing, and serializer calls that write to a path."""
    direct, to_paths = set(), []
    for func in ast.walk(ast.parse(source, filename)):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        buffers = {t.id for n in ast.walk(func) if isinstance(n, ast.Assign)
                   and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Attribute)
                   and n.value.func.attr in ("BytesIO", "StringIO")
                   for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(
                f.value, ast.Name) else None
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            if name in ("write_text", "write_bytes", "fdopen") or (
                    name == "open" and mode is not None and not (
                        isinstance(mode, ast.Constant) and set(str(mode.value)) <= set("rbt"))):
                direct.add((filename, func.name))
            key = (owner, name) if (owner, name) in SERIALIZERS else (None, name)
            if key in SERIALIZERS and len(node.args) > SERIALIZERS[key]:
                target = node.args[SERIALIZERS[key]]
                if not (isinstance(target, ast.Name) and target.id in buffers):
                    to_paths.append(f"{filename}:{node.lineno} {name}() in {func.name}()")
    return direct, to_paths


def test_the_write_check_finds_direct_writes() -> None:
    src = """
import io, json, torch, cv2
def a(p):
    torch.save({}, p)
def b(p, img):
    cv2.imwrite(str(p), img)
def c(p):
    with open(p, "w") as f:
        json.dump({}, f)
def d(p):
    p.write_text("x")
def ok(p):
    buf = io.BytesIO()
    torch.save({}, buf)
    with open(p) as f, open(p, "rb") as g:
        return f.read() + g.read()
"""
    direct, to_paths = file_writes(src, "m.py")
    assert direct == {("m.py", "c"), ("m.py", "d")}
    assert [w.split()[1] for w in to_paths] == ["save()", "imwrite()", "dump()"]


def test_every_file_is_written_atomically() -> None:
    """Files are written through seglib.core.files's atomic helpers (or an in-memory buffer)."""
    direct, to_paths = set(), []
    for path in SOURCES:
        d, t = file_writes(path.read_text(encoding="utf-8"), path.name)
        direct |= d
        to_paths += t
    assert to_paths == [], "write to io.BytesIO and use seglib.core.files.write_bytes_atomic"
    assert direct == DIRECT_WRITES


# -- a checkpoint that would run code if unpickled -------------------------------------------
class _Payload:
    """Unpickling this object runs code that writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def write_malicious(path: Path, marker: Path, wrap: str = "") -> Path:
    """A torch file that runs code when loaded without ``weights_only``."""
    payload: object = _Payload(marker)
    if wrap == "run":
        payload = {"format": "seglib-run-v1", "state_dict": {}, "config": payload}
    elif wrap == "sam":
        payload = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
                   "extra": payload}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def test_the_payload_really_runs_code_without_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = write_malicious(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("wrap", ["", "run", "sam"])
def test_malicious_files_are_refused_everywhere(tmp_path: Path, wrap: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from seglib.backends.sam_weights import load_sam
    from seglib.course import compare
    from seglib.training.checkpoints import load_checkpoint
    from seglib.training.predict import load_model

    marker = tmp_path / "marker"
    photos = tmp_path / "photos"
    photos.mkdir()
    (tmp_path / "tri").mkdir()
    for stem in ("a", "b", "c"):
        cv2.imwrite(str(photos / f"{stem}.jpg"), np.full((40, 50, 3), 128, np.uint8))
        cv2.imwrite(str(tmp_path / "tri" / f"{stem}.png"), np.full((40, 50), 2, np.uint8))
    evil = write_malicious(tmp_path / "models" / "model_10" / "best.pt", marker, wrap)
    for load in (load_checkpoint, load_model, load_sam):
        with pytest.raises(SeglibError) as info:
            load(evil)
        assert "best.pt" in str(info.value) and "\n" not in str(info.value)
        assert "not loaded for safety" in str(info.value)
    with pytest.raises(SeglibError, match="best.pt"):
        compare.load_runs(tmp_path / "models", ["10"], "cpu")
    run = tmp_path / "run"
    train = ["train", photos, tmp_path / "tri", "--out", run, "--preset", "smoke", "--epochs",
             "1", "--size", "16", "--device", "cpu"]
    assert main([str(a) for a in train]) == 0  # a real run (with its manifest), then
    write_malicious(run / "last.pt", marker, wrap)  # its last.pt replaced
    for argv, name in (
        (["predict", evil, photos, "--out", tmp_path / "pred"], "best.pt"),
        (["label", photos, "--out", tmp_path / "labels", "--checkpoint", evil], "best.pt"),
        ([*train, "--resume"], "last.pt"),
    ):
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 2
        err = capsys.readouterr().err
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and name in errors[0] and "Traceback" not in err, err
    assert not marker.exists()


def test_candidates_with_pickled_objects_are_refused(tmp_path: Path) -> None:
    from seglib.masks.candidates import Candidates

    marker = tmp_path / "marker"
    path = tmp_path / "c.npz"
    np.savez(path, masks=np.zeros((1, 4, 4), bool),
             predicted_iou=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(SeglibError, match="c.npz"):
        Candidates.load(path)
    assert not marker.exists()


# -- no writes outside the output folder -----------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: relative path -> (size, mtime in ns)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (0 if p.is_dir() else st.st_size, st.st_mtime_ns)
    return out


def changed(before: dict, after: dict, output: str) -> list[str]:
    """What changed between two snapshots outside ``output`` (and its parent folders)."""
    parents = {str(Path(*Path(output).parts[:i])) for i in range(1, len(Path(output).parts))}

    def inside(rel: str) -> bool:
        return rel == output or rel.startswith(output + os.sep) or rel in parents

    diff = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return sorted(k for k in diff if not inside(k))


def test_commands_write_only_into_their_output_folder(
        tmp_path: Path, bad_folder, monkeypatch: pytest.MonkeyPatch) -> None:
    bf = bad_folder(n_good=6, huge=False)
    truth = bf.write_trimaps(tmp_path / "truth")
    masks = tmp_path / "masks"  # the object of each trimap as a 0/255 mask
    masks.mkdir()
    for t in truth.glob("*.png"):
        cv2.imwrite(str(masks / t.name), (cv2.imread(str(t), cv2.IMREAD_UNCHANGED) == 1)
                    .astype(np.uint8) * 255)
    for d in ("cwd", "home", "tmp"):
        (tmp_path / d).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.delenv("SEGLIB_CHECKPOINT", raising=False)
    read_only = [bf.images, truth, masks]
    modes = {}
    for d in read_only:
        for p in [d, *d.rglob("*")]:
            modes[p] = p.stat().st_mode
            p.chmod(0o555 if p.is_dir() else 0o444)
    before = snapshot(tmp_path)
    runs = [
        (["label", bf.images, "--out", tmp_path / "out" / "labels"], "out/labels"),
        (["pick", tmp_path / "out" / "labels", "--policy", "seed"], "out/labels"),
        (["trimap", masks, "--out", tmp_path / "out" / "trimaps"], "out/trimaps"),
        (["train", bf.images, truth, "--out", tmp_path / "out" / "run", "--preset", "smoke",
          "--size", "24", "--epochs", "1", "--no-amp", "--device", "cpu"], "out/run"),
        (["predict", tmp_path / "out" / "run" / "best.pt", bf.images, "--out",
          tmp_path / "out" / "pred", "--overlays", "--device", "cpu"], "out/pred"),
        (["evaluate", tmp_path / "out" / "pred", truth, "--csv",
          tmp_path / "out" / "scores.csv"], "out/scores.csv"),
    ]
    try:
        for argv, output in runs:
            assert main([str(a) for a in argv]) == 0, argv[0]
            after = snapshot(tmp_path)
            assert changed(before, after, output) == [], argv[0]
            assert {k.split(os.sep)[0] for k in after} == {k.split(os.sep)[0] for k in before} | {
                "out"}
            before = after
    finally:
        for p, mode in sorted(modes.items(), key=lambda kv: -len(kv[0].parts)):
            p.chmod(mode)
    assert not list((tmp_path / "cwd").iterdir())
    assert not list((tmp_path / "home").iterdir())
    assert not list((tmp_path / "tmp").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "labels", "pred", "run", "scores.csv", "trimaps"]


# -- the output folder must not be the input folder ------------------------------------------
def _png_photos(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    src = ROOT / "data" / "sample" / "images"
    for i in range(3):
        cv2.imwrite(str(folder / f"shoe_{i}.png"), cv2.imread(str(src / f"sample_00{i}.jpg")))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("command", ["label", "predict", "trimap"])
def test_output_folder_equal_to_the_input_folder_is_refused(
        tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    before = _png_photos(photos)
    if command == "predict":
        from conftest import copy_pairs

        from seglib.training.loop import train_run

        copy_pairs(tmp_path / "i", tmp_path / "t", 4)
        train_run(tmp_path / "i", tmp_path / "t", tmp_path / "run", preset="smoke", epochs=1,
                  size=16, amp=False, device="cpu", progress=False, log=lambda m: None)
        argv = ["predict", tmp_path / "run" / "best.pt", photos, "--out", photos / "." ]
    elif command == "label":
        argv = ["label", photos, "--out", photos / ".", "--backend", "opencv"]
    else:
        argv = ["trimap", photos, "--out", photos / "."]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in photos.iterdir() if p.is_file()} == before
    assert code == 2 and "Traceback" not in err
    assert err.strip().count("\n") == 0 and str(photos) in err and "--out" in err
