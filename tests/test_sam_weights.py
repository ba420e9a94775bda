"""SAM checkpoints: model-type inference, loading errors, the checked resumable download.

No real checkpoint is downloaded: the network is a local HTTP server on 127.0.0.1 serving a
small fake file whose sha256 is patched into the checkpoint table.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from toys import tiny_sam

from seglib.backends import sam_weights
from seglib.backends.sam_weights import (
    CHECKPOINTS,
    PATCH_EMBED_KEY,
    Checkpoint,
    download_weights,
    find_checkpoint,
    load_sam,
    model_type_from_state_dict,
    read_state_dict,
)
from seglib.cli import main
from seglib.core.errors import SeglibError


def fake_state(embed_dim: int) -> dict[str, torch.Tensor]:
    """Just the weight model-type inference reads, with the width of a real model."""
    return {PATCH_EMBED_KEY: torch.zeros(embed_dim, 3, 16, 16)}


@pytest.mark.parametrize(("dim", "expected"), [(768, "vit_b"), (1024, "vit_l"), (1280, "vit_h")])
def test_model_type_from_saved_state_dict(tmp_path: Path, dim: int, expected: str) -> None:
    path = tmp_path / "renamed.pth"
    torch.save(fake_state(dim), path)
    assert model_type_from_state_dict(read_state_dict(path)) == expected


def test_model_type_of_unknown_width_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(tiny_sam().state_dict(), path)
    assert model_type_from_state_dict(read_state_dict(path)) is None
    with pytest.raises(SeglibError, match="not an official SAM model"):
        load_sam(path)


def test_mismatched_model_type_names_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "sam_vit_h_4b8939.pth"  # a ViT-B checkpoint under a ViT-H name
    torch.save(fake_state(768), path)
    with pytest.raises(SeglibError) as err:
        load_sam(path, model_type="vit_h")
    msg = str(err.value)
    assert "this checkpoint is vit_b, not vit_h; pass --model-type vit_b" in msg
    assert str(path) in msg and "\n" not in msg


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(SeglibError, match="python -m seglib weights vit_b") as err:
        load_sam(tmp_path / "nope.pth")
    assert "\n" not in str(err.value)


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_text("<html>404 not found</html>\n")
    with pytest.raises(SeglibError, match="not a PyTorch checkpoint") as err:
        load_sam(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_empty_cut_short_and_pickled_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(SeglibError, match="empty file"):
        load_sam(empty)
    whole = tmp_path / "whole.pth"
    torch.save(fake_state(768), whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(SeglibError, match="damaged or incomplete"):
        load_sam(cut)
    pickled = tmp_path / "pickled.pth"
    torch.save({"config": argparse.Namespace(lr=0.1)}, pickled)
    with pytest.raises(SeglibError, match="not loaded for safety"):
        load_sam(pickled)


def test_other_torch_file_is_not_a_sam_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    torch.save({"epoch": 3, "weights": torch.zeros(2)}, path)
    with pytest.raises(SeglibError, match="not a SAM checkpoint"):
        load_sam(path)


def test_unknown_model_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SeglibError, match="unknown SAM model type"):
        load_sam(tmp_path / "x.pth", model_type="vit_x")


@pytest.mark.slow
def test_random_vit_b_checkpoint_round_trip(tmp_path: Path) -> None:
    """A full ViT-B with random weights saved to a file loads back, type inferred."""
    from segment_anything import sam_model_registry

    torch.manual_seed(1)
    model = sam_model_registry["vit_b"](checkpoint=None)
    path = tmp_path / "random-vit-b.pth"
    torch.save(model.state_dict(), path)
    expected = model.image_encoder.patch_embed.proj.weight.detach().clone()
    del model
    loaded = load_sam(path, device="cpu")
    assert loaded.image_encoder.patch_embed.proj.weight.shape[0] == 768
    assert torch.equal(loaded.image_encoder.patch_embed.proj.weight, expected)
    assert not loaded.training
    with pytest.raises(SeglibError, match="pass --model-type vit_b"):
        load_sam(path, model_type="vit_l")


def test_find_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sam_weights.ENV_CHECKPOINT, raising=False)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert find_checkpoint([a, b]) is None
    (b / "sam_vit_h_4b8939.pth").write_bytes(b"x")
    assert find_checkpoint([a, b]) == b / "sam_vit_h_4b8939.pth"
    (b / "sam_vit_b_01ec64.pth").write_bytes(b"x")
    assert find_checkpoint([a, b]) == b / "sam_vit_b_01ec64.pth"  # smallest first
    assert find_checkpoint([a, b], model_type="vit_h") == b / "sam_vit_h_4b8939.pth"
    own = tmp_path / "mine.pth"
    own.write_bytes(b"x")
    monkeypatch.setenv(sam_weights.ENV_CHECKPOINT, str(own))
    assert find_checkpoint([a, b]) == own


# -- download ---------------------------------------------------------------------------------


class FakeServer:
    """Serves ``payload`` at any path, honours ``Range``, can cut a response short."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.cut_after: int | None = None
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                data, status = server.payload, 200
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    data, status = data[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(data[: server.cut_after])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


PAYLOAD = bytes(range(256)) * 400  # 100 kB


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    srv = FakeServer(PAYLOAD)
    real = CHECKPOINTS["vit_b"]
    monkeypatch.setitem(
        CHECKPOINTS, "vit_b",
        Checkpoint("vit_b", real.filename, len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest(),
                   real.embed_dim),
    )
    monkeypatch.setattr(sam_weights, "URL_BASE", srv.base)
    yield srv
    srv.close()


def test_download_verifies_and_renames(server: FakeServer, tmp_path: Path) -> None:
    path = download_weights("vit_b", tmp_path, progress=False)
    assert path == tmp_path / "sam_vit_b_01ec64.pth"
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "sam_vit_b_01ec64.pth.part").exists()
    assert server.ranges == [None]
    # Present and correct: kept, nothing fetched again.
    assert download_weights("vit_b", tmp_path, progress=False) == path
    assert len(server.ranges) == 1


def test_interrupted_download_resumes(server: FakeServer, tmp_path: Path) -> None:
    server.cut_after = 30_000
    with pytest.raises(SeglibError, match="run the same command again to resume"):
        download_weights("vit_b", tmp_path, progress=False)
    part = tmp_path / "sam_vit_b_01ec64.pth.part"
    assert part.stat().st_size == 30_000
    assert not (tmp_path / "sam_vit_b_01ec64.pth").exists()  # never a half file by that name
    server.cut_after = None
    path = download_weights("vit_b", tmp_path, progress=False)
    assert server.ranges[-1] == "bytes=30000-"
    assert path.read_bytes() == PAYLOAD
    assert not part.exists()


def test_damaged_download_is_not_kept(server: FakeServer, tmp_path: Path) -> None:
    server.payload = PAYLOAD[:-1] + b"\x00"
    with pytest.raises(SeglibError, match="damaged") as err:
        download_weights("vit_b", tmp_path, progress=False)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_weights_command(server: FakeServer, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "vit_b", "--dir", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "sam_vit_b_01ec64.pth").read_bytes() == PAYLOAD
    assert "sha256 ok" in capsys.readouterr().out


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_offline_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{closed_port()}/segment_anything/"
    monkeypatch.setattr(sam_weights, "URL_BASE", base)
    t = time.perf_counter()
    assert main(["weights", "vit_b", "--dir", str(tmp_path), "--quiet"]) == 2
    assert time.perf_counter() - t < 10
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert base + "sam_vit_b_01ec64.pth" in err
    assert str(tmp_path / "sam_vit_b_01ec64.pth") in err
    assert not (tmp_path / "sam_vit_b_01ec64.pth").exists()


def test_tiny_sam_is_small_and_deterministic() -> None:
    a, b = tiny_sam(seed=3), tiny_sam(seed=3)
    n = sum(p.numel() for p in a.parameters())
    assert n < 500_000
    assert a.image_encoder.img_size == 256
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
