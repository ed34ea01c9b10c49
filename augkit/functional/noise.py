"""Noise ops: coloured (1/f^a) noise from white noise, and looped reads from a packed bank.

Pure and batched, no randomness of their own: the white noise and the indices
are given.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["colored_noise", "looped_segments"]


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
    pos = torch.arange(size, device=flat.device)
    idx = start.unsqueeze(-1) + torch.remainder(offset.unsqueeze(-1) + pos,
                                                length.unsqueeze(-1))
    return torch.take(flat, idx)
