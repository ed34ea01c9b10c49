"""Augmentation registry, ablation arms, and the train-time pipeline they build.

An arm is a set of augmentations: ``baseline`` (none), a registered name
(``time_mask``), ``all`` (the config's ``augmentations``), ``all-minus-X``, or a
``+``-joined combination (``noise+gain``). Shorthands: ``alone`` (each one
alone), ``loo`` (each ``all-minus-X``), ``default`` (``baseline``, ``alone``,
``all``, ``loo``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import augkit as ak
from augkit import functional as AF

from .config import AugmentConfig, Config

STAGES = ("wave", "spec", "feature", "batch")


@dataclass(frozen=True)
class Augmentation:
    """Where an augmentation runs (a stage of :data:`STAGES`) and how to build it."""

    name: str
    stage: Callable[[Config], str]
    build: Callable[[AugmentConfig], nn.Module]


AUGMENTATIONS: dict[str, Augmentation] = {}


def register_augmentation(name: str, stage: str | Callable[[Config], str]):
    """Register ``build(augment_cfg) -> module`` under ``name`` for ``stage``.

    Stages: ``wave`` (waveform), ``spec`` (linear power mel), ``feature`` (the
    scaled model input), ``batch`` (input and targets, e.g. mixup). ``stage`` may
    be a function of the :class:`Config` (e.g. noise on the waveform or the power
    mel).
    """

    def deco(build):
        if name in AUGMENTATIONS:
            raise ValueError(f"augmentation {name!r} is registered twice")
        st = stage if callable(stage) else (lambda c, s=stage: s)
        AUGMENTATIONS[name] = Augmentation(name, st, build)
        return build

    return deco


def _domain(field: str):
    return lambda c: "wave" if getattr(c.augment, field) == "waveform" else "spec"


def _mask_stage(c: Config) -> str:
    # On a dB input, masks go on the scaled features (SpecAugment masks log-mels);
    # the tutorial masks its power mel (fill 0 = silence).
    return "feature" if c.scale == "db" else "spec"


def _mask_value(a: AugmentConfig) -> float | str:
    return a.mask_value if a.mask_value == "mean" else float(a.mask_value)


@register_augmentation("time_mask", _mask_stage)
def _time_mask(a: AugmentConfig):
    return ak.TimeMasking(a.time_mask_width, a.time_mask_num, _mask_value(a), p=a.mask_p)


@register_augmentation("freq_mask", _mask_stage)
def _freq_mask(a: AugmentConfig):
    return ak.FrequencyMasking(a.freq_mask_width, a.freq_mask_num, _mask_value(a), p=a.mask_p)


@register_augmentation("noise", _domain("noise_domain"))
def _noise(a: AugmentConfig):
    if a.noise_domain == "waveform":
        return ak.GaussianNoise(snr_db=a.noise_snr_db, p=a.noise_p)
    return ak.GaussianNoise(std=a.noise_std, p=a.noise_p)


@register_augmentation("gain", _domain("gain_domain"))
def _gain(a: AugmentConfig):
    if a.gain_domain == "waveform":
        return ak.Gain(gain_db=a.gain_db, p=a.gain_p)
    return ak.Gain(factor=a.gain_factor, p=a.gain_p)


@register_augmentation("shift", "wave")
def _shift(a: AugmentConfig):
    return ak.TimeShift(a.shift_max, p=a.shift_p)


@register_augmentation("polarity", "wave")
def _polarity(a: AugmentConfig):
    return ak.PolarityInversion(p=a.polarity_p)


@register_augmentation("mixup", "batch")
def _mixup(a: AugmentConfig):
    return ak.Mixup(a.mixup_alpha, p=a.mixup_p)


def expand_arms(tokens: list[str], augmentations: list[str]) -> list[str]:
    """Expand shorthands and validate arm names; order kept, duplicates dropped."""
    unknown = [a for a in augmentations if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown} in 'augmentations'; "
                         f"registered: {sorted(AUGMENTATIONS)}")
    alone, loo = list(augmentations), [f"all-minus-{a}" for a in augmentations]
    short = {"alone": alone, "loo": loo, "default": ["baseline", *alone, "all", *loo]}
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
    """The augmentations an arm turns on, in pipeline order."""
    if arm == "baseline":
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
        valid = ["baseline", "all", "all-minus-<aug>", "alone", "loo", "default",
                 *sorted(AUGMENTATIONS)]
        raise ValueError(f"unknown arm {arm!r}; valid arms: {', '.join(valid)}")
    return names


class Pipeline(nn.Module):
    """Waveform crop batch -> model input, with an arm's augmentations.

    ``wave`` augmentations run on the waveform ``(B, 1, T)``, then the mel
    frontend (linear power), then ``spec`` augmentations on the power mel
    ``(B, 1, n_mels, frames)``, then the scale (per-example dB / 20, or the
    tutorial's clamp), then ``feature`` augmentations on the model input. With
    the dB scale the SpecAugment masks are ``feature`` augmentations filled with
    each example's mean (``augment.mask_value``), as in SpecAugment; masking a
    dB input with silence (the ``top_db`` floor) draws stripes far below any
    content, and on the quick preset cost about 20 points of accuracy. ``batch``
    augmentations (mixup) act on the model input and the targets. In ``eval()``
    mode only the frontend and scale run.
    """

    def __init__(self, cfg: Config, names: list[str]) -> None:
        super().__init__()
        a = cfg.augment
        by_stage = {s: [] for s in STAGES}
        for n in names:
            aug = AUGMENTATIONS[n]
            by_stage[aug.stage(cfg)].append((n, aug.build(a)))
        self.wave = ak.Compose(by_stage["wave"])
        self.frontend = ak.MelFrontend(cfg.sample_rate, n_fft=cfg.n_fft,
                                       hop_length=cfg.hop_length, n_mels=cfg.n_mels,
                                       f_min=cfg.f_min, f_max=cfg.f_max, log=None)
        self.spec = ak.Compose(by_stage["spec"])
        self.feature = ak.Compose(by_stage["feature"])
        self.mixup = by_stage["batch"][0][1] if by_stage["batch"] else None
        self.scale, self.top_db = cfg.scale, cfg.top_db

    def features(self, wave: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(B, 1, T)`` waveforms -> ``(B, 1, n_mels, frames)`` model input."""
        x = self.wave(wave, generator=generator)
        x = self.spec(self.frontend(x), generator=generator)
        if self.scale == "db":
            x = AF.amplitude_to_db(x, top_db=self.top_db) / 20.0
        else:
            x = torch.clamp(x, min=1e-10)
        return self.feature(x, generator=generator)

    def forward(self, wave: Tensor, target: Tensor, num_classes: int,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Returns ``(model input, targets)``; targets are soft ``(B, K)`` under mixup."""
        x = self.features(wave, generator)
        if self.mixup is not None and self.training:
            self.mixup.num_classes = num_classes
            return self.mixup(x, target, generator=generator)
        return x, target
