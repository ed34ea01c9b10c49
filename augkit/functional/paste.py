"""Cut-and-paste mixing of spectrograms (CutMix, SpecMix): pure, batched ops.

A region of each example's time-frequency plane is replaced by the same region
of a partner example, and the soft targets are weighted by the region's exact
area. Regions are unions of intervals along the time and frequency axes, built
by ``torch.arange`` comparisons: no loop over examples, no host sync.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["band_mask", "cut_mix", "pasted_area"]


def band_mask(start: Tensor, width: Tensor, length: int) -> Tensor:
    """Which positions of an axis of ``length`` lie in any band ``[start, start + width)``.

    Args:
        start: Band starts, int64 ``(B,)`` (one band) or ``(B, M)`` (``M`` bands).
        width: Band widths like ``start``; width 0 covers nothing. Bands may
            overlap and may reach past ``length`` (the excess covers nothing).
        length: Positions along the axis (``F`` or ``T``).

    Returns:
        Bool tensor ``(B, length)``: the union of each example's bands.
    """
    if start.ndim == 1:
        start, width = start.unsqueeze(-1), width.unsqueeze(-1)
    pos = torch.arange(length, device=start.device)
    s, e = start.unsqueeze(-1), (start + width).unsqueeze(-1)
    return ((pos >= s) & (pos < e)).any(dim=1)


def pasted_area(time_hit: Tensor, freq_hit: Tensor | None = None, union: bool = False
                ) -> Tensor:
    """Fraction of the ``F x T`` plane taken from the partner, float32 ``(B,)``.

    From whole-number counts (``a`` frames of ``T``, ``b`` bins of ``F``), so it
    is the exact fraction of elements that :func:`cut_mix` replaces: ``a * b``
    elements for a box, ``a * F + b * T - a * b`` for a union of bands.

    Args:
        time_hit: Bool ``(B, T)``: frames taken from the partner.
        freq_hit: Bool ``(B, F)``: bins taken from the partner, or ``None`` for
            all of them (whole time segments).
        union: ``False``: the box ``time x freq`` (CutMix); ``True``: every
            frame of ``time_hit`` and every bin of ``freq_hit`` (SpecMix).
    """
    t = time_hit.shape[-1]
    a = time_hit.sum(-1)
    if freq_hit is None:
        return (a.double() / t).float()
    f = freq_hit.shape[-1]
    b = freq_hit.sum(-1)
    count = a * f + b * t - a * b if union else a * b
    return (count.double() / (f * t)).float()


def cut_mix(x: Tensor, target: Tensor | None, perm: Tensor, time_hit: Tensor,
            freq_hit: Tensor | None = None, union: bool = False
            ) -> tuple[Tensor, Tensor | None]:
    """Paste the partner's region into each example; weight targets by its area.

    ``y[i] = where(region_i, x[perm[i]], x[i])`` (every channel alike), and
    ``target[i] * (1 - a_i) + target[perm[i]] * a_i`` with ``a_i`` the region's
    exact area fraction (:func:`pasted_area`). An empty region leaves the
    example and its target exactly as they were.

    Args:
        x: Spectrograms ``(B, C, F, T)``.
        target: Soft targets ``(B, K)``, or ``None`` to mix the inputs alone.
        perm: Partner index per example, int64 ``(B,)``.
        time_hit: Bool ``(B, T)``: frames of the region (:func:`band_mask`).
        freq_hit: Bool ``(B, F)``: bins of the region, or ``None`` for all bins.
        union: Combine as a box (``False``, CutMix) or as a union of time bands
            and frequency bands (``True``, SpecMix).

    Returns:
        ``(mixed x (B, C, F, T), mixed target (B, K) or None)``.
    """
    b = x.shape[0]
    region = time_hit.view(b, 1, 1, -1)
    if freq_hit is not None:
        rows = freq_hit.view(b, 1, -1, 1)
        region = (region | rows) if union else (region & rows)
    mixed = torch.where(region, x[perm], x)
    if target is None:
        return mixed, None
    area = pasted_area(time_hit, freq_hit, union).unsqueeze(-1).to(target.dtype)
    return mixed, (1 - area) * target + area * target[perm]
