"""Noise ops: coloured (1/f^a) noise, and looped reads from a packed bank.

Pure and batched, no randomness of their own: the white noise, the phases and
the indices are given.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["PHASE_LEVELS", "colored_noise", "looped_segments", "random_phase_noise"]


def colored_noise(white: Tensor, f_decay: Tensor) -> Tensor:
    """Shape white noise so that its power spectrum falls as ``1 / f ** f_decay``.

    One real FFT of the whole signal, a magnitude ``|f| ** (-f_decay / 2)`` per
    bin, one inverse FFT: ``0`` is white, ``1`` pink, ``2`` brown (red),
    ``-1`` blue, ``-2`` violet. The DC bin is set to zero (the noise has no
    offset), and each row is normalised to unit power (mean square over its
    last axis).

    Args:
        white: White noise ``(B, ..., T)``, e.g. ``(B, C, T)``; any float dtype
            (the maths is float32, or float64 for float64 input).
        f_decay: Spectral exponent per example, shape ``(B,)``.

    Returns:
        Tensor of ``white``'s shape, float32 (float64 for float64 input).
    """
    t = white.shape[-1]
    dtype = torch.float64 if white.dtype == torch.float64 else torch.float32
    spec = torch.fft.rfft(white.to(dtype), dim=-1)
    bins = torch.arange(spec.shape[-1], device=white.device, dtype=dtype)
    # log-domain power so a large exponent never overflows; DC (bin 0) gets weight 0.
    expo = (-0.5 * f_decay.to(dtype)).reshape(-1, *([1] * (white.ndim - 1)))
    weight = torch.exp(expo * torch.log(bins.clamp_min(1.0)))
    weight = torch.where(bins > 0, weight, torch.zeros((), dtype=dtype, device=white.device))
    # Scale so the largest weight is 1 before the inverse FFT (keeps float32 in range).
    weight = weight / weight.amax(dim=-1, keepdim=True).clamp_min(1e-30)
    out = torch.fft.irfft(spec * weight, n=t, dim=-1)
    power = out.square().mean(dim=-1, keepdim=True)
    return out * torch.rsqrt(power.clamp_min(1e-30))


#: Phases of :func:`random_phase_noise` given as integers are ``2 pi m / PHASE_LEVELS``.
PHASE_LEVELS = 4096


def random_phase_noise(phase: Tensor, f_decay: Tensor, length: int) -> Tensor:
    """Noise whose power spectrum is exactly ``1 / f ** f_decay``: given phases, one inverse FFT.

    Every ``rfft`` bin ``k`` of the output has magnitude ``k ** (-f_decay / 2)``
    (times one scale per example) and the given phase: ``0`` is white, ``1``
    pink, ``2`` brown (red), ``-1`` blue, ``-2`` violet. The DC bin and, for an
    even ``length``, the Nyquist bin are zero (no offset, and every other bin a
    full cosine), so by Parseval the mean square over the last axis is a sum
    over the magnitudes: each row is scaled to unit power analytically, with no
    pass over the output. A sum of thousands of cosines with independent
    uniform phases is Gaussian to a close approximation, with the spectrum met
    exactly rather than on average (no periodogram scatter).

    Args:
        phase: Phase of each bin, ``(B, ..., length // 2 + 1)``: radians (float), or
            integers ``m`` in ``[0, PHASE_LEVELS)`` meaning ``2 pi m / PHASE_LEVELS``
            (int32 or int64: one table lookup instead of a cosine and a sine).
        f_decay: Spectral exponent per example, shape ``(B,)``.
        length: Samples of the output (``T``).

    Returns:
        Tensor ``(B, ..., length)``, float32 (float64 for float64 phases), each row
        of mean square 1 (all zero when ``length < 3``: no bin but DC and Nyquist).

    Example:
        >>> phase = torch.randint(0, PHASE_LEVELS, (2, 1, 51), dtype=torch.int32)
        >>> y = random_phase_noise(phase, torch.tensor([0.0, 1.0]), 100)
        >>> y.shape, y.square().mean(-1).flatten().round(decimals=4).tolist()
        (torch.Size([2, 1, 100]), [1.0, 1.0])
    """
    device, n_bins = phase.device, length // 2 + 1
    if phase.is_floating_point():
        dtype = torch.float64 if phase.dtype == torch.float64 else torch.float32
        spec = torch.complex(torch.cos(phase.to(dtype)), torch.sin(phase.to(dtype)))
    else:
        dtype = torch.float32
        angle = torch.arange(PHASE_LEVELS, device=device, dtype=torch.float64) * (
            2 * math.pi / PHASE_LEVELS)
        table = torch.complex(torch.cos(angle), torch.sin(angle)).to(torch.complex64)
        spec = table.index_select(0, phase.reshape(-1)).view(phase.shape)
    k = torch.arange(n_bins, device=device, dtype=dtype)
    regular = ((k > 0) & (2 * k < length)).to(dtype)  # not DC, not Nyquist
    expo = -0.5 * f_decay.to(dtype)  # (B,)
    # log magnitudes, shifted so the largest (bin 1 or the last regular bin) is 0:
    # no overflow for any exponent.
    top = math.log(max((length - 1) // 2, 1))
    mag = torch.outer(expo, torch.log(k.clamp_min(1.0)))
    mag = mag.sub_((expo * top).clamp_min(0.0)[:, None]).exp_().mul_(regular)  # (B, F)
    # mean square of irfft(Y, n) = (2 / n^2) * sum over regular bins of |Y_k|^2
    power = 2.0 * mag.square().sum(dim=-1) / (length * length)  # cascade sum: accurate
    mag = mag.mul_(torch.rsqrt(power.clamp_min(1e-30))[:, None])
    # Scale the spectrum's real view in place (no complex copy of the magnitudes).
    torch.view_as_real(spec).mul_(mag.view(mag.shape[0], *([1] * (phase.ndim - 2)), n_bins, 1))
    del mag
    return torch.fft.irfft(spec, n=length, dim=-1)


def looped_segments(flat: Tensor, start: Tensor, length: Tensor, offset: Tensor, size: int
                    ) -> Tensor:
    """Read ``size`` samples of each clip of a packed bank, looping past its end.

    Sample ``j`` of row ``r`` is ``flat[start[r] + (offset[r] + j) % length[r]]``:
    a clip shorter than ``size`` repeats, and a read never enters the next clip.

    Args:
        flat: 1-D tensor holding every clip end to end, ``(S,)``.
        start: Index into ``flat`` of each row's clip, int64 ``(R,)``.
        length: Samples in each row's clip, int64 ``(R,)``, ``>= 1``.
        offset: Where each read starts within its clip, int64 ``(R,)``.
        size: Samples per row.

    Returns:
        Tensor of shape ``(R, size)``, ``flat``'s dtype.
    """
    # one (R, size) index buffer, written in place; int32 while the offsets fit (its
    # remainder is about twice as fast as int64's on the CPU)
    dtype = torch.int32 if size + flat.numel() < 2**31 else torch.int64
    idx = torch.arange(size, device=flat.device, dtype=dtype).add(offset.to(dtype).unsqueeze(-1))
    idx = idx.remainder_(length.to(dtype).unsqueeze(-1)).long()  # (no copy when int64)
    return torch.take(flat, idx.add_(start.unsqueeze(-1)))
