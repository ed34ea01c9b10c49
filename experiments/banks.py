"""Builders for the ``background_noise`` and ``reverb`` arms: recordings when given, else generated.

With ``--noise-dir`` / ``--ir-dir`` (:class:`experiments.arms.Context`'s
``noise_dir`` / ``ir_dir``) the arms decode that folder; without, they use banks
generated from a fixed seed (:func:`augkit.banks.colored_noise_bank`,
:func:`augkit.banks.synthetic_room_irs`): synthetic signals that never come from
the training or evaluation data, and the same bank for every run and training
seed (only the per-batch draws follow the training seed).

Folders and banks are cached per process: the configuration check builds every
arm once before training builds it again, and a folder is decoded once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

import augkit as ak
from augkit.banks import colored_noise_bank, load_audio_folder, synthetic_room_irs

if TYPE_CHECKING:  # arms.py imports this module for its table
    from .arms import Context

__all__ = ["background_noise_arm", "reverb_arm"]


@functools.lru_cache(maxsize=4)
def _folder(path: str, sample_rate: int) -> tuple[Tensor, ...]:
    return tuple(load_audio_folder(path, sample_rate))


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
        context: The run's :class:`~experiments.arms.Context` (sample rate, folders).
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
        context: The run's :class:`~experiments.arms.Context` (sample rate, folders).
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
