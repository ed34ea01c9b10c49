"""Pure batched waveform ops that respect padding: peak normalisation and time reversal.

Shapes: ``(B, ..., T)``, usually waveforms ``(B, C, T)``; ``lengths`` ``(B,)``
counts each example's valid samples (the rest is padding at the end).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .augment import valid_mask

__all__ = ["peak_normalize", "reverse"]


def peak_normalize(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Divide each example by its peak ``max |x|`` over channels and valid samples.

    Args:
        x: Batch ``(B, ..., T)``.
        lengths: Valid samples per example, int64 ``(B,)``: the peak is taken
            there, and the padding after it is left as it is. (Default: all of ``T``)

    Returns:
        Tensor like ``x``; each example's valid peak is exactly 1. A silent
        example (peak 0) stays as it is: no NaN.
    """
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    mag = xf.abs()
    mask = valid_mask(x, lengths)
    if mask is not None:
        mag = torch.where(mask, mag, 0.0)
    peak = mag.amax(dim=tuple(range(1, x.ndim)), keepdim=True)
    # Divide (not multiply by a reciprocal): the peak sample becomes exactly +-1.
    y = xf / torch.where(peak > 0, peak, 1.0)
    if mask is not None:
        y = torch.where(mask, y, xf)
    return y.to(x.dtype)


def reverse(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Reverse each example in time; with ``lengths`` only its valid part.

    Sample ``t < length`` becomes sample ``length - 1 - t``; padding (``t >=
    length``) stays where it is, at the end. One gather.

    Args:
        x: Batch ``(B, ..., T)``.
        lengths: Valid samples per example, int64 ``(B,)``. (Default: all of ``T``,
            i.e. ``torch.flip(x, (-1,))``)

    Returns:
        Tensor like ``x``.
    """
    if lengths is None:
        return torch.flip(x, (-1,))
    t = x.shape[-1]
    pos = torch.arange(t, device=x.device)
    n = lengths.clamp(0, t).reshape(-1, *([1] * (x.ndim - 1)))
    idx = torch.where(pos < n, n - 1 - pos, pos)
    return torch.gather(x, -1, idx.expand(x.shape))
