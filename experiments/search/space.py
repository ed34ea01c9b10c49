"""The search space, taken from the registry: one magnitude ``m`` in [0, 1] per augmentation.

Every augmentation of :data:`experiments.augmentations.AUGMENTATIONS` with a strength
has an entry in :data:`MAGNITUDES`: a function ``(m, sample_rate) -> settings`` (the
builder's keyword arguments: the gain range, the SNR range, the cutoff range, the mask
width, ...) beside its defaults. The contract, tested over the registry
(``tests/test_search.py``):

* ``m = 0`` is the identity: the augmentation is left out of the chain (several
  transforms cannot express "no change" in their own ranges, e.g. an SNR of +inf);
  as ``m -> 0`` the settings approach it (the gain range shrinks to 0 dB, the SNR
  rises to 40 dB, cutoffs move to Nyquist);
* the strength rises strictly with ``m`` (measured on the model input);
* the settings are valid at ``m = 1`` at 8 kHz and 16 kHz (frequencies scale with or
  are capped below the Nyquist frequency).

Augmentations without a meaningful magnitude are in :data:`EXCLUDED`, with the reason.

A search samples, per family of the space, whether it is on, its ``m`` and its ``p``
(:func:`tune_space`); :func:`recipe` turns one sample into the runner's settings
(``augmentations`` and ``augment``), a JSON object that ``--config`` loads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..augmentations import AUGMENTATIONS, DB_SCALE

Settings = dict[str, Any]


def _lin(a: float, b: float, m: float) -> float:
    """``a`` at ``m = 0`` to ``b`` at ``m = 1``, linearly."""
    return a + (b - a) * m


def _geo(a: float, b: float, m: float) -> float:
    """``a`` at ``m = 0`` to ``b`` at ``m = 1``, geometrically (for frequencies)."""
    return math.exp(_lin(math.log(a), math.log(b), m))


def _nyq(sr: int) -> float:
    """The highest frequency a builder accepts here: 0.45 x the sample rate."""
    return 0.45 * sr


def _sym(name: str, top: float) -> Callable[[float, int], Settings]:
    """A symmetric range ``(-top m, top m)`` of setting ``name``."""
    return lambda m, sr: {name: (-top * m, top * m)}


def _snr(low: float) -> Callable[[float, int], Settings]:
    """An SNR range from (40, 40) dB at m = 0 to (low, 30) dB at m = 1."""
    return lambda m, sr: {"snr_db": (_lin(40.0, low, m), _lin(40.0, 30.0, m))}


@dataclass(frozen=True)
class Magnitude:
    """How one augmentation's strength scales with ``m``.

    ``settings(m, sample_rate)`` gives the builder's settings for ``m`` in (0, 1]
    (``p`` is not among them: the space samples it apart); ``what`` says in words
    what ``m`` moves.
    """

    settings: Callable[[float, int], Settings]
    what: str


MAGNITUDES: dict[str, Magnitude] = {
    "time_mask": Magnitude(lambda m, sr: {"max_width": max(1, round(40 * m)), "num_masks": 2},
                           "mask width up to 40 frames (2 masks)"),
    "freq_mask": Magnitude(lambda m, sr: {"max_width": max(1, round(16 * m)), "num_masks": 2},
                           "mask width up to 16 mel bins (2 masks)"),
    "noise": Magnitude(_snr(10.0), "SNR range from 40 dB to (10, 30) dB"),
    "gain": Magnitude(_sym("gain_db", 12.0), "gain range +-12 m dB"),
    "shift": Magnitude(lambda m, sr: {"max_shift": 0.5 * m}, "shift up to 0.5 m of the crop"),
    "lowpass": Magnitude(
        lambda m, sr: {"cutoff_hz": (_geo(_nyq(sr), 150.0, m), _geo(_nyq(sr), 0.25 * sr, m))},
        "cutoff range from Nyquist down to (150 Hz, sr/4)"),
    "highpass": Magnitude(
        lambda m, sr: {"cutoff_hz": (100.0 * m, min(2400.0, 0.15 * sr) * m)},
        "cutoff range from 0 up to (100 Hz, min(2.4 kHz, 0.15 sr))"),
    "bandstop": Magnitude(lambda m, sr: {"bandwidth_fraction": (0.2 * m, 1.5 * m)},
                          "stop band width from 0 to (0.2, 1.5) x centre"),
    "colored_noise": Magnitude(_snr(3.0), "SNR range from 40 dB to (3, 30) dB"),
    "background_noise": Magnitude(_snr(3.0), "SNR range from 40 dB to (3, 30) dB"),
    "pitch_shift": Magnitude(_sym("semitones", 4.0), "pitch range +-4 m semitones"),
    "time_stretch": Magnitude(lambda m, sr: {"rate": (_geo(1.0, 0.8, m), _geo(1.0, 1.25, m))},
                              "stretch rate from 1 to (0.8, 1.25)"),
    "speed": Magnitude(lambda m, sr: {"factor": (1.0 - 0.1 * m, 1.0 + 0.1 * m)},
                       "speed factor 1 +- 0.1 m"),
    "time_warp": Magnitude(lambda m, sr: {"max_warp": max(1, round(10 * m))},
                           "warp up to 10 m frames"),
    "resized_crop": Magnitude(
        lambda m, sr: {"virtual_scale": (1.0, 1.0 + 0.5 * m),
                       "freq_scale": (1.0 - 0.4 * m, 1.0 + 0.5 * m),
                       "time_scale": (1.0 - 0.4 * m, 1.0 + 0.5 * m)},
        "scales from 1 to the defaults' (0.6, 1.5)"),
    "filter_augment": Magnitude(_sym("db_range", 6.0 * DB_SCALE), "band gains +-6 m dB"),
    "peaking_eq": Magnitude(_sym("gain_db", 12.0), "gain range +-12 m dB"),
    "low_shelf": Magnitude(_sym("gain_db", 12.0), "gain range +-12 m dB"),
    "high_shelf": Magnitude(_sym("gain_db", 12.0), "gain range +-12 m dB"),
    "parametric_eq": Magnitude(
        lambda m, sr: {"gain_db": (-6.0 * m, 6.0 * m), "shelf_gain_db": (-6.0 * m, 6.0 * m)},
        "band and shelf gains +-6 m dB"),
    "clipping": Magnitude(lambda m, sr: {"percentile": (0.0, 20.0 * m)},
                          "clipped percentile up to 20 m"),
    "tanh_distortion": Magnitude(lambda m, sr: {"drive_db": (_lin(-20.0, 5.0, m),
                                                             _lin(-20.0, 25.0, m))},
                                 "drive from -20 dB (linear) to (5, 25) dB"),
    "bit_crush": Magnitude(lambda m, sr: {"bit_depth": (round(_lin(16, 6, m)),
                                                        round(_lin(16, 12, m)))},
                           "bit depth from 16 down to (6, 12)"),
    "mu_law": Magnitude(lambda m, sr: {"quantization_channels": (
        round(_geo(65536, 16, m)), round(_geo(65536, 256, m)))},
        "levels from 65536 down to (16, 256)"),
    "drop_chunk": Magnitude(lambda m, sr: {"n_chunks": (1, 3), "chunk_length": (
        max(1, round(0.01 * sr * m)), max(2, round(0.06 * sr * m)))},
        "1-3 chunks of up to 60 m ms"),
    "drop_freq": Magnitude(lambda m, sr: {"width_hz": (100.0 * m, 1000.0 * m)},
                           "notch width from 0 to (100, 1000) Hz"),
    "band_limit": Magnitude(lambda m, sr: {"bandwidth_hz": tuple(
        _geo(sr / 2, min(b, 0.45 * sr), m) for b in (3400.0, 4000.0, 7000.0, 8000.0))},
        "bandwidths from Nyquist down to the telephone/codec bands"),
    "air_absorption": Magnitude(lambda m, sr: {"distance_m": (10.0 * m, 100.0 * m)},
                                "distance from 0 to (10, 100) m"),
    "specmix": Magnitude(lambda m, sr: {"gamma": 0.1 * m}, "band width 0.1 m of the plane"),
}

#: Registered augmentations without a magnitude, and why.
EXCLUDED: dict[str, str] = {
    "polarity": "a sign flip: on or off, no strength (and invisible to magnitude features)",
    "peak_normalize": "a level change with no setting: on or off",
    "time_reversal": "on or off, no strength",
    "mixup": "lam ~ Beta(alpha, alpha) with no max(lam, 1 - lam): alpha -> 0 swaps examples "
             "for their partners (lam in {0, 1}), so no alpha is the identity",
    "cutmix": "as mixup: alpha -> 0 pastes all or nothing of the partner, not the identity",
    "bandpass": "a band of at most ~2 octaves: no setting within its ranges is near the "
                "identity (lowpass + highpass cover it)",
    "aliasing": "its builder caps rate_hz at 0.45 x the sample rate, so the weakest setting "
                "still folds everything above 0.225 sr: no setting near the identity",
    "room": "the image-source room keeps its direct path's delay and early reflections at "
            "any absorption: no setting near the identity",
    "reverb": "its generated bank's direct-to-reverberant ratio is fixed at -6..6 dB "
              "(reverb_arm passes no drr_db), so a short RT60 still colours the sound: the "
              "strength does not fall to 0 with the RT60 (measured: not monotone at 8 kHz)",
    "trivial": "a search mode of its own (op set and num_ops), not a family with a magnitude",
}


def magnitude_settings(name: str, m: float, sample_rate: int) -> Settings:
    """The builder's settings of augmentation ``name`` at magnitude ``m`` in (0, 1]."""
    if name not in MAGNITUDES:
        why = EXCLUDED.get(name, "not a registered augmentation")
        raise ValueError(f"augmentation {name!r} has no magnitude: {why}")
    if not 0.0 < m <= 1.0:
        raise ValueError(f"magnitude of {name!r} must be in (0, 1] (0: left out), got {m!r}")
    return MAGNITUDES[name].settings(float(m), int(sample_rate))


def recipe(families: dict[str, tuple[float, float]], sample_rate: int,
           base_augment: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The runner's settings of one point of the space: ``{"augmentations", "augment"}``.

    Args:
        families: ``name -> (m, p)``; a family with ``m = 0`` or ``p = 0`` is left out
            (the identity).
        sample_rate: The run's sample rate (frequency settings depend on it).
        base_augment: The run's ``augment`` settings, kept under the recipe's own.

    Returns:
        A JSON-able dict that ``--config`` loads: the arm ``all`` is the recipe.
    """
    augment = {k: dict(v) for k, v in (base_augment or {}).items()}
    on = []
    for name, (m, p) in families.items():
        if m <= 0.0 or p <= 0.0:
            continue
        settings = {k: list(v) if isinstance(v, tuple) else v
                    for k, v in magnitude_settings(name, m, sample_rate).items()}
        augment[name] = {**augment.get(name, {}), **settings, "p": float(p)}
        on.append(name)
    return {"augmentations": on, "augment": augment}


def arm_name(rec: dict[str, Any]) -> str:
    """The runner's arm for a recipe: ``baseline`` when nothing is on, else ``all``."""
    return "all" if rec["augmentations"] else "baseline"


def parse_space(text: str) -> list[str]:
    """``--space``: a comma list of families, or a JSON file ``{"families": [...]}`` (or a
    list). Every name must have a magnitude; errors are one line."""
    path = Path(text).expanduser()
    if text.endswith(".json") or path.is_file():
        if not path.is_file():
            raise ValueError(f"--space: file {path} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"--space {path} is not valid JSON: {e}") from None
        names = data.get("families") if isinstance(data, dict) else data
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"--space {path} must hold a list of names or "
                             '{"families": [...]}')
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--space names no augmentation")
    bad = [n for n in names if n not in MAGNITUDES]
    if bad:
        why = "; ".join(f"{n}: {EXCLUDED[n]}" if n in EXCLUDED else
                        f"{n}: not a registered augmentation" for n in bad)
        raise ValueError(f"--space: no magnitude for {why} (searchable: "
                         f"{', '.join(MAGNITUDES)})")
    return list(dict.fromkeys(names))


def tune_space(families: list[str]) -> dict[str, Any]:
    """Ray Tune's ``param_space``: per family ``<name>/on``, ``<name>/m``, ``<name>/p``."""
    from ray import tune

    space: dict[str, Any] = {}
    for name in families:
        space[f"{name}/on"] = tune.choice([False, True])
        space[f"{name}/m"] = tune.uniform(0.05, 1.0)
        space[f"{name}/p"] = tune.uniform(0.1, 1.0)
    return space


def families_of(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """A trial's config (:func:`tune_space`'s keys) -> ``name -> (m, p)`` of those on."""
    names = [k[: -len("/on")] for k in config if k.endswith("/on")]
    return {n: (float(config[f"{n}/m"]), float(config[f"{n}/p"])) for n in names
            if config[f"{n}/on"]}


def check_registry() -> list[str]:
    """Registered augmentations that are neither mapped nor excluded (should be none)."""
    return [n for n in AUGMENTATIONS if n not in MAGNITUDES and n not in EXCLUDED]
