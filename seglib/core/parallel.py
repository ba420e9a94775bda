"""Per-photo work on several processes or a Ray cluster: one map function for every command.

``map_photos(fn, items, workers=..., engine=...)`` calls ``fn(item)`` (or ``fn(state, item)``
with ``state = setup()`` made once per worker, e.g. a loaded model) for every item and yields
an :class:`Outcome` per item. The caller (the "driver") writes every file, so workers need no
shared output folder and the folder's lock and resume rules stay the caller's.

- ``engine="local"``, ``workers=1`` (the default): in this process, in input order.
- ``engine="local"``, ``workers=N``: N worker processes (``spawn``) on this machine, each with
  one CPU thread per core it gets. A worker that dies (killed, out of memory, a crash in native
  code) takes only its item down: that item's outcome has ``error`` set and a new worker takes
  its place. No retry: a rerun of the command redoes the item.
- ``engine="ray"``: one Ray actor per worker (``setup`` runs once per actor; with ``gpu`` each
  actor holds one GPU when the cluster has GPUs). The rule: at most ``workers`` actors, never
  more than the cluster's CPUs (its GPUs with ``gpu``) and never more than the items.
  ``address=None`` starts a local Ray instance for the call with this machine's cores (no
  dashboard) and shuts it down after; ``address="auto"`` or ``"HOST:PORT"`` joins a running
  cluster (``ray start --head``); a ``HOST:PORT`` where nothing answers is refused in one
  line within a few seconds. An actor that dies is restarted and its item
  retried ``retries`` times by Ray; after that the item's outcome has ``error`` set.

Several engines give the same values: ``fn`` must be deterministic for an item (it is for
every seglib per-photo function). An exception raised by ``fn`` or ``setup`` is raised again
in the caller, as it would be in one process.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from seglib.core.errors import SeglibError

ENGINES = ("local", "ray")
RETRIES = 2  # Ray: times an item is retried on a restarted actor after its actor died
INSTALL_RAY = "pip install 'seglib[ray]'"


@dataclass
class Outcome:
    """One item's result: ``value``, or ``error`` (why there is none: its worker died)."""

    item: Any
    value: Any = None
    error: str | None = None
    index: int = 0  # the item's place in the input

    @property
    def ok(self) -> bool:
        return self.error is None


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def parse_workers(text: str | int) -> int:
    """``"auto"`` -> the machine's cores, ``"3"`` -> 3 (argparse type of ``--workers``)."""
    if str(text).strip().lower() == "auto":
        return cpu_count()
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of workers or 'auto', got {text!r}"
                                         ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"needs at least 1 worker, got {n}")
    return n


def map_photos(
    fn: Callable[..., Any],
    items: Iterable[Any],
    *,
    workers: int | None = None,
    engine: str = "local",
    address: str | None = None,
    setup: Callable[[], Any] | None = None,
    gpu: bool = False,
    retries: int = RETRIES,
    ordered: bool = False,
) -> Iterator[Outcome]:
    """Yield an :class:`Outcome` for every item: ``fn(item)``, or ``fn(setup(), item)``.

    Locally with one worker, or with ``ordered``, the outcomes come in input order (held
    back until the ones before them are done), otherwise as items finish.
    ``fn`` and ``setup`` must be picklable (module-level functions or ``functools.partial``
    of them) for more than one worker; so must items and values. ``workers=None`` means one
    locally and every CPU (or GPU, with ``gpu``) of a Ray cluster. See the module doc.
    """
    if engine not in ENGINES:
        raise SeglibError(f"unknown engine {engine!r}; choose local or ray")
    if workers is not None and workers < 1:
        raise SeglibError(f"needs at least 1 worker, got {workers}")
    if engine == "ray":
        outcomes = _ray_map(fn, items, workers, address, setup, gpu, retries)
    elif address is not None:
        raise SeglibError(f"address {address!r} is only used with the ray engine")
    elif (workers or 1) == 1:
        return _serial_map(fn, items, setup)
    else:
        outcomes = _pool_map(fn, items, workers or 1, setup)
    return _in_order(outcomes) if ordered else outcomes


def _in_order(outcomes: Iterator[Outcome]) -> Iterator[Outcome]:
    held: dict[int, Outcome] = {}
    nxt = 0
    for o in outcomes:
        held[o.index] = o
        while nxt in held:
            yield held.pop(nxt)
            nxt += 1


def _identity(value: Any) -> Any:
    return value


def preloaded(value: Any) -> Callable[[], Any]:
    """A ``setup`` that gives ``value`` made already (sent to each worker once)."""
    return functools.partial(_identity, value)


def _call(fn: Callable[..., Any], state: Any, has_state: bool, item: Any) -> Any:
    return fn(state, item) if has_state else fn(item)


def _serial_map(fn: Callable[..., Any], items: Iterable[Any],
                setup: Callable[[], Any] | None) -> Iterator[Outcome]:
    state = setup() if setup is not None else None
    for i, item in enumerate(items):
        yield Outcome(item, _call(fn, state, setup is not None, item), index=i)


# -- local processes ----------------------------------------------------------------------------
def _limit_threads(threads: int) -> None:
    """One process's share of the cores for the numeric libraries (torch, OpenCV, BLAS)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)


def _picklable_error(exc: BaseException) -> BaseException:
    """``exc`` itself when the driver can rebuild it (Python's own errors and seglib's),
    else a RuntimeError with its words."""
    if isinstance(exc, SeglibError) or type(exc).__module__ == "builtins":
        return exc
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _worker_main(conn: Connection, threads: int) -> None:
    """A pool process: receive the work (after limiting threads), set up once, then serve
    items. Only the driver's own messages arrive here, over the pool's pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _limit_threads(threads)
    try:
        fn, setup = conn.recv()
        _limit_threads(threads)  # modules the unpickling imported
        state = setup() if setup is not None else None
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which raises it
        conn.send(("setup", -1, _picklable_error(exc)))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, item = msg
        try:
            value = _call(fn, state, setup is not None, item)
            conn.send(("ok", index, value))
        except Exception as exc:  # noqa: BLE001 - raised again by the driver
            conn.send(("raise", index, _picklable_error(exc)))


@dataclass
class _Proc:
    process: Any
    conn: Connection
    busy: tuple[int, Any] | None = None


def _died(process: Any) -> str:
    """Why a pool process ended, once it has been joined."""
    code = process.exitcode
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"


class _Pool:
    """The driver's side of the local pool: its worker processes and the items still to do.

    Each worker holds at most one item (``_Proc.busy``); :meth:`collect` hands out the
    outcomes of the workers that answered or died, and gives each of them its next item.
    """

    def __init__(self, fn: Callable[..., Any], setup: Callable[[], Any] | None, *,
                 todo: Iterator[tuple[int, Any]], threads: int) -> None:
        self.ctx = mp.get_context("spawn")  # fork is unsafe with threads (torch, OpenCV)
        self.fn, self.setup, self.todo, self.threads = fn, setup, todo, threads
        self.procs: list[_Proc] = []

    def _start(self, p: _Proc) -> None:
        """A new process for ``p``, sent the work and then ``p``'s item."""
        here, there = self.ctx.Pipe()
        p.process = self.ctx.Process(target=_worker_main, args=(there, self.threads),
                                     daemon=True)
        p.process.start()
        there.close()
        here.send((self.fn, self.setup))
        p.conn = here
        self._send(p, p.busy)
        self.procs.append(p)

    def _take(self, p: _Proc) -> bool:
        p.busy = next(self.todo, None)
        return p.busy is not None

    @staticmethod
    def _send(p: _Proc, msg: Any) -> None:
        try:
            p.conn.send(msg)
        except OSError:  # it just died: wait() sees its end, its item is reported then
            pass

    def start_workers(self, workers: int) -> None:
        """Up to ``workers`` processes, one per item while there are items."""
        for _ in range(workers):
            if not self.add_worker():
                break

    def add_worker(self) -> bool:
        """One more process when an item is left for it; False when none is."""
        p = _Proc(None, None)  # type: ignore[arg-type]
        if not self._take(p):
            return False
        self._start(p)
        return True

    def busy(self) -> list[_Proc]:
        """The workers holding an item."""
        return [p for p in self.procs if p.busy]

    def collect(self) -> Iterator[Outcome]:
        """Wait for the busy workers; yield the outcome of each that answered or died."""
        busy = self.busy()
        ready = wait([p.conn for p in busy] + [p.process.sentinel for p in busy])
        for p in busy:
            if p.conn not in ready and p.process.sentinel not in ready:
                continue
            outcome = self._receive(p)
            yield outcome
            self._refill(p, died=not outcome.ok)

    def _receive(self, p: _Proc) -> Outcome:
        """``p``'s answer: its item's value, or an error when ``p`` died on it; an error
        raised by ``fn`` or ``setup`` is raised here."""
        index, item = p.busy  # type: ignore[misc]
        try:
            kind, _, value = p.conn.recv()
        except (EOFError, OSError):
            p.process.join()
            p.busy = None
            return Outcome(item, error=f"its worker process died ({_died(p.process)}); run the "
                                       "command again to retry it", index=index)
        if kind in ("setup", "raise"):
            raise value
        p.busy = None
        return Outcome(item, value, index=index)

    def _refill(self, p: _Proc, *, died: bool) -> None:
        """After ``p`` answered: its next item, or the end; a dead ``p`` gets a successor."""
        if died:
            self.procs.remove(p)
            p.conn.close()
            self.add_worker()  # a new worker takes the dead one's place
        elif self._take(p):
            self._send(p, p.busy)
        else:
            self._send(p, None)

    def close(self) -> None:
        """Tell every worker to stop; kill the ones that do not within 5 s."""
        for p in self.procs:
            try:
                p.conn.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.process.join(timeout=5)
            if p.process.is_alive():
                p.process.kill()
                p.process.join()
            p.conn.close()


def _pool_map(fn: Callable[..., Any], items: Iterable[Any], workers: int,
              setup: Callable[[], Any] | None) -> Iterator[Outcome]:
    pool = _Pool(fn, setup, todo=iter(enumerate(items)),
                 threads=max(1, cpu_count() // workers))
    try:
        pool.start_workers(workers)
        while pool.busy():
            yield from pool.collect()
    finally:
        pool.close()


# -- Ray ----------------------------------------------------------------------------------------
def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SeglibError(f"--engine ray needs Ray, which is not installed; install it with "
                          f"`{INSTALL_RAY}`") from None
    return ray


def ray_connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join ``address`` (or start a local Ray instance); True when this call started Ray.

    A local instance gets the node address 127.0.0.1 and no dashboard. When Ray is already
    initialised in this process (e.g. by a notebook), that session is used as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address:
        probe_address(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
              "configure_logging": True}
    try:
        if address is None:
            ray.init(address="local", num_cpus=num_cpus or cpu_count(),
                     _node_ip_address="127.0.0.1", **common)
        else:
            ray.init(address=address, **common)
    except Exception as exc:  # noqa: BLE001 - Ray raises bare Exception when its node times out
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if address:
            raise SeglibError(f"cannot join the Ray cluster at {address} ({first}); check "
                              "--address (start a cluster with `ray start --head`)") from None
        raise SeglibError(f"cannot start a local Ray instance ({first}); on a busy machine its "
                          "agents can start too slowly: retry, or start one with `ray start "
                          "--head` and pass --address auto") from None
    return True


PROBE_SECONDS = 5.0


def probe_address(address: str, seconds: float = PROBE_SECONDS) -> None:
    """Raise one line at once when nothing answers at a ``HOST:PORT`` (or ``ray://HOST:PORT``)
    cluster address, instead of Ray's minutes of retries; ``auto`` is left to Ray."""
    import socket

    text = address.strip()
    if text == "auto":
        return
    host, sep, port = text.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SeglibError(f"--address {address}: not HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise SeglibError(f"cannot join the Ray cluster at {address}: nothing answers there "
                          f"({exc.strerror or exc}); check --address (start a cluster with "
                          "`ray start --head`)") from None


def ray_slots(gpu: bool) -> tuple[int, float]:
    """Actors the cluster can hold at once and the GPUs each one asks for."""
    ray = import_ray()
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    if gpu and gpus:
        return gpus, 1.0
    return max(1, int(res.get("CPU", 1))), 0.0


class _RayWorker:
    """A Ray actor: ``setup`` once, then ``fn`` per item (errors returned, not raised)."""

    def __init__(self, fn: Callable[..., Any], setup: Callable[[], Any] | None,
                 threads: int) -> None:
        _limit_threads(threads)
        self.fn, self.has_state, self.error = fn, setup is not None, None
        self.state = None
        try:
            self.state = setup() if setup is not None else None
        except Exception as exc:  # noqa: BLE001 - given to the driver by ready()
            self.error = _picklable_error(exc)

    def ready(self) -> BaseException | None:
        return self.error

    def run(self, item: Any) -> tuple[str, Any]:
        try:
            return "ok", _call(self.fn, self.state, self.has_state, item)
        except Exception as exc:  # noqa: BLE001 - raised again by the driver
            return "raise", _picklable_error(exc)


def _first_line(exc: BaseException) -> str:
    """The first line of an error's words, at most 200 characters ("" when it has none)."""
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""


class _RayPool:
    """The driver's side of a Ray run: the actors, the items still to do and the ones running.

    Each actor holds at most one item; :meth:`collect` hands out the outcomes of the items
    that finished and gives their actor the next item (a new actor when one died).
    """

    def __init__(self, ray: Any, remote: Any, fn: Callable[..., Any],
                 setup: Callable[[], Any] | None, *, actors: list[Any]) -> None:
        self.ray, self.remote, self.fn, self.setup = ray, remote, fn, setup
        self.actors = actors  # every actor made, for the caller to kill at the end
        self.todo: Iterator[tuple[int, Any]] = iter(())
        self.running: dict[Any, tuple[Any, tuple[int, Any]]] = {}  # ref -> (actor, item)

    def ready(self, group: list[Any]) -> None:
        """Wait until the actors are set up; raise a setup error as it was raised."""
        from ray.exceptions import RayActorError

        try:
            errors = self.ray.get([a.ready.remote() for a in group])
        except RayActorError as exc:  # the worker process could not even start
            raise SeglibError(f"a Ray worker could not start ({_first_line(exc)}); install the "
                              f"same seglib on every node ({INSTALL_RAY})") from None
        for err in errors:
            if err is not None:
                raise err

    def start(self, items: Iterable[Any], *, n: int) -> None:
        """Up to ``n`` actors, one per item while there are items, set up, each given its
        first item."""
        self.todo = iter(enumerate(items))
        first = list(itertools.islice(self.todo, n))
        self.actors.extend(self.remote.remote(self.fn, self.setup, 1) for _ in first)
        self.ready(self.actors)
        for a, nxt in zip(list(self.actors), first, strict=True):
            self.running[a.run.remote(nxt[1])] = (a, nxt)

    def new_actor(self) -> Any:
        """One more actor, set up (in place of one that died)."""
        actor = self.remote.remote(self.fn, self.setup, 1)
        self.actors.append(actor)
        self.ready([actor])
        return actor

    def feed(self, actor: Any) -> None:
        """Give ``actor`` the next item, if one is left."""
        nxt = next(self.todo, None)
        if nxt is not None:
            self.running[actor.run.remote(nxt[1])] = (actor, nxt)

    def collect(self) -> Iterator[Outcome]:
        """Wait for an item to finish; yield its outcome and give its actor the next item."""
        from ray.exceptions import RayActorError

        done, _ = self.ray.wait(list(self.running), num_returns=1)
        for ref in done:
            actor, (index, item) = self.running.pop(ref)
            try:
                kind, value = self.ray.get(ref)
            except RayActorError as exc:
                yield Outcome(item, error=f"its Ray worker died on it, also when Ray retried "
                                          f"it ({_first_line(exc)}); run the command again to "
                                          f"retry it", index=index)
                self.ray.kill(actor, no_restart=True)
                self.actors.remove(actor)
                self.feed(self.new_actor())
                continue
            if kind == "raise":
                raise value
            yield Outcome(item, value, index=index)
            self.feed(actor)


def _ray_map(fn: Callable[..., Any], items: Iterable[Any], workers: int | None,
             address: str | None, setup: Callable[[], Any] | None, gpu: bool,
             retries: int) -> Iterator[Outcome]:
    ray = import_ray()  # fails at once, not at the first next()
    return _ray_iter(ray, fn, items, workers, address, setup, gpu, retries)


def _ray_iter(ray: Any, fn: Callable[..., Any], items: Iterable[Any], workers: int | None,
              address: str | None, setup: Callable[[], Any] | None, gpu: bool,
              retries: int) -> Iterator[Outcome]:
    started = ray_connect(address)  # a local instance gets this machine's cores, not N
    actors: list[Any] = []
    try:
        slots, num_gpus = ray_slots(gpu)
        remote = ray.remote(_RayWorker).options(
            num_cpus=1, num_gpus=num_gpus, max_restarts=retries, max_task_retries=retries)
        pool = _RayPool(ray, remote, fn, setup, actors=actors)
        pool.start(items, n=min(workers or slots, slots))  # and never more than the items
        while pool.running:
            yield from pool.collect()
    finally:
        _ray_release(ray, actors, started=started)


def _ray_release(ray: Any, actors: list[Any], *, started: bool) -> None:
    """Kill the run's actors; shut Ray down when the run started it."""
    for a in actors:
        try:
            ray.kill(a, no_restart=True)
        except Exception:  # noqa: BLE001, S110 - already gone
            pass
    if started:
        ray.shutdown()


__all__ = ["ENGINES", "Outcome", "map_photos", "preloaded", "parse_workers", "probe_address",
           "import_ray", "ray_connect", "ray_slots", "cpu_count"]
