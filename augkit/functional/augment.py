"""Pure batched augmentation ops.

Each op takes the batch and per-example parameters (tensors with a leading
batch dim ``B``) and has no randomness of its own. Shapes: waveforms
``(B, C, T)``, spectrograms ``(B, C, F, T)``; any op that works on the last
axis accepts either.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "mask_along_axis",
    "add_noise",
    "add_noise_snr",
    "gain",
    "crop",
    "shift",
    "mix",
]


def _per_example(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a ``(B,)`` tensor to broadcast over ``x`` of shape ``(B, ...)``."""
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))


def mask_along_axis(x: Tensor, start: Tensor, width: Tensor, axis: int,
                    value: float | str = 0.0) -> Tensor:
    """SpecAugment masks: set ``[start, start + width)`` along ``axis`` to ``value``.

    Args:
        x: Spectrogram of shape ``(B, C, F, T)`` (or any ``(B, ...)``).
        start: Mask starts of shape ``(B, M)``, ``M`` masks per example.
        width: Mask widths of shape ``(B, M)``; width 0 masks nothing.
        axis: Axis of ``x`` to mask, e.g. ``-1`` for time, ``-2`` for frequency.
        value: Fill value, or ``"mean"`` for each example's mean.

    Returns:
        Tensor like ``x``.
    """
    axis = axis % x.ndim
    pos = torch.arange(x.shape[axis], device=x.device)
    hit = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))  # (B, M, L)
    hit = hit.any(dim=1)  # (B, L)
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    shape[axis] = x.shape[axis]
    hit = hit.reshape(shape)
    if value == "mean":
        fill = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    else:
        fill = torch.tensor(float(value), dtype=x.dtype, device=x.device)
    return torch.where(hit, fill, x)


def add_noise(x: Tensor, noise: Tensor, std: Tensor) -> Tensor:
    """``x + std * noise`` with a per-example ``std`` of shape ``(B,)``."""
    return x + (_per_example(std, x) * noise.float()).to(x.dtype)


def add_noise_snr(x: Tensor, noise: Tensor, snr_db: Tensor) -> Tensor:
    """Add unit-variance ``noise`` scaled to a per-example SNR.

    Args:
        x: Waveforms ``(B, C, T)``.
        noise: Standard normal noise like ``x``.
        snr_db: Signal-to-noise ratio in dB, shape ``(B,)``; ``+inf`` adds nothing.

    Returns:
        Tensor like ``x``. The signal power is the mean square over all of an
        example's channels and samples; a silent example stays silent.
    """
    dims = tuple(range(1, x.ndim))
    rms = x.float().square().mean(dim=dims).sqrt()  # (B,)
    std = rms * torch.pow(10.0, -snr_db / 20.0)
    return add_noise(x, noise, std)


def gain(x: Tensor, factor: Tensor, additive: bool = False) -> Tensor:
    """Scale each example by ``factor`` (shape ``(B,)``), or add it when ``additive``."""
    f = _per_example(factor, x).to(x.dtype)
    return x + f if additive else x * f


def crop(x: Tensor, offset: Tensor, length: int) -> Tensor:
    """Take ``length`` samples from ``offset`` (shape ``(B,)``) along the last axis.

    Args:
        x: ``(B, ..., T)`` with ``T >= length``.
        offset: Start per example, int64 in ``[0, T - length]``.
        length: Output length.

    Returns:
        Tensor of shape ``(B, ..., length)``.
    """
    idx = offset.reshape(-1, *([1] * (x.ndim - 1))) + torch.arange(length, device=x.device)
    return torch.gather(x, -1, idx.expand(*x.shape[:-1], length))


def shift(x: Tensor, amount: Tensor, rollover: bool = True) -> Tensor:
    """Shift each example along the last axis by ``amount`` samples (shape ``(B,)``).

    Positive shifts move content later. With ``rollover`` the samples that fall
    off one end come back at the other (``torch.roll`` per example); otherwise
    the vacated samples are zero.
    """
    n = x.shape[-1]
    src = torch.arange(n, device=x.device) - amount.reshape(-1, *([1] * (x.ndim - 1)))
    out = torch.gather(x, -1, torch.remainder(src, n).expand(x.shape))
    if rollover:
        return out
    return torch.where((src >= 0) & (src < n), out, torch.zeros((), dtype=x.dtype,
                                                                device=x.device))


def mix(x: Tensor, target: Tensor, lam: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """Mixup: ``lam * x + (1 - lam) * x[perm]``, and the same for soft targets.

    Args:
        x: Batch ``(B, ...)``.
        target: Soft targets ``(B, K)``.
        lam: Mixing weights ``(B,)`` in ``[0, 1]``.
        perm: Partner index per example ``(B,)``.

    Returns:
        ``(mixed x, mixed target)`` with the input shapes.
    """
    lx = _per_example(lam, x).to(x.dtype)
    lt = lam.unsqueeze(-1).to(target.dtype)
    return lx * x + (1 - lx) * x[perm], lt * target + (1 - lt) * target[perm]
