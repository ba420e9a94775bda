"""seglib.core.parallel: the same values in one process, in a local pool and on a local Ray cluster;
a worker that dies takes only its item down; errors of the per-item function reach the caller."""

from __future__ import annotations

import argparse
import os
import sys

import parallel_toys as toys
import pytest

from seglib.core.errors import SeglibError
from seglib.core.parallel import map_photos, parse_workers

ITEMS = list(range(12))


def _values(outcomes) -> dict:
    got = {}
    for o in outcomes:
        assert o.item not in got, f"item {o.item} came back twice"
        got[o.item] = o.value if o.ok else ("error", o.error)
    return got


def test_serial_map_keeps_input_order_and_values():
    outs = list(map_photos(toys.square, ITEMS))
    assert [o.item for o in outs] == ITEMS
    assert [o.value for o in outs] == [x * x for x in ITEMS]


def test_pool_gives_the_serial_values():
    assert _values(map_photos(toys.square, ITEMS, workers=2)) == {x: x * x for x in ITEMS}


def test_pool_runs_setup_once_per_worker():
    outs = list(map_photos(toys.with_state, ITEMS, workers=2, setup=toys.pid_setup))
    pids = {o.value[0] for o in outs}
    assert sorted(o.value[1] for o in outs) == [x + 1 for x in ITEMS]
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def _crash(x: int, marker: str) -> list[tuple[int, str]]:
    """ITEMS where item x carries the crash marker (see parallel_toys.square_or_exit)."""
    return [(i, marker if i == x else "") for i in ITEMS]


def test_pool_worker_death_takes_only_its_item():
    got = {k[0]: v for k, v in _values(map_photos(toys.square_or_exit, _crash(5, "always"),
                                                  workers=2)).items()}
    assert set(got) == set(ITEMS)  # every item reported exactly once
    assert got[5][0] == "error" and "worker process died (exit code 9)" in got[5][1]
    assert {x: v for x, v in got.items() if x != 5} == {x: x * x for x in ITEMS if x != 5}


def test_pool_raises_the_functions_error_in_the_caller():
    with pytest.raises(ValueError, match="three is not allowed"):
        list(map_photos(toys.fails_on_three, ITEMS, workers=2))


def test_pool_raises_a_setup_error_in_the_caller():
    with pytest.raises(FileNotFoundError, match="not on this node"):
        list(map_photos(toys.with_state, ITEMS, workers=2, setup=toys.setup_fails))


def test_parse_workers():
    assert parse_workers("auto") >= 1
    assert parse_workers("3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_workers(bad)


def test_engine_ray_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SeglibError) as err:
        map_photos(toys.square, ITEMS, engine="ray")
    assert "pip install 'seglib[ray]'" in str(err.value) and "\n" not in str(err.value)


# -- Ray: a real local cluster (the ray_local fixture of conftest.py) -------------------------
def test_ray_gives_the_serial_values(ray_local):
    assert ray_local.cluster_resources().get("CPU") == 2
    assert _values(map_photos(toys.square, ITEMS, engine="ray")) == {x: x * x for x in ITEMS}
    outs = list(map_photos(toys.with_state, ITEMS, engine="ray", workers=2,
                           setup=toys.pid_setup))
    assert len({o.value[0] for o in outs}) <= 2
    assert sorted(o.value[1] for o in outs) == [x + 1 for x in ITEMS]


def test_ray_retries_an_item_whose_worker_died(ray_local, tmp_path):
    marker = tmp_path / "crash-once"
    marker.touch()
    got = _values(map_photos(toys.square_or_exit, _crash(5, str(marker)), engine="ray",
                             workers=2))
    assert not marker.exists(), "no worker died: the test proves nothing"
    assert {k[0]: v for k, v in got.items()} == {x: x * x for x in ITEMS}


def test_ray_worker_dying_every_time_takes_only_its_item(ray_local):
    got = {k[0]: v for k, v in _values(map_photos(toys.square_or_exit, _crash(5, "always"),
                                                  engine="ray", workers=2, retries=1)).items()}
    assert set(got) == set(ITEMS)
    assert got[5][0] == "error" and "also when Ray retried it" in got[5][1]
    assert {x: v for x, v in got.items() if x != 5} == {x: x * x for x in ITEMS if x != 5}


def test_ray_raises_the_functions_and_setups_errors(ray_local):
    with pytest.raises(ValueError, match="three is not allowed"):
        list(map_photos(toys.fails_on_three, ITEMS, engine="ray", workers=2))
    with pytest.raises(FileNotFoundError, match="not on this node"):
        list(map_photos(toys.with_state, ITEMS, engine="ray", workers=1,
                        setup=toys.setup_fails))
