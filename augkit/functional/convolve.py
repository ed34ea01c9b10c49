"""Batched FFT convolution with a per-example filter, aligned on its direct path."""

from __future__ import annotations

import torch
from scipy.fft import next_fast_len
from torch import Tensor

__all__ = ["fft_convolve", "peak_delay"]


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

    ``full`` is what ``torchaudio.functional.fftconvolve(x, ir)`` returns, but
    that function cannot serve here: it transforms at exactly ``T + L - 1``
    points, often a length with a large prime factor, which FFT libraries handle
    with slower algorithms (Bluestein's), where this rounds up to the next
    5-smooth length (``scipy.fft.next_fast_len``); and its ``"same"`` mode crops one fixed
    window for the whole batch, where each example here is read from its own
    filter's direct path (``tests/test_noise_reverb.py`` shows both).

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
    n = next_fast_len(t + length - 1, real=True)  # 2^a 3^b 5^c: a fast FFT length
    view = (ir.shape[0], *([1] * (x.ndim - 2)), -1)
    spec = torch.fft.rfft(x.to(dtype), n=n) * torch.fft.rfft(ir.to(dtype), n=n).reshape(view)
    full = torch.fft.irfft(spec, n=n)
    idx = delay.reshape(view) + torch.arange(t, device=x.device)
    return torch.gather(full, -1, idx.expand(x.shape))
