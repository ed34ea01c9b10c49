"""Ablation arms: one table entry per augmentation, and the chain an arm trains with.

An augmentation is data: its transform, where in the chain it goes, and its
default settings (:data:`AUGMENTATIONS`). Settings are overridden per run with
``--set augment.<name>.<argument>=value`` or a config file's
``"augment": {"<name>": {...}}``; ``where`` is a setting too, and ``null``
removes a default (``{"snr_db": null, "std": 0.01}``).

The chain (:func:`build_chain`) is one :class:`augkit.Compose`::

    [waveform normaliser] -> waveform steps -> mel (power) -> spectrogram steps -> scale
    -> [features normaliser] -> features steps -> targets steps (Mixup)

The normaliser (config ``normalize``, :data:`NORMALIZE_MODES`) is deterministic and
runs in training and evaluation alike, for every arm: ``baseline`` is no augmentation
with the run's normalisation, the strongest simple baseline. ``norm:<mode>`` arms
(``norm:max``, ``norm:none``, ...) are no augmentation with another mode, so that
normalisations are compared in one ablation.

An arm is a set of augmentations: ``baseline`` (none), a registered name
(``time_mask``), ``all`` (the config's ``augmentations``), ``all-minus-X``, or a
``+``-joined combination (``noise+gain``). Shorthands: ``alone`` (each one
alone), ``loo`` (each ``all-minus-X``), ``norms`` (each ``norm:<mode>``),
``default`` (``baseline``, ``alone``, ``all``, ``trivial``, ``loo``).

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


#: Level normalisations (config ``normalize``, arms ``norm:<mode>``), and where each goes.
NORMALIZE_MODES = ("none", "max", "standardize", "freq", "lufs")
NORMALIZE_WHERE = {"max": "features", "standardize": "features", "freq": "features",
                   "lufs": "waveform"}
#: What each mode does, in words, for summaries.
NORMALIZE_WORDS = {
    "none": "no level normalisation",
    "max": "decibels relative to each example's maximum (librosa's ref=np.max)",
    "standardize": "each example's features standardised (zero mean, unit std)",
    "freq": "each mel band standardised with statistics fitted on the training split",
    "lufs": "each waveform normalised to a target loudness (ITU-R BS.1770 LUFS)",
}


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


class Clamp(nn.Module):
    """The tutorial's scale: the power mel clamped at ``min`` (no log)."""

    def __init__(self, min: float = 1e-10) -> None:
        super().__init__()
        self.min = min

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, min=self.min)


def build_chain(names: list[str], overrides: dict[str, dict[str, Any]], ctx: Context, *,
                n_fft: int, hop_length: int, n_mels: int, f_min: float = 0.0,
                f_max: float | None = None, top_db: float = 80.0, normalize: str = "none",
                target_lufs: float = -23.0) -> ak.Compose:
    """The chain for an arm: crop waveforms ``(B, 1, T)`` -> model input ``(B, 1, n_mels, frames)``.

    In ``eval()`` only the normaliser (step ``"normalize"``, if any), the mel and the
    scale run; with ``target=`` it also returns soft targets ``(B, K)``. A waveform
    normaliser goes first, a features normaliser right after the scale; ``"freq"``
    needs its statistics fitted (:func:`experiments.train.fit_normalizer`) before use.
    """
    placed: dict[str, list[tuple[str, nn.Module]]] = {w: [] for w in WHERE}
    for name in names:
        where, module = build_augmentation(name, overrides.get(name), ctx)
        placed[where].append((name, module))
    mel = ak.MelFrontend(ctx.sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                         f_min=f_min, f_max=f_max, log=None)
    scale = (ak.AmplitudeToDB(top_db=top_db, scale=DB_SCALE) if ctx.scale == "db"
             else Clamp(1e-10))
    module = normalizer(normalize, sample_rate=ctx.sample_rate, n_mels=n_mels,
                        target_lufs=target_lufs)
    norm = [] if module is None else [("normalize", module)]
    first = NORMALIZE_WHERE.get(normalize) == "waveform"
    return ak.Compose([*(norm if first else []), *placed["waveform"], ("mel", mel),
                       *placed["spectrogram"], ("scale", scale), *([] if first else norm),
                       *placed["features"], *placed["targets"]],
                      num_classes=ctx.num_classes)


def config_chain(cfg: Any, names: list[str], ctx: Context, normalize: str,
                 overrides: dict[str, dict[str, Any]] | None = None) -> ak.Compose:
    """:func:`build_chain` with the frontend settings of ``cfg`` (an
    ``experiments.config.Config``): augmentations ``names`` with ``overrides`` (default:
    ``cfg.augment``), normalisation ``normalize``."""
    return build_chain(names, cfg.augment if overrides is None else overrides, ctx,
                       n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
                       f_min=cfg.f_min, f_max=cfg.f_max, top_db=cfg.top_db,
                       normalize=normalize, target_lufs=cfg.target_lufs)


def chain_for(cfg: Any, arm: str, ctx: Context) -> ak.Compose:
    """The chain of ``arm`` in a run of ``cfg``: its augmentations and its normalisation
    (:func:`arm_normalize`)."""
    return config_chain(cfg, arm_augmentations(arm, cfg.augmentations), ctx,
                        arm_normalize(arm, cfg.normalize))


def arm_normalize(arm: str, normalize: str) -> str:
    """The normalisation ``arm`` trains with: ``<mode>`` for ``norm:<mode>``, else the
    run's ``normalize``."""
    return arm[len("norm:"):] if arm.startswith("norm:") else normalize


@torch.no_grad()
def cancelled_arms(cfg: Any, arms: list[str], num_classes: int = 2) -> list[str]:
    """The arms whose augmentations the run's normalisation undoes exactly.

    Measured, not assumed: each arm's chain, with every augmentation forced on
    (``p=1``), runs on a batch of noise at levels from -40 to 0 dBFS and is compared
    with the baseline's chain; an arm whose model input is the same to 1e-4 (in the
    features' units) is cancelled, e.g. ``gain`` under ``max`` or ``standardize``.
    ``norm:`` arms and ``baseline`` are never listed.
    """
    sr = cfg.sample_rate
    ctx = context_for(cfg, sr, num_classes)
    g = torch.Generator().manual_seed(0)
    n = int(round(min(cfg.crop_seconds, 1.0) * sr))
    level = torch.tensor([1.0, 0.3, 0.1, 0.01]).view(4, 1, 1)
    wave = level * torch.randn(4, 1, n, generator=g).clamp(-3, 3) / 3
    base = chain_for(cfg, "baseline", ctx)
    if cfg.normalize == "freq":
        base["normalize"].fit(unnormalized_features(base, wave))
    ref = base.eval()(wave)
    out = []
    for arm in arms:
        if arm == "baseline" or arm.startswith("norm:"):
            continue
        names = arm_augmentations(arm, cfg.augmentations)
        if not names:
            continue
        forced = {k: {**cfg.augment.get(k, {}), "p": 1.0} if "p" in AUGMENTATIONS[k].defaults
                  else cfg.augment.get(k, {}) for k in names}
        chain = config_chain(cfg, names, ctx, cfg.normalize, overrides=forced)
        if cfg.normalize == "freq":
            chain["normalize"].load_state_dict(base["normalize"].state_dict())
        x = chain.train()(wave, generator=torch.Generator().manual_seed(1))
        if x.shape == ref.shape and torch.allclose(x, ref, rtol=0, atol=1e-4):
            out.append(arm)
    return out


def unnormalized_features(chain: ak.Compose, wave: Tensor) -> Tensor:
    """``chain``'s features without its normaliser (eval mode), to fit ``"freq"`` on."""
    chain.eval().disable("normalize")
    try:
        return chain(wave)
    finally:
        chain.enable("normalize")


def expand_arms(tokens: list[str], augmentations: list[str]) -> list[str]:
    """Expand shorthands and validate arm names; order kept, duplicates dropped."""
    unknown = [a for a in augmentations if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown} in 'augmentations'; "
                         f"registered: {sorted(AUGMENTATIONS)}")
    alone, loo = list(augmentations), [f"all-minus-{a}" for a in augmentations]
    # "norms": every normalisation as an arm (norm:none ... norm:lufs).
    short_norms = [f"norm:{m}" for m in NORMALIZE_MODES]
    short = {"alone": alone, "loo": loo, "norms": short_norms,
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
                 "default",
                 *sorted(AUGMENTATIONS)]
        raise ValueError(f"unknown arm {arm!r}; valid arms: {', '.join(valid)}")
    return names
