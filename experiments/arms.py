"""Ablation arms: what each arm turns on, and the one chain it trains with.

An arm is a set of augmentations (:mod:`experiments.augmentations`) under a level
normalisation: ``baseline`` (none), a registered name (``time_mask``), ``all`` (the
config's ``augmentations``), ``all-minus-X``, or a ``+``-joined combination
(``noise+gain``); ``norm:<mode>`` is no augmentation with another normalisation, so
that normalisations are compared in one ablation. Shorthands: ``alone`` (each one
alone), ``loo`` (each ``all-minus-X``), ``norms`` (each ``norm:<mode>``),
``default`` (``baseline``, ``alone``, ``all``, ``trivial``, ``loo``).

:func:`build_arm` builds an arm's chain, one :class:`augkit.Compose`, from the
``frontend`` and ``ablation`` config groups::

    [waveform normaliser] -> waveform steps -> mel (power) -> spectrogram steps -> scale
    -> [features normaliser] -> features steps -> targets steps (Mixup)

The normaliser (``frontend.normalize``, :data:`experiments.config.NORMALIZE_MODES`)
is deterministic and runs in training and evaluation alike, for every arm:
``baseline`` is no augmentation with the run's normalisation, the strongest simple
baseline. :func:`cancelled_arms` measures which arms the normalisation undoes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import augkit as ak

from .augmentations import AUGMENTATIONS, DB_SCALE, WHERE, Context, build_augmentation
from .config import NORMALIZE_MODES, AblationConfig, FrontendConfig

#: Where each normaliser goes: a waveform one first, a features one right after the scale.
NORMALIZE_WHERE = {"max": "features", "standardize": "features", "freq": "features",
                   "lufs": "waveform"}


def normalizer(mode: str, *, sample_rate: int, n_mels: int, target_lufs: float = -23.0
               ) -> nn.Module | None:
    """The module of normalisation ``mode`` (``None`` for ``"none"``)."""
    if mode == "none":
        return None
    if mode == "max":
        return ak.MaxNormalize()
    if mode == "standardize":
        return ak.Standardize()
    if mode == "freq":
        return ak.FrequencyStandardize(n_mels)
    if mode == "lufs":
        return ak.LoudnessNormalize(sample_rate, target_lufs=target_lufs)
    raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_MODES)}, got {mode!r}")


class Clamp(nn.Module):
    """The tutorial's scale: the power mel clamped at ``min`` (no log)."""

    def __init__(self, min: float = 1e-10) -> None:
        super().__init__()
        self.min = min

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, min=self.min)


@dataclass
class Arm:
    """One arm, built: its name, the augmentations it turns on, its normalisation, and
    its chain (crop waveforms ``(B, 1, T)`` -> model input ``(B, 1, n_mels, frames)``)."""

    name: str
    augmentations: list[str]
    normalize: str
    chain: ak.Compose


def build_arm(arm: str, frontend: FrontendConfig, ablation: AblationConfig,
              num_classes: int) -> Arm:
    """Build ``arm``'s chain from the ``frontend`` and ``ablation`` config groups.

    In ``eval()`` only the normaliser (step ``"normalize"``, if any), the mel and the
    scale run; with ``target=`` the chain also returns soft targets ``(B, num_classes)``.
    A ``"freq"`` normaliser needs its statistics fitted
    (:func:`experiments.training.trainer.fit_normalizer`) before use.
    """
    names = arm_augmentations(arm, ablation.augmentations)
    normalize = arm_normalize(arm, frontend.normalize)
    ctx = Context(frontend.sample_rate, num_classes, ablation.augment, ablation.noise_dir,
                  ablation.ir_dir)
    placed: dict[str, list[tuple[str, nn.Module]]] = {w: [] for w in WHERE}
    for name in names:
        where, module = build_augmentation(name, ablation.augment.get(name), ctx)
        placed[where].append((name, module))
    mel = ak.MelFrontend(frontend.sample_rate, n_fft=frontend.n_fft,
                         hop_length=frontend.hop_length, n_mels=frontend.n_mels,
                         f_min=frontend.f_min, f_max=frontend.f_max, log=None)
    scale = (ak.AmplitudeToDB(top_db=frontend.top_db, scale=DB_SCALE)
             if frontend.scale == "db" else Clamp(1e-10))
    module = normalizer(normalize, sample_rate=frontend.sample_rate, n_mels=frontend.n_mels,
                        target_lufs=frontend.target_lufs)
    norm = [] if module is None else [("normalize", module)]
    first = NORMALIZE_WHERE.get(normalize) == "waveform"
    chain = ak.Compose([*(norm if first else []), *placed["waveform"], ("mel", mel),
                        *placed["spectrogram"], ("scale", scale), *([] if first else norm),
                        *placed["features"], *placed["targets"]], num_classes=num_classes)
    return Arm(arm, names, normalize, chain)


def arm_normalize(arm: str, normalize: str) -> str:
    """The normalisation ``arm`` trains with: ``<mode>`` for ``norm:<mode>``, else the
    run's ``normalize``."""
    return arm[len("norm:"):] if arm.startswith("norm:") else normalize


def unnormalized_features(chain: ak.Compose, wave: Tensor) -> Tensor:
    """``chain``'s features without its normaliser (eval mode), to fit ``"freq"`` on."""
    chain.eval().disable("normalize")
    try:
        return chain(wave)
    finally:
        chain.enable("normalize")


def forced_on(arm: Arm) -> ak.Compose:
    """A copy of ``arm``'s chain with every augmentation applied to every example (p=1)."""
    chain = copy.deepcopy(arm.chain)
    for name in arm.augmentations:
        if hasattr(chain[name], "p"):
            chain[name].p = 1.0
    return chain


@torch.no_grad()
def cancelled_arms(arms: list[Arm], frontend: FrontendConfig, ablation: AblationConfig,
                   crop_seconds: float = 1.0) -> list[str]:
    """The arms whose augmentations the run's normalisation undoes exactly.

    Measured, not assumed: each arm's chain, with every augmentation forced on
    (:func:`forced_on`), runs on a batch of noise at levels from -40 to 0 dBFS and is
    compared with the baseline's chain; an arm whose model input is the same to 1e-4
    (in the features' units) is cancelled, e.g. ``gain`` under ``max`` or
    ``standardize``. ``norm:`` arms and ``baseline`` are never listed.
    """
    num_classes = arms[0].chain.num_classes if arms else 2
    g = torch.Generator().manual_seed(0)
    n = int(round(min(crop_seconds, 1.0) * frontend.sample_rate))
    level = torch.tensor([1.0, 0.3, 0.1, 0.01]).view(4, 1, 1)
    wave = level * torch.randn(4, 1, n, generator=g).clamp(-3, 3) / 3
    base = build_arm("baseline", frontend, ablation, num_classes).chain
    if frontend.normalize == "freq":
        base["normalize"].fit(unnormalized_features(base, wave))
    ref = base.eval()(wave)
    out = []
    for arm in arms:
        if not arm.augmentations or arm.name.startswith("norm:"):
            continue
        chain = forced_on(arm)
        if frontend.normalize == "freq":
            chain["normalize"].load_state_dict(base["normalize"].state_dict())
        x = chain.train()(wave, generator=torch.Generator().manual_seed(1))
        if x.shape == ref.shape and torch.allclose(x, ref, rtol=0, atol=1e-4):
            out.append(arm.name)
    return out


def features_for_display(x: Tensor, scale: str, normalize: str) -> tuple[Tensor, str]:
    """A chain's features ``(..., F, T)`` in the units a picture shows, and their name.

    Decibels where the features are decibels (``x / DB_SCALE``; the tutorial's clamped
    power as ``10 log10``); a standardised level where the normaliser standardised them.
    """
    if normalize in ("standardize", "freq"):
        return x, "standardised level (z-score of the dB features)"
    if scale == "clamp":
        return 10.0 * torch.log10(x.clamp_min(1e-10)), "dB (power mel, 10 log10)"
    if normalize == "max":
        return x / DB_SCALE, "dB re each example's maximum"
    return x / DB_SCALE, "dB"


def expand_arms(tokens: list[str], augmentations: list[str]) -> list[str]:
    """Expand shorthands and validate arm names; order kept, duplicates dropped."""
    unknown = [a for a in augmentations if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown} in 'augmentations'; "
                         f"registered: {sorted(AUGMENTATIONS)}")
    alone, loo = list(augmentations), [f"all-minus-{a}" for a in augmentations]
    short = {"alone": alone, "loo": loo, "norms": [f"norm:{m}" for m in NORMALIZE_MODES],
             "default": ["baseline", *alone, "all", "trivial", *loo]}
    out: list[str] = []
    for tok in tokens:
        for arm in short.get(tok, [tok]):
            arm_augmentations(arm, augmentations)  # validates
            if arm not in out:
                out.append(arm)
    if not out:
        raise ValueError("no arms to run")
    return out


def arm_augmentations(arm: str, augmentations: list[str]) -> list[str]:
    """The augmentations an arm turns on."""
    if arm == "baseline":
        return []
    if arm.startswith("norm:"):
        mode = arm[len("norm:"):]
        if mode not in NORMALIZE_MODES:
            raise ValueError(f"arm {arm!r}: normalisation {mode!r} is not one of "
                             f"{', '.join(NORMALIZE_MODES)}")
        return []
    if arm == "all":
        return list(augmentations)
    if arm.startswith("all-minus-"):
        drop = arm[len("all-minus-"):]
        if drop not in augmentations:
            raise ValueError(f"arm {arm!r}: {drop!r} is not in augmentations {augmentations}")
        return [a for a in augmentations if a != drop]
    names = arm.split("+")
    bad = [n for n in names if n not in AUGMENTATIONS]
    if bad:
        valid = ["baseline", "all", "all-minus-<aug>", "norm:<mode>", "alone", "loo", "norms",
                 "default", *sorted(AUGMENTATIONS)]
        raise ValueError(f"unknown arm {arm!r}; valid arms: {', '.join(valid)}")
    return names

