"""Ablation arms: one table entry per augmentation, and the chain an arm trains with.

An augmentation is data: its transform, where in the chain it goes, and its
default settings (:data:`AUGMENTATIONS`). Settings are overridden per run with
``--set augment.<name>.<argument>=value`` or a config file's
``"augment": {"<name>": {...}}``; ``where`` is a setting too, and ``null``
removes a default (``{"snr_db": null, "std": 0.01}``).

The chain (:func:`build_chain`) is one :class:`augkit.Compose`::

    waveform steps -> mel (power) -> spectrogram steps -> scale -> features steps
    -> targets steps (Mixup)

An arm is a set of augmentations: ``baseline`` (none), a registered name
(``time_mask``), ``all`` (the config's ``augmentations``), ``all-minus-X``, or a
``+``-joined combination (``noise+gain``). Shorthands: ``alone`` (each one
alone), ``loo`` (each ``all-minus-X``), ``default`` (``baseline``, ``alone``,
``all``, ``trivial``, ``loo``).

``trivial`` is :class:`augkit.TrivialAugment` over the waveform arms of
:data:`TRIVIAL_OPS` (each example gets ``num_ops`` of them, each at its arm's
settings for the run, with ``p=1``): one arm of its own, not part of ``all``. ``--set
augment.trivial.num_ops=2`` (or ``[1,3]``) and ``--set
augment.trivial.ops=gain,noise`` change it.

To make a new transform an arm, add one line to :data:`AUGMENTATIONS`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

import augkit as ak

from .banks import background_noise_arm, reverb_arm

#: Where an augmentation can sit in the chain, in chain order.
WHERE = ("waveform", "spectrogram", "features", "targets")

#: The model sees per-example decibels divided by 20 (20 dB per unit): with the
#: 80 dB ``top_db`` floor the inputs span 4 units below each example's maximum,
#: values of order one as for normalised images, which is what the presets'
#: learning rates and weight decay were tuned for.
DB_SCALE = 1.0 / 20.0


@dataclass(frozen=True)
class Context:
    """What a builder may need besides its settings."""

    sample_rate: int
    num_classes: int
    #: What the features hold after the scale step: ``"db"`` or ``"clamp"`` (power).
    scale: str
    #: Folders of noise recordings and room impulse responses (``--noise-dir``,
    #: ``--ir-dir``) for the ``background_noise`` and ``reverb`` arms; ``None``:
    #: their generated banks.
    noise_dir: str | None = None
    ir_dir: str | None = None
    #: The run's per-augmentation settings (config ``augment``): the ``trivial`` arm
    #: builds its ops with them, so ``augment.gain.gain_db`` also sets its gain op.
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Augmentation:
    """One ablation arm's transform: how to build it, where it goes, its defaults.

    ``transform`` is called with the settings as keyword arguments, plus
    ``sample_rate``, ``num_classes`` or ``context`` (the :class:`Context`) when its
    signature names them.
    """

    transform: Callable[..., nn.Module]
    where: str
    defaults: dict[str, Any]


def context_for(cfg: Any, sample_rate: int, num_classes: int) -> Context:
    """The :class:`Context` of a run of ``cfg`` (an ``experiments.config.Config``) on data
    at ``sample_rate`` Hz with ``num_classes`` classes."""
    return Context(sample_rate, num_classes, cfg.scale, cfg.noise_dir, cfg.ir_dir, cfg.augment)


def below_nyquist(cls: type[nn.Module], *freq_args: str) -> Callable[..., nn.Module]:
    """A builder for ``cls`` whose frequency ranges are capped at 0.45 x the sample rate.

    The catalogue's default ranges assume 16 kHz or more; at 8 kHz (FSDD) a
    7.5 kHz cutoff does not exist, so the arm uses what the rate allows.
    """

    def build(sample_rate: int, **settings: Any) -> nn.Module:
        cap = 0.45 * sample_rate
        for name in freq_args:
            if name in settings:
                lo, hi = settings[name]
                settings[name] = (min(lo, cap), min(hi, cap))
        return cls(sample_rate=sample_rate, **settings)

    build.__name__ = build.__qualname__ = cls.__name__
    return build


#: The recording-condition arms the ``trivial`` arm chooses from (its ``ops`` setting).
TRIVIAL_OPS = ("gain", "noise", "colored_noise", "lowpass", "highpass", "bandstop", "reverb",
               "pitch_shift", "speed", "shift")


def trivial_arm(context: Context, ops: tuple[str, ...] | str = TRIVIAL_OPS,
                **settings: Any) -> ak.TrivialAugment:
    """:class:`augkit.TrivialAugment` over waveform arms, each built by its own entry, ``p=1``.

    Args:
        context: The run's :class:`Context` (the ops' builders get it).
        ops: Waveform arm names, a list or ``"a,b"``. (Default: :data:`TRIVIAL_OPS`)
        **settings: Passed to :class:`augkit.TrivialAugment` (``num_ops``, ``p``, ...).
    """
    names = [n.strip() for n in ops.split(",")] if isinstance(ops, str) else list(ops)
    wave = [n for n, e in AUGMENTATIONS.items() if e.where == "waveform" and n != "trivial"]
    bad = [n for n in names if n not in wave]
    if bad:
        raise ValueError(f"ops {bad} are not waveform arms; choose from {wave}")
    def op(name: str) -> nn.Module:
        own = {k: v for k, v in context.augment.get(name, {}).items() if k != "where"}
        return build_augmentation(name, {**own, "p": 1.0}, context)[1]

    return ak.TrivialAugment([(n, op(n)) for n in names], **settings)


AUGMENTATIONS: dict[str, Augmentation] = {
    # On dB features, masks fill with each example's mean, as SpecAugment does on
    # log-mels. Filling with silence (the top_db floor, 80 dB below the loudest bin)
    # draws stripes far below any content: on the quick preset that cost the `all`
    # arm about 25 points of accuracy (23% vs 50% test, seed 0).
    "time_mask": Augmentation(ak.TimeMasking, "features",
                              dict(max_width=20, num_masks=2, value="mean")),
    "freq_mask": Augmentation(ak.FrequencyMasking, "features",
                              dict(max_width=12, num_masks=2, value="mean")),
    "noise": Augmentation(ak.GaussianNoise, "waveform", dict(snr_db=(10.0, 40.0), p=0.5)),
    "gain": Augmentation(ak.Gain, "waveform", dict(gain_db=(-12.0, 12.0), p=0.5)),
    "shift": Augmentation(ak.TimeShift, "waveform", dict(max_shift=0.25, p=0.5)),
    "polarity": Augmentation(ak.PolarityInversion, "waveform", dict(p=0.5)),
    "mixup": Augmentation(ak.Mixup, "targets", dict(alpha=0.4, p=1.0)),
    # The batched catalogue (augkit 0.2).
    "lowpass": Augmentation(below_nyquist(ak.LowPassFilter, "cutoff_hz"), "waveform",
                            dict(cutoff_hz=(150.0, 7500.0), p=0.5)),
    "highpass": Augmentation(below_nyquist(ak.HighPassFilter, "cutoff_hz"), "waveform",
                             dict(cutoff_hz=(20.0, 2400.0), p=0.5)),
    "bandpass": Augmentation(below_nyquist(ak.BandPassFilter, "center_hz"), "waveform",
                             dict(center_hz=(200.0, 4000.0), bandwidth_fraction=(0.5, 1.99),
                                  p=0.5)),
    "bandstop": Augmentation(below_nyquist(ak.BandStopFilter, "center_hz"), "waveform",
                             dict(center_hz=(200.0, 4000.0), bandwidth_fraction=(0.5, 1.99),
                                  p=0.5)),
    "colored_noise": Augmentation(ak.ColoredNoise, "waveform",
                                  dict(snr_db=(3.0, 30.0), f_decay=(-2.0, 2.0), p=0.5)),
    # --noise-dir / --ir-dir when given, else generated banks (experiments/banks.py).
    "background_noise": Augmentation(background_noise_arm, "waveform",
                                     dict(snr_db=(3.0, 30.0), p=0.5)),
    "reverb": Augmentation(reverb_arm, "waveform", dict(rt60=(0.1, 1.0), p=0.5)),
    "pitch_shift": Augmentation(ak.PitchShift, "waveform", dict(semitones=(-4.0, 4.0), p=0.5)),
    "time_stretch": Augmentation(ak.TimeStretch, "waveform", dict(rate=(0.8, 1.25), p=0.5)),
    "speed": Augmentation(ak.Speed, "waveform", dict(factor=(0.9, 1.1), p=0.5)),
    "peak_normalize": Augmentation(ak.PeakNormalize, "waveform", dict(p=0.5)),
    "time_reversal": Augmentation(ak.TimeReversal, "waveform", dict(p=0.5)),
    "time_warp": Augmentation(ak.TimeWarp, "features", dict(max_warp=5, p=0.5)),
    "resized_crop": Augmentation(ak.RandomResizedCrop, "features",
                                 dict(virtual_scale=(1.0, 1.5), freq_scale=(0.6, 1.5),
                                      time_scale=(0.6, 1.5), p=0.5)),
    # FilterAugment's band gains are in the features' units: +-6 dB is +-6 * DB_SCALE.
    "filter_augment": Augmentation(ak.FilterAugment, "features",
                                   dict(db_range=(-6 * DB_SCALE, 6 * DB_SCALE), n_bands=(3, 6),
                                        mode="linear", p=0.5)),
    # One arm of its own (not in `all`): each example gets num_ops of TRIVIAL_OPS.
    "trivial": Augmentation(trivial_arm, "waveform", dict(num_ops=1, p=1.0)),
}


def settings(name: str, overrides: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(where, keyword arguments)`` of augmentation ``name`` after ``overrides``."""
    entry = AUGMENTATIONS[name]
    merged = {**entry.defaults, **(overrides or {})}
    where = merged.pop("where", entry.where)
    if where not in WHERE:
        raise ValueError(f"augment.{name}.where must be one of {WHERE}, got {where!r}")
    return where, {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()
                   if v is not None}


def build_augmentation(name: str, overrides: dict[str, Any] | None, ctx: Context
                       ) -> tuple[str, nn.Module]:
    """Build one augmentation; errors name ``augment.<name>``."""
    where, kwargs = settings(name, overrides)
    build = AUGMENTATIONS[name].transform
    accepted = inspect.signature(build).parameters
    for key in ("sample_rate", "num_classes", "context"):
        if key in accepted and key not in kwargs:
            kwargs[key] = ctx if key == "context" else getattr(ctx, key)
    try:
        return where, build(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"augment.{name}: {e}") from None


class Clamp(nn.Module):
    """The tutorial's scale: the power mel clamped at ``min`` (no log)."""

    def __init__(self, min: float = 1e-10) -> None:
        super().__init__()
        self.min = min

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, min=self.min)


def build_chain(names: list[str], overrides: dict[str, dict[str, Any]], ctx: Context, *,
                n_fft: int, hop_length: int, n_mels: int, f_min: float = 0.0,
                f_max: float | None = None, top_db: float = 80.0) -> ak.Compose:
    """The chain for an arm: crop waveforms ``(B, 1, T)`` -> model input ``(B, 1, n_mels, frames)``.

    In ``eval()`` only the mel and the scale run; with ``target=`` it also returns
    soft targets ``(B, K)``.
    """
    placed: dict[str, list[tuple[str, nn.Module]]] = {w: [] for w in WHERE}
    for name in names:
        where, module = build_augmentation(name, overrides.get(name), ctx)
        placed[where].append((name, module))
    mel = ak.MelFrontend(ctx.sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                         f_min=f_min, f_max=f_max, log=None)
    scale = (ak.AmplitudeToDB(top_db=top_db, scale=DB_SCALE) if ctx.scale == "db"
             else Clamp(1e-10))
    return ak.Compose([*placed["waveform"], ("mel", mel), *placed["spectrogram"],
                       ("scale", scale), *placed["features"], *placed["targets"]],
                      num_classes=ctx.num_classes)


def expand_arms(tokens: list[str], augmentations: list[str]) -> list[str]:
    """Expand shorthands and validate arm names; order kept, duplicates dropped."""
    unknown = [a for a in augmentations if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown} in 'augmentations'; "
                         f"registered: {sorted(AUGMENTATIONS)}")
    alone, loo = list(augmentations), [f"all-minus-{a}" for a in augmentations]
    short = {"alone": alone, "loo": loo, "default": ["baseline", *alone, "all", "trivial", *loo]}
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
