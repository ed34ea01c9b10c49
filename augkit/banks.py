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

__all__ = ["AUDIO_EXTENSIONS", "SILENT_PEAK", "SkippedFilesWarning", "bank_clips",
           "colored_noise_bank", "load_audio_folder", "pack", "synthetic_room_irs"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".mp3")
#: A clip whose largest absolute sample is below this is silent: a noise that adds
#: nothing, an impulse response that cannot be normalised.
SILENT_PEAK = 1e-8
#: File names a grouped warning lists per reason (the warning object holds them all).
NAMES_SHOWN = 3


class SkippedFilesWarning(UserWarning):
    """Files of a bank folder that were skipped; ``skipped`` maps each reason to all of them.

    Attributes:
        folder: The folder that was loaded.
        skipped: Reason (``"unreadable"``, ``"with NaN/inf samples"``, ``"silent, peak <
            1e-08"``) -> every file skipped for it, relative to ``folder`` (unreadable
            ones with the decoder's message).
    """

    def __init__(self, folder: Path, skipped: dict[str, list[str]], total: int) -> None:
        self.folder, self.skipped = folder, skipped
        count = sum(len(v) for v in skipped.values())
        super().__init__(f"skipped {count} of {total} audio files in {folder}: "
                         + "; ".join(_grouped(skipped)))


def _few(names: list[str]) -> str:
    """``"a.wav, b.wav, c.wav, and 4 more"``: the first :data:`NAMES_SHOWN` names."""
    more = f", and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return ", ".join(names[:NAMES_SHOWN]) + more


def _grouped(skipped: dict[str, list[str]]) -> list[str]:
    """``["2 unreadable (a.wav: ..., b.wav: ...)", ...]``: a count and a few names per reason."""
    return [f"{len(names)} {reason} ({_few(names)})" for reason, names in skipped.items()]


class _Unusable(Exception):
    """A file of a bank folder that is skipped: ``reason`` groups it in the warning."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _decode(sf, path: Path) -> tuple[Tensor, int]:
    """``(mono float32 (T,), sample rate)`` with soundfile ``sf``; or :class:`_Unusable`."""
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)  # (T, channels)
    except Exception as e:  # corrupt, truncated or unsupported
        raise _Unusable("unreadable", str(getattr(e, "error_string", None) or e)) from None
    if data.size == 0:
        raise _Unusable("unreadable", "no audio samples")
    x = torch.from_numpy(data)
    if not torch.isfinite(x).all():
        raise _Unusable("with NaN/inf samples")
    x = x.mean(dim=1)
    if not x.abs().amax() >= SILENT_PEAK:
        raise _Unusable(f"silent, peak < {SILENT_PEAK:g}")
    return x, int(sr)


def load_audio_folder(folder: str | os.PathLike, sample_rate: int, *,
                      return_names: bool = False) -> list[Tensor] | tuple[list[Tensor],
                                                                          list[str]]:
    """Decode every audio file under ``folder`` (recursively), mono, at ``sample_rate``.

    Files are decoded with soundfile, averaged over their channels and resampled
    with :func:`torchaudio.functional.resample` when their rate differs. Files
    that are not usable are skipped, with one :class:`SkippedFilesWarning` that
    counts them per reason and names a few of each: files that cannot be decoded
    (or hold no samples), files with NaN or inf samples, and silent files (mono
    peak below :data:`SILENT_PEAK`).

    Args:
        folder: A folder of audio files (extensions :data:`AUDIO_EXTENSIONS`).
        sample_rate: Rate to resample to, in Hz.
        return_names: Also return the files' paths relative to ``folder``.
            (Default: ``False``)

    Returns:
        One float32 tensor ``(T_i,)`` per usable file, in sorted path order; with
        ``return_names``, also their paths relative to ``folder``.

    Raises:
        ValueError: ``folder`` is not a folder, holds no audio files, or none of
            them is usable (the message names it and counts the reasons).
        ImportError: soundfile is not installed (``pip install 'augkit[io]'``).
    """
    try:
        import soundfile as sf
    except ImportError:
        raise ImportError("loading audio files needs soundfile: pip install 'augkit[io]'"
                          ) from None
    import torchaudio

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
                   and p.is_file() and not p.name.startswith("."))
    if not files:
        raise ValueError(f"{root} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    clips, names, skipped = [], [], {}
    for path in files:
        name = path.relative_to(root).as_posix()
        try:
            x, sr = _decode(sf, path)
        except _Unusable as e:
            skipped.setdefault(e.reason, []).append(f"{name}: {e.detail}" if e.detail else name)
            continue
        if sr != int(sample_rate):
            x = torchaudio.functional.resample(x, sr, int(sample_rate))
        clips.append(x.float().contiguous())
        names.append(name)
    if not clips:
        raise ValueError(f"{root}: none of its {len(files)} audio files could be decoded "
                         f"into usable audio: " + "; ".join(_grouped(skipped)))
    if skipped:
        warnings.warn(SkippedFilesWarning(root, skipped, len(files)), stacklevel=2)
    return (clips, names) if return_names else clips


def bank_clips(bank, sample_rate: int | None, owner: str, what: str,
               each_audible: bool) -> list[Tensor]:
    """A bank given to a transform -> its clips, 1-D float32 on the CPU.

    Checked once, on the host, at construction (never in ``forward``): a bank with
    NaN or inf samples is refused, as is a silent one (every clip's peak below
    :data:`SILENT_PEAK`; with ``each_audible``, any silent clip). Silent clips of
    a bank that may hold some are named in a warning.

    Args:
        bank: A float tensor ``(N, L)``, a sequence of 1-D float tensors, or a folder
            (decoded by :func:`load_audio_folder`, which skips unusable files).
        sample_rate: Rate to resample a folder's files to; required for a folder.
        owner: The transform, for messages (``"BackgroundNoise"``).
        what: The argument, for messages (``"noises"``).
        each_audible: Refuse any silent clip (impulse responses), not only a silent bank.

    Raises:
        ValueError: One line naming ``owner``, ``what`` and the clips at fault: files
            by their path relative to the folder, tensors as ``"<what>[i]"``.
    """
    if isinstance(bank, (str, os.PathLike)):
        if sample_rate is None:
            raise ValueError(f"{owner}: sample_rate is required when {what} is a folder "
                             f"({bank}): its files are resampled to it")
        clips, names = load_audio_folder(bank, sample_rate, return_names=True)
    elif isinstance(bank, Tensor):
        if bank.ndim != 2 or not bank.is_floating_point() or bank.numel() == 0:
            raise ValueError(f"{owner}: {what} must be a non-empty float tensor (N, L) or a "
                             f"folder, got {bank.dtype} of shape {tuple(bank.shape)}")
        clips = list(bank.detach().float().cpu())
        names = [f"{what}[{i}]" for i in range(len(clips))]
    elif isinstance(bank, (list, tuple)) and bank and all(
            isinstance(c, Tensor) and c.ndim == 1 and c.is_floating_point() and c.numel() > 0
            for c in bank):
        clips = [c.detach().float().cpu() for c in bank]
        names = [f"{what}[{i}]" for i in range(len(clips))]
    else:
        raise ValueError(f"{owner}: {what} must be a float tensor (N, L), a list of 1-D float "
                         f"tensors or a folder path, got {type(bank).__name__}")
    bad = [n for c, n in zip(clips, names, strict=True) if not torch.isfinite(c).all()]
    if bad:
        raise ValueError(f"{owner}: {what} hold NaN or inf samples: {_few(bad)}; drop or fix "
                         "those clips")
    silent = [n for c, n in zip(clips, names, strict=True) if not c.abs().amax() >= SILENT_PEAK]
    if len(silent) == len(clips):
        raise ValueError(f"{owner}: every clip of {what} is silent (peak < {SILENT_PEAK:g}), "
                         f"so it would change nothing: {_few(silent)}")
    if silent and each_audible:
        raise ValueError(f"{owner}: {what} holds silent clips (peak < {SILENT_PEAK:g}): "
                         f"{_few(silent)}; drop them")
    if silent:
        warnings.warn(f"{owner}: {len(silent)} of the {len(clips)} clips of {what} are silent "
                      f"(peak < {SILENT_PEAK:g}) and add nothing when drawn: {_few(silent)}",
                      stacklevel=3)
    return clips


def bank_on(module, name: str, device: torch.device) -> None:
    """Raise a clear error when ``module``'s bank buffer ``name`` is not on ``device``."""
    if getattr(module, name).device != device:
        raise ValueError(f"{type(module).__name__}'s bank is on {getattr(module, name).device} "
                         f"but the input is on {device}; move the transform with .to(device)")


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
