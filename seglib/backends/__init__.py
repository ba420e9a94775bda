"""The labeling backends: one registry entry says how to build a backend's proposer.

A proposer turns an RGB photo into :class:`~seglib.masks.candidates.Candidates`. The CLI
(``label --backend``), notebook 01 and the course runner all ask this registry which backend
to use; none of them knows a backend by name. Adding a backend is one module with a
``build_proposer(checkpoint, *, model_type, mode, points_per_side, device)`` function plus one
:data:`BACKENDS` entry (and its optional extra in ``pyproject.toml``).

``auto`` takes the first backend of :data:`AUTO_ORDER` that can run here: a checkpoint
backend when one of its checkpoints is given or found (``$SEGLIB_CHECKPOINT``, then the
usual folders), else the opencv backend, which needs none. The order is the best model
first: SAM 2.1 (``sam2``), then SAM (``sam``, ViT-B/L/H), then the light EdgeTAM
(``edgetam``, the fastest on a CPU), then SlimSAM (``slimsam``), then opencv; within a
backend the smallest checkpoint present is taken (the
fastest on a CPU; ``--model-type`` asks for another). A ``--checkpoint`` given with ``auto``
goes to the first of these whose kind of file it is (a folder: sam2/edgetam/slimsam by its
config.json; a file: sam).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seglib.backends.prompts import Prompter
from seglib.core.errors import SeglibError
from seglib.masks.candidates import Candidates

Proposer = Callable[[np.ndarray], Candidates]
Say = Callable[[str], None]
MODES = ("prompt", "everything")  # the modes of a checkpoint backend (--mode, -p sam_mode)
CLASSICAL = "classical"  # the mode recorded for a backend without modes


@dataclass(frozen=True)
class Backend:
    """One labeling backend.

    ``builder`` is ``"module:function"`` (imported only when the backend is used, so torch
    and its model code load only when needed); ``finder`` (checkpoint backends) is
    ``"module:function"`` returning a checkpoint found on this machine or None; ``get_one``
    says in one line how to get a checkpoint.
    """

    name: str
    builder: str
    modes: tuple[str, ...] = (CLASSICAL,)
    max_side: int = 1024  # photos are read at most this long side
    wants_gpu: bool = False  # a Ray worker of this backend asks for a GPU
    finder: str = ""
    get_one: str = ""
    title: str = ""  # the name said in messages ("SAM"); default: ``name``
    family: str = ""  # model_type in the config.json of a checkpoint folder ("": one file)
    # "module:name" of its Prompter (seglib.backends.prompts): built from the settings
    # (no checkpoint), or wrapping the backend's proposer (checkpoint backends)
    prompter: str = ""

    @property
    def shown(self) -> str:
        return self.title or self.name

    @property
    def needs_checkpoint(self) -> bool:
        return bool(self.finder)

    def find_checkpoint(self, model_type: str | None = None) -> Path | None:
        return _resolve(self.finder)(model_type=model_type) if self.finder else None

    def mode(self, asked: str) -> str:
        """The mode recorded for a run asked for ``asked`` (a backend without modes: its own)."""
        return asked if asked in self.modes else self.modes[0]


BACKENDS: dict[str, Backend] = {
    "sam": Backend(
        "sam", "seglib.backends.sam:build_proposer", modes=MODES, wants_gpu=True,
        finder="seglib.backends.sam_weights:find_checkpoint",
        get_one="python -m seglib weights vit_b", title="SAM",
        prompter="seglib.backends.sam_prompter:SamPrompter"),
    "sam2": Backend(
        "sam2", "seglib.backends.hf_sam:build_sam2", modes=MODES, wants_gpu=True,
        finder="seglib.backends.hf_weights:find_sam2",
        get_one="python -m seglib weights sam2.1_tiny", title="SAM 2.1", family="sam2",
        prompter="seglib.backends.sam_prompter:HfSamPrompter"),
    "edgetam": Backend(
        "edgetam", "seglib.backends.hf_sam:build_edgetam", modes=MODES, wants_gpu=True,
        finder="seglib.backends.hf_weights:find_edgetam",
        get_one="python -m seglib weights edgetam", title="EdgeTAM", family="edgetam",
        prompter="seglib.backends.sam_prompter:HfSamPrompter"),
    "slimsam": Backend(
        "slimsam", "seglib.backends.hf_sam:build_slimsam", modes=MODES, wants_gpu=True,
        finder="seglib.backends.hf_weights:find_slimsam",
        get_one="python -m seglib weights slimsam_77", title="SlimSAM", family="sam",
        prompter="seglib.backends.sam_prompter:HfSamPrompter"),
    "opencv": Backend("opencv", "seglib.backends.opencv:build_proposer",
                      prompter="seglib.backends.prompts:OpencvPrompter"),
}
AUTO_ORDER = ("sam2", "sam", "edgetam", "slimsam", "opencv")  # ``auto`` tries these in order
CHOICES = ("auto", *BACKENDS)


def _resolve(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def get(name: str) -> Backend:
    """The backend ``name``, or a one-line error listing the names."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise SeglibError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}"
                          ) from None


def spec(name: str) -> Backend:
    """The registry entry of ``name``, or the defaults (1024 px, no GPU) for a proposer a
    caller made itself and named ``name`` (a notebook's own function, a test's fake)."""
    return BACKENDS.get(name) or Backend(name, builder="")


@dataclass(frozen=True)
class Choice:
    """The backend a run uses and its checkpoint (None for a backend that needs none)."""

    backend: Backend
    checkpoint: Path | None = None

    @property
    def name(self) -> str:
        return self.backend.name


def choose(name: str = "auto", checkpoint: str | Path | None = None,
           model_type: str | None = None, say: Say | None = None) -> Choice:
    """The backend to use: ``name``, or with ``auto`` the first of :data:`AUTO_ORDER` that
    has what it needs. A checkpoint that was asked for and is missing, or a named checkpoint
    backend with none found, is a one-line error saying how to get one; ``auto`` falling back
    says so through ``say``."""
    given = Path(checkpoint) if checkpoint else None
    names = AUTO_ORDER if name == "auto" else (get(name).name,)
    missing: list[Backend] = []
    for n in names:
        b = BACKENDS[n]
        if not b.needs_checkpoint:
            if missing and say is not None:
                first = missing[0]
                say(f"notice: no {' / '.join(m.shown for m in missing)} checkpoint found"
                    f"{_env_missing()}, using the {n} backend (for {first.shown} labels "
                    f"run `{first.get_one}`)")
            return Choice(b)
        if given is not None:
            if name == "auto" and not _fits(b, given):
                continue
            if not given.exists():
                raise SeglibError(f"{given}: checkpoint file not found; get one with "
                                  f"`{b.get_one}`")
            return Choice(b, given)
        found = b.find_checkpoint(model_type)
        if found is not None:
            return Choice(b, found)
        missing.append(b)
    b = BACKENDS[names[-1]]
    raise SeglibError(f"no {b.shown} checkpoint found{_env_missing()}; get one with "
                      f"`{b.get_one}` or pass --checkpoint PATH")


def _env_missing() -> str:
    """What a "no checkpoint found" line adds when ``$SEGLIB_CHECKPOINT`` names no file
    (:func:`seglib.backends.sam_weights.env_checkpoint_missing`, imported here: it loads
    torch)."""
    from seglib.backends.sam_weights import env_checkpoint_missing

    return env_checkpoint_missing()


def _fits(backend: Backend, path: Path) -> bool:
    """Whether a checkpoint given with ``auto`` is of ``backend``'s kind: a folder whose
    config.json names the backend's ``family``, or anything else for a one-file backend
    (which then says what is wrong with the file)."""
    from seglib.backends.hf_weights import config_family

    family = config_family(path) if path.exists() else None
    return family == backend.family if backend.family else family is None


def fallback() -> Backend:
    """The first backend of :data:`AUTO_ORDER` that needs no checkpoint."""
    return next(BACKENDS[n] for n in AUTO_ORDER if not BACKENDS[n].needs_checkpoint)


def build_proposer(choice: Choice, *, model_type: str | None = None, mode: str = "prompt",
                   points_per_side: int = 32, device: str = "auto") -> Proposer:
    """Load ``choice``'s model now and return its proposer (a worker's ``setup`` calls this
    once per worker)."""
    build = _resolve(choice.backend.builder)
    return build(choice.checkpoint, model_type=model_type, mode=mode,
                 points_per_side=points_per_side, device=device)


def proposer_setup(choice: Choice, **settings: object) -> Callable[[], Proposer]:
    """A picklable ``setup`` that builds ``choice``'s proposer where it runs (each worker
    loads the model once; a checkpoint path must be readable there, docs/scaling.md)."""
    return functools.partial(build_proposer, choice, **settings)


@dataclass(frozen=True)
class Opened:
    """A proposer loaded in this process, with the backend and mode it records."""

    choice: Choice
    proposer: Proposer
    mode: str

    @property
    def name(self) -> str:
        return self.choice.name

    @property
    def model(self) -> str:
        """The short name of the model that makes the candidates (``sam2.1_tiny``,
        ``vit_b``, ``edgetam``); a backend without one: its own name."""
        return str(getattr(self.proposer, "model_name", "") or self.name)

    @property
    def description(self) -> str:
        """One line saying which backend and model make the candidates, e.g.
        ``sam2 backend: sam2.1_tiny (SAM 2.1, transformers), prompt mode, fp32 on cpu``
        (notebook 01 prints it)."""
        said = getattr(self.proposer, "description", "")
        return f"{self.name} backend: {said or f'{self.mode} mode'}"


def open_proposer(name: str = "auto", checkpoint: str | Path | None = None, *,
                  model_type: str | None = None, mode: str = "prompt",
                  points_per_side: int = 32, device: str = "auto",
                  say: Say | None = None) -> Opened:
    """Choose a backend (:func:`choose`) and load its proposer here. With ``auto`` and no
    checkpoint asked for, a checkpoint that cannot be loaded (damaged, another model's) is
    said through ``say`` and the next backend of :data:`AUTO_ORDER` is used."""
    choice = choose(name, checkpoint, model_type, say=say)
    settings = dict(model_type=model_type, mode=mode, points_per_side=points_per_side,
                    device=device)
    try:
        proposer = build_proposer(choice, **settings)
    except SeglibError as exc:
        if name != "auto" or checkpoint or not choice.backend.needs_checkpoint:
            raise  # asked for this checkpoint or this backend: say why and stop
        choice = Choice(fallback())
        if say is not None:
            say(f"notice: {exc}; using the {choice.name} backend this time")
        proposer = build_proposer(choice, **settings)
    return Opened(choice, proposer, choice.backend.mode(mode))


def open_prompter(backend: str = "opencv", checkpoint: str | Path | None = None,
                  **settings: object) -> Prompter:
    """The :class:`~seglib.backends.prompts.Prompter` of ``backend`` (``opencv``: GrabCut,
    no checkpoint; ``sam``/``sam2``/``edgetam``/``slimsam``: the checkpoint given or found,
    else a one-line error saying how to get one; ``auto`` as :func:`choose`). ``settings``
    go to its builder (opencv: ``work_side``, ``iters``; SAM: ``model_type``, ``device``)."""
    choice = choose(backend, checkpoint, settings.get("model_type"))  # type: ignore[arg-type]
    b = choice.backend
    if not b.prompter:
        raise SeglibError(f"the {b.shown} backend answers no prompts; use one of "
                          f"{', '.join(n for n, e in BACKENDS.items() if e.prompter)}")
    make = _resolve(b.prompter)
    if not b.needs_checkpoint:  # no model: the model settings do not apply
        return make(**{k: v for k, v in settings.items() if k not in ("model_type", "device")})
    return make(build_proposer(choice, **settings))  # type: ignore[arg-type]
