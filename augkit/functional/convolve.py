"""Batched FFT convolution with a per-example filter, aligned on its direct path."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fft_convolve", "fft_size", "peak_delay"]


def fft_size(n: int) -> int:
    """The smallest ``2**a * 3**b * 5**c >= n`` (a fast FFT length); ``n`` a Python int."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def peak_delay(ir: Tensor) -> Tensor:
    """Index of each filter's largest magnitude (its direct path), int64 ``ir.shape[:-1]``.

    ``argmax`` on the device: no host sync.
    """
    return torch.argmax(ir.abs(), dim=-1)


def fft_convolve(x: Tensor, ir: Tensor, delay: Tensor | None = None) -> Tensor:
    """Convolve each example with its own filter; keep ``T`` samples from ``delay`` on.

    One batched real FFT of length ``>= T + L - 1`` (a linear, not circular,
    convolution): ``y[..., t] = full[..., t + delay]`` where
    ``full = x * ir`` has ``T + L - 1`` samples. With ``delay`` the filter's
    peak (:func:`peak_delay`, the default) the direct path of a room impulse
    response stays where it was: the signal does not move in time.

    Args:
        x: Waveforms ``(B, C, T)`` (or any ``(B, ..., T)``).
        ir: Filters ``(B, L)``, one per example shared by its channels.
        delay: Samples to drop from the start of the full convolution, int64
            ``(B,)`` in ``[0, L)``. (Default: :func:`peak_delay` of ``ir``)

    Returns:
        Tensor of ``x``'s shape, float32 (float64 for float64 input).
    """
    t, length = x.shape[-1], ir.shape[-1]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if delay is None:
        delay = peak_delay(ir)
    n = fft_size(t + length - 1)
    view = (ir.shape[0], *([1] * (x.ndim - 2)), -1)
    spec = torch.fft.rfft(x.to(dtype), n=n) * torch.fft.rfft(ir.to(dtype), n=n).reshape(view)
    full = torch.fft.irfft(spec, n=n)
    idx = delay.reshape(view) + torch.arange(t, device=x.device)
    return torch.gather(full, -1, idx.expand(x.shape))
