"""The augmentations an ablation arm is made of: one table entry each.

An augmentation is data (:class:`Augmentation`): its transform, where in the chain
it goes (:data:`WHERE`), and its default settings (:data:`AUGMENTATIONS`). Settings
are overridden per run with ``--set augment.<name>.<argument>=value`` or a config
file's ``"augment": {"<name>": {...}}``; ``where`` is a setting too, and ``null``
removes a default (``{"snr_db": null, "std": 0.01}``). :func:`build_augmentation`
builds one, with the run's :class:`Context`.

Three entries have builders of their own here: ``background_noise`` and ``reverb``
use the recordings of ``--noise-dir`` / ``--ir-dir`` when given, else banks
generated from a fixed seed (:func:`augkit.banks.colored_noise_bank`,
:func:`augkit.banks.synthetic_room_irs`: synthetic signals that never come from the
training or evaluation data, the same bank for every run and seed; folders and banks
are cached per process); ``trivial`` is :class:`augkit.TrivialAugment` over the
waveform entries of :data:`TRIVIAL_OPS`.

To make a new transform an arm, add one line to :data:`AUGMENTATIONS`.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

import augkit as ak
from augkit.banks import (
    SkippedFilesWarning,
    colored_noise_bank,
    load_audio_folder,
    synthetic_room_irs,
)

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
    #: The run's per-augmentation settings (config ``augment``): the ``trivial`` arm
    #: builds its ops with them, so ``augment.gain.gain_db`` also sets its gain op.
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Folders of noise recordings and room impulse responses (``--noise-dir``,
    #: ``--ir-dir``) for the ``background_noise`` and ``reverb`` arms; ``None``:
    #: their generated banks.
    noise_dir: str | None = None
    ir_dir: str | None = None


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


def below_nyquist(cls: type[nn.Module], *freq_args: str) -> Callable[..., nn.Module]:
    """A builder for ``cls`` whose frequency ranges are capped at 0.45 x the sample rate.

    The catalogue's default ranges assume 16 kHz or more; at 8 kHz (FSDD) a
    7.5 kHz cutoff does not exist, so the arm uses what the rate allows. A band
    (``bandwidth_fraction``) also keeps its upper edge, ``center_hz * (1 + fraction / 2)``,
    below Nyquist: its centre is capped lower.
    """

    def build(sample_rate: int, **settings: Any) -> nn.Module:
        caps = dict.fromkeys(freq_args, 0.45 * sample_rate)
        if "center_hz" in caps and "bandwidth_fraction" in settings:
            widest = max(settings["bandwidth_fraction"]) if isinstance(
                settings["bandwidth_fraction"], tuple) else settings["bandwidth_fraction"]
            caps["center_hz"] = min(caps["center_hz"], 0.999 * sample_rate / 2 / (1 + widest / 2))
        for name, cap in caps.items():
            if name in settings:
                lo, hi = settings[name]
                settings[name] = (min(lo, cap), min(hi, cap))
        return cls(sample_rate=sample_rate, **settings)

    build.__name__ = build.__qualname__ = cls.__name__
    return build


# ---------------------------------------------------------------------------
# Builders of their own: recorded or generated banks, and TrivialAugment


@functools.lru_cache(maxsize=4)
def _loaded(path: str, sample_rate: int) -> tuple[tuple[Tensor, ...], dict[str, list[str]]]:
    """A folder's clips and what its loader skipped (reason -> files), loaded once per
    process; the loader's :class:`~augkit.banks.SkippedFilesWarning` is passed on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = tuple(load_audio_folder(path, sample_rate))
    skipped: dict[str, list[str]] = {}
    for w in caught:
        if isinstance(w.message, SkippedFilesWarning):
            skipped = {k: list(v) for k, v in w.message.skipped.items()}
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return clips, skipped


def _folder(path: str, sample_rate: int) -> tuple[Tensor, ...]:
    return _loaded(path, sample_rate)[0]


def folder_skipped(folder: str, sample_rate: int) -> dict[str, list[str]]:
    """Every file of bank folder ``folder`` its loader skipped, by reason (for config.json)."""
    return _loaded(str(Path(folder).resolve()), sample_rate)[1]


@functools.lru_cache(maxsize=4)
def _noise_bank(n: int, seconds: float, sample_rate: int, seed: int) -> Tensor:
    return colored_noise_bank(n, seconds, sample_rate, seed)


@functools.lru_cache(maxsize=4)
def _ir_bank(n: int, sample_rate: int, rt60: tuple[float, float], seed: int) -> Tensor:
    return synthetic_room_irs(n, sample_rate, rt60=rt60, seed=seed)


def background_noise_arm(context: Context, bank_size: int = 32, bank_seconds: float = 4.0,
                         bank_seed: int = 0, **settings) -> ak.BackgroundNoise:
    """:class:`augkit.BackgroundNoise` over ``context.noise_dir``, else a coloured-noise bank.

    Args:
        context: The run's :class:`Context` (sample rate, folders).
        bank_size: Noises in the generated bank (no folder). (Default: ``32``)
        bank_seconds: Length of each generated noise. (Default: ``4.0``)
        bank_seed: Seed of the generated bank. (Default: ``0``)
        **settings: Passed to :class:`augkit.BackgroundNoise` (``snr_db``, ``p``, ...).
    """
    if context.noise_dir is not None:
        noises = list(_folder(str(Path(context.noise_dir).resolve()), context.sample_rate))
    else:
        noises = _noise_bank(int(bank_size), float(bank_seconds), context.sample_rate,
                             int(bank_seed))
    return ak.BackgroundNoise(noises, sample_rate=context.sample_rate, **settings)


def reverb_arm(context: Context, bank_size: int = 32, rt60: tuple[float, float] = (0.1, 1.0),
               bank_seed: int = 0, **settings) -> ak.ImpulseResponse:
    """:class:`augkit.ImpulseResponse` over ``context.ir_dir``, else synthetic room IRs.

    Args:
        context: The run's :class:`Context` (sample rate, folders).
        bank_size: Impulse responses in the generated bank (no folder). (Default: ``32``)
        rt60: Range of reverberation times of the generated bank, seconds.
            (Default: ``(0.1, 1.0)``)
        bank_seed: Seed of the generated bank. (Default: ``0``)
        **settings: Passed to :class:`augkit.ImpulseResponse` (``p``, ...).
    """
    if context.ir_dir is not None:
        irs = list(_folder(str(Path(context.ir_dir).resolve()), context.sample_rate))
    else:
        irs = _ir_bank(int(bank_size), context.sample_rate,
                       (float(rt60[0]), float(rt60[1])), int(bank_seed))
    return ak.ImpulseResponse(irs, sample_rate=context.sample_rate, **settings)


#: The recording-condition arms the ``trivial`` arm chooses from (its ``ops`` setting).
TRIVIAL_OPS = ("gain", "noise", "colored_noise", "lowpass", "highpass", "bandstop", "reverb",
               "pitch_shift", "speed", "shift")


def op_names(ops: tuple[str, ...] | list[str] | str) -> list[str]:
    """The ``trivial`` arm's ``ops`` setting as a list: a list, or ``"a,b"``."""
    return [n.strip() for n in ops.split(",")] if isinstance(ops, str) else list(ops)


def trivial_arm(context: Context, ops: tuple[str, ...] | str = TRIVIAL_OPS,
                op_settings: dict[str, dict[str, Any]] | None = None,
                **settings: Any) -> ak.TrivialAugment:
    """:class:`augkit.TrivialAugment` over waveform arms, each built by its own entry, ``p=1``.

    Args:
        context: The run's :class:`Context` (the ops' builders get it).
        ops: Waveform arm names, a list or ``"a,b"``. (Default: :data:`TRIVIAL_OPS`)
        op_settings: Settings per op that replace the run's ``augment.<op>`` for this arm
            only: the search's confirmation keeps ``trivial`` at the preset's settings
            while its recipe changes those families. (Default: the run's ``augment``)
        **settings: Passed to :class:`augkit.TrivialAugment` (``num_ops``, ``p``, ...).
    """
    names = op_names(ops)
    wave = [n for n, e in AUGMENTATIONS.items() if e.where == "waveform" and n != "trivial"]
    bad = [n for n in names if n not in wave]
    if bad:
        raise ValueError(f"ops {bad} are not waveform arms; choose from {wave}")

    if op_settings is not None and not (isinstance(op_settings, dict) and all(
            isinstance(v, dict) for v in op_settings.values())):
        raise ValueError("op_settings must map op names to settings, e.g. "
                         '{"colored_noise": {"snr_db": [10, 30]}}')
    unused = sorted(set(op_settings or {}) - set(names))
    if unused:
        raise ValueError(f"op_settings names {unused}, which are not among the ops {names}")
    source = context.augment if op_settings is None else op_settings

    def op(name: str) -> nn.Module:
        own = {k: v for k, v in source.get(name, {}).items() if k != "where"}
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
    # --noise-dir / --ir-dir when given, else generated banks (below).
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
    # EQ, distortion and quantisation, dropouts (augkit 0.3).
    "peaking_eq": Augmentation(below_nyquist(ak.PeakingFilter, "center_hz"), "waveform",
                               dict(center_hz=(50.0, 7500.0), gain_db=(-12.0, 12.0),
                                    q=(0.5, 5.0), p=0.5)),
    "low_shelf": Augmentation(below_nyquist(ak.LowShelfFilter, "cutoff_hz"), "waveform",
                              dict(cutoff_hz=(50.0, 4000.0), gain_db=(-12.0, 12.0),
                                   q=(0.5, 1.0), p=0.5)),
    "high_shelf": Augmentation(below_nyquist(ak.HighShelfFilter, "cutoff_hz"), "waveform",
                               dict(cutoff_hz=(300.0, 7500.0), gain_db=(-12.0, 12.0),
                                    q=(0.5, 1.0), p=0.5)),
    "parametric_eq": Augmentation(
        below_nyquist(ak.ParametricEQ, "center_hz", "low_shelf_hz", "high_shelf_hz"),
        "waveform", dict(n_bands=(1, 4), gain_db=(-6.0, 6.0), center_hz=(50.0, 7500.0),
                         high_shelf_hz=(2000.0, 7000.0), p=0.5)),
    "clipping": Augmentation(ak.Clipping, "waveform",
                             dict(percentile=(0.0, 20.0), mode="hard", p=0.5)),
    "tanh_distortion": Augmentation(ak.TanhDistortion, "waveform",
                                    dict(drive_db=(5.0, 25.0), p=0.5)),
    "bit_crush": Augmentation(ak.BitCrush, "waveform", dict(bit_depth=(6, 12), p=0.5)),
    "mu_law": Augmentation(ak.MuLaw, "waveform", dict(quantization_channels=(16, 256), p=0.5)),
    "aliasing": Augmentation(below_nyquist(ak.Aliasing, "rate_hz"), "waveform",
                             dict(rate_hz=(2000.0, 8000.0), p=0.5)),
    "drop_chunk": Augmentation(ak.DropChunk, "waveform",
                               dict(n_chunks=(1, 5), chunk_length=(100, 1000), fill="zero",
                                    p=0.5)),
    "drop_freq": Augmentation(below_nyquist(ak.DropFreq, "freq_hz"), "waveform",
                              dict(freq_hz=(50.0, 7500.0), n_notches=(1, 3),
                                   width_hz=(100.0, 1000.0), p=0.5)),
    "band_limit": Augmentation(ak.BandLimit, "waveform",
                               dict(bandwidth_hz=(3400.0, 4000.0, 7000.0, 8000.0), p=0.5)),
    "air_absorption": Augmentation(ak.AirAbsorption, "waveform",
                                   dict(distance_m=(10.0, 100.0), p=0.5)),
    "room": Augmentation(ak.RoomSimulator, "waveform",
                         dict(absorption=(0.15, 0.6), max_order=6, rir_seconds=0.5, p=0.5)),
    # Mixing with targets, on the scaled features: one partner permutation per batch.
    "cutmix": Augmentation(ak.CutMix, "targets", dict(mode="time", alpha=1.0, p=1.0)),
    "specmix": Augmentation(ak.SpecMix, "targets", dict(gamma=0.1, max_bands=3, p=1.0)),
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
