"""Banks of noises and impulse responses: loaded from a folder, or generated from a seed.

:class:`~augkit.BackgroundNoise` and :class:`~augkit.ImpulseResponse` take a
tensor bank or a folder of audio files. A folder is decoded once, at
construction, by :func:`load_audio_folder`. Without recordings, two generated
banks stand in, each deterministic from its seed (a CPU ``torch.Generator``) and
independent of any dataset:

- :func:`colored_noise_bank`: noises with ``1 / f ** a`` power spectra, ``a``
  spread evenly over ``[-2, 2]`` (violet, blue, white, pink, brown);
- :func:`synthetic_room_irs`: exponentially decaying Gaussian noise after a
  direct-path impulse, the decay set by a reverberation time ``RT60`` (the time
  the energy takes to fall by 60 dB).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from .functional.noise import random_phase_noise
from .functional.random import random_phases

__all__ = ["AUDIO_EXTENSIONS", "colored_noise_bank", "load_audio_folder", "pack",
           "synthetic_room_irs"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".mp3")


def load_audio_folder(folder: str | os.PathLike, sample_rate: int) -> list[Tensor]:
    """Decode every audio file under ``folder`` (recursively), mono, at ``sample_rate``.

    Files are decoded with soundfile, averaged over their channels and resampled
    with :func:`torchaudio.functional.resample` when their rate differs. Files
    that cannot be decoded (or hold no samples) are skipped with one warning
    naming them all.

    Args:
        folder: A folder of audio files (extensions :data:`AUDIO_EXTENSIONS`).
        sample_rate: Rate to resample to, in Hz.

    Returns:
        One float32 tensor ``(T_i,)`` per decoded file, in sorted path order.

    Raises:
        ValueError: ``folder`` is not a folder, holds no audio files, or none of
            them could be decoded (the message names it).
    """
    import soundfile as sf
    import torchaudio

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
                   and p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{root} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    clips, bad = [], []
    for path in files:
        try:
            data, sr = sf.read(path, dtype="float32", always_2d=True)  # (T, channels)
            if data.size == 0:
                raise ValueError("no audio samples")
        except Exception as e:  # corrupt, truncated, empty or unsupported: skip, say why
            bad.append(f"{path} ({getattr(e, 'error_string', None) or e})")
            continue
        x = torch.nan_to_num(torch.from_numpy(data).mean(dim=1))
        if int(sr) != int(sample_rate):
            x = torchaudio.functional.resample(x, int(sr), int(sample_rate))
        clips.append(x.float().contiguous())
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable file(s) in {root}: " + "; ".join(bad),
                      stacklevel=3)
    if not clips:
        raise ValueError(f"{root}: none of its {len(files)} audio files could be decoded")
    return clips


def pack(clips: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Clips end to end: ``(flat (S,), starts (N,), lengths (N,))``, int64 indices.

    Clip ``i`` is ``flat[starts[i] : starts[i] + lengths[i]]``.
    """
    lengths = torch.tensor([c.numel() for c in clips], dtype=torch.int64)
    starts = torch.cumsum(lengths, 0) - lengths
    return torch.cat([c.reshape(-1).float() for c in clips]), starts, lengths


def colored_noise_bank(n: int, seconds: float, sample_rate: int, seed: int = 0,
                       f_decay: tuple[float, float] = (-2.0, 2.0)) -> Tensor:
    """``n`` noises with ``1 / f ** a`` power spectra, ``a`` evenly spread over ``f_decay``.

    Generated as :class:`~augkit.ColoredNoise` does (a ``|f| ** (-a / 2)``
    magnitude with uniform random phases, one inverse FFT), unit power each.

    Args:
        n: Number of noises.
        seconds: Length of each.
        sample_rate: In Hz.
        seed: Seed of the CPU generator: the same arguments give the same bank.
        f_decay: Range of exponents, ``linspace(lo, hi, n)`` (its middle when ``n == 1``).
            (Default: ``(-2, 2)``)

    Returns:
        float32 tensor ``(n, round(seconds * sample_rate))``.

    Example:
        >>> colored_noise_bank(4, 0.5, 16000, seed=0).shape
        torch.Size([4, 8000])
    """
    length = int(round(seconds * sample_rate))
    if n < 1 or length < 3:
        raise ValueError(f"colored_noise_bank needs n >= 1 and 3 or more samples, got n={n}, "
                         f"{length} samples")
    g = torch.Generator().manual_seed(int(seed))
    lo, hi = f_decay
    expo = torch.linspace(lo, hi, n) if n > 1 else torch.full((1,), (lo + hi) / 2)
    phase = random_phases((n, length // 2 + 1), "cpu", g)
    return random_phase_noise(phase, expo, length)


def synthetic_room_irs(n: int, sample_rate: int, rt60: tuple[float, float] = (0.1, 1.0),
                       seed: int = 0, drr_db: tuple[float, float] = (-6.0, 6.0),
                       return_rt60: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """``n`` synthetic room impulse responses: a direct path, then a decaying diffuse tail.

    Each is ``h[0] = 1`` (the direct path) followed by Gaussian noise under the
    envelope ``exp(-3 ln(10) t / RT60)``, so that the energy falls by 60 dB in
    ``RT60`` seconds; ``RT60 ~ U(rt60)`` and the direct-to-reverberant energy
    ratio ``~ U(drr_db)`` per response. The direct path is kept the largest
    sample (so that :class:`~augkit.ImpulseResponse` aligns on it). The decay is
    the same at every frequency (no air absorption) and there are no discrete
    early reflections: a simple, data-free stand-in for measured responses.

    Args:
        n: Number of responses.
        sample_rate: In Hz.
        rt60: Range of reverberation times in seconds. (Default: ``(0.1, 1.0)``)
        seed: Seed of the CPU generator: the same arguments give the same bank.
            (Default: ``0``)
        drr_db: Range of direct-to-reverberant ratios in dB. (Default: ``(-6, 6)``)
        return_rt60: Also return the drawn ``RT60`` values. (Default: ``False``)

    Returns:
        float32 tensor ``(n, L)`` with ``L = ceil(max(rt60) * sample_rate)`` (every
        tail has decayed by at least 60 dB at its end); with ``return_rt60``, also
        the ``(n,)`` reverberation times in seconds.

    Example:
        >>> synthetic_room_irs(3, 16000, rt60=(0.2, 0.5), seed=0).shape
        torch.Size([3, 8000])
    """
    lo, hi = rt60
    if n < 1 or not 0 < lo <= hi:
        raise ValueError(f"synthetic_room_irs needs n >= 1 and 0 < rt60[0] <= rt60[1], got "
                         f"n={n}, rt60={rt60}")
    g = torch.Generator().manual_seed(int(seed))
    times = lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
    drr = drr_db[0] + (drr_db[1] - drr_db[0]) * torch.rand(n, generator=g, dtype=torch.float64)
    length = max(2, math.ceil(hi * sample_rate))
    t = torch.arange(length, dtype=torch.float64) / sample_rate
    envelope = torch.exp(-3.0 * math.log(10.0) * t / times.unsqueeze(-1))
    tail = torch.randn(n, length, generator=g, dtype=torch.float64) * envelope
    tail[:, 0] = 0.0
    # Scale the tail to the drawn direct-to-reverberant ratio (direct energy 1).
    tail = tail * torch.sqrt(torch.pow(10.0, -drr / 10.0) / tail.square().sum(-1)).unsqueeze(-1)
    direct = torch.maximum(torch.ones(n, dtype=torch.float64), 1.05 * tail.abs().amax(-1))
    irs = torch.cat([direct.unsqueeze(-1), tail[:, 1:]], dim=-1).float()
    return (irs, times.float()) if return_rt60 else irs
