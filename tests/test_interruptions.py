"""Interrupted and concurrent runs, seen from outside: real processes, signals, exit codes.

(A label run killed with SIGKILL in a loop is tested in test_labeling.py, a training run
killed with SIGKILL and resumed in test_train.py.)
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from seglib.cli import main
from seglib.core.folders import LOCK_NAME
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _default_sigint() -> None:
    # a shell's background job starts with Ctrl-C ignored; the run must see it as a user would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*argv: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seglib", *map(str, argv)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def wait_for(cond, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.communicate()[1][-500:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def interrupt_when(ready, run: subprocess.Popen, what: str) -> str:
    """Press Ctrl-C in ``run`` once ``ready()`` holds; return its stderr (kill it on failure)."""
    try:
        wait_for(ready, run, what)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return err


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "labels.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_second_label_run_on_the_same_folder_refuses(sample_pairs, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    images, _, stems = sample_pairs(9)
    out = tmp_path / "labels"
    first = start("label", images, "--out", out, "--backend", "opencv")
    try:
        wait_for(lambda: any((out / "candidates").glob("*.npz")), first, "the first photo")
        lock = out / LOCK_NAME
        assert lock.read_text().strip() == str(first.pid)
        for argv in (["label", images, "--out", out, "--backend", "opencv"],
                     ["label", images, "--out", out, "--backend", "opencv", "--overwrite"],
                     ["pick", out, "--policy", "seed"]):
            if first.poll() is not None:
                pytest.skip("the first run finished before the second could start")
            capsys.readouterr()
            assert main([str(a) for a in argv]) == 2
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0 and "Traceback" not in err
            assert f"another seglib run (pid {first.pid})" in err and str(out) in err
            assert str(lock) in err  # says which file to delete if that run is gone
            assert lock.read_text().strip() == str(first.pid)  # the lock stays with its owner
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    got = rows(out)
    assert [r["stem"] for r in got] == stems and all(r["status"] == "ok" for r in got)
    assert all(r["policy"] == "foreground" for r in got)  # the refused `pick --policy seed`
    assert not lock.exists()


def test_ctrl_c_during_label_keeps_finished_photos(sample_pairs, tmp_path: Path) -> None:
    images, _, stems = sample_pairs(9)
    out = tmp_path / "labels"
    run = start("label", images, "--out", out, "--backend", "opencv")
    err = interrupt_when(
        lambda: len(list((out / "candidates").glob("*.npz"))) >= 2, run, "two photos")
    assert run.returncode == 130, err
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1].startswith("interrupted: finished files are kept")
    assert not (out / LOCK_NAME).exists()
    done = {r["stem"] for r in rows(out)}
    assert done and done < set(stems)
    for stem in done:  # every photo in labels.csv has its complete files
        assert load_trimap(out / f"{stem}.png").shape == (240, 240)
        assert Candidates.load(out / "candidates" / f"{stem}.npz").shape == (240, 240)
    before = {s: (out / "candidates" / f"{s}.npz").stat().st_mtime_ns for s in done}
    assert main(["label", str(images), "--out", str(out), "--backend", "opencv"]) == 0
    assert [r["stem"] for r in rows(out)] == stems
    assert all((out / "candidates" / f"{s}.npz").stat().st_mtime_ns == t
               for s, t in before.items())  # the finished photos were not redone


def test_ctrl_c_during_train_then_resume(sample_pairs, tmp_path: Path) -> None:
    from seglib.training.checkpoints import load_checkpoint
    from seglib.training.predict import load_model

    images, trimaps, _ = sample_pairs(12)
    out = tmp_path / "run"
    opts = ["--preset", "smoke", "--size", "24", "--no-amp", "--device", "cpu"]
    run = start("train", images, trimaps, "--out", out, "--epochs", "400", *opts)
    err = interrupt_when(lambda: (out / "history.csv").is_file()
                         and len((out / "history.csv").read_text().splitlines()) > 3, run,
                         "three epochs")
    assert run.returncode == 130, err
    assert "Traceback" not in err and "interrupted: finished files are kept" in err
    done = load_checkpoint(out / "last.pt")["epoch"]
    assert 3 <= done < 400
    model = load_model(out / "best.pt", "cpu")  # the best epoch so far is usable as is
    assert model.size == 24
    assert main(["train", str(images), str(trimaps), "--out", str(out), "--epochs",
                 str(done + 1), "--resume", *opts]) == 0
    with open(out / "history.csv", newline="") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == list(range(1, done + 2))
    assert load_checkpoint(out / "last.pt")["epoch"] == done + 1


def test_ctrl_c_during_course_prints_one_line(tmp_path: Path) -> None:
    """The real CLI runs a course whose one notebook sleeps in a cell; Ctrl-C reaches the
    runner and its kernel (one process group), as in a terminal."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('out_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import pathlib, time\npathlib.Path(out_dir, 'started').write_text('1')\n"
        "time.sleep(300)")]
    path = tmp_path / "01_sleep.ipynb"
    nbformat.write(nb, str(path))
    out = tmp_path / "course"
    code = ("import sys; from pathlib import Path; import seglib.course.runner as c; "
            f"c.notebook_paths = lambda folder=None: [Path({str(path)!r})]; "
            "from seglib.cli import main; sys.exit(main(sys.argv[1:]))")
    run = subprocess.Popen([sys.executable, "-c", code, "course", "--preset", "smoke", "--out",
                            str(out), "--no-html"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    err = interrupt_when(lambda: (out / "started").is_file(), run, "the cell to start")
    assert run.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: finished files are kept; run the same command again to resume"], err
