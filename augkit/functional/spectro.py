"""Pure batched spectrogram warps and filters: time warp, resized crop, FilterAugment gains.

Shapes: spectrograms ``(B, C, F, T)`` (or ``(B, F, T)``); every parameter has a
leading batch dim ``B``. Nothing here draws random numbers or syncs the host.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["time_warp", "resized_crop", "band_gains", "filter_augment"]


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32, or float64 for float64 input (so a float64 identity stays bit-exact)."""
    return torch.promote_types(x.dtype, torch.float32)


def time_warp(x: Tensor, point: Tensor, distance: Tensor) -> Tensor:
    """SpecAugment time warp: move frame ``point`` to ``point + distance``.

    The time axis is mapped piecewise linearly: output frames ``[0, point +
    distance]`` read input frames ``[0, point]`` and output frames ``[point +
    distance, T - 1]`` read ``[point, T - 1]``, so frames 0 and ``T - 1`` stay in
    place. Each output frame linearly interpolates its two neighbouring source
    frames (one gather of both and a lerp along time). Source positions are
    computed in integer arithmetic (frame and exact remainder), so
    ``distance == 0`` gives the input back bit-identical and every dtype reads
    the same positions.

    Args:
        x: Spectrogram ``(B, ..., T)``, e.g. ``(B, C, F, T)``.
        point: Warp point per example, int64 ``(B,)``, in ``[1, T - 2]`` when
            ``distance != 0``.
        distance: Signed shift of the warp point in frames, int64 ``(B,)``, with
            ``1 <= point + distance <= T - 2`` when nonzero.

    Returns:
        Tensor like ``x``.
    """
    t = x.shape[-1]
    dtype = _compute_dtype(x)
    view = (-1, *([1] * (x.ndim - 1)))
    w0 = point.reshape(view)
    w1 = (point + distance).reshape(view)
    last = t - 1
    pos = torch.arange(t, device=x.device)
    # Source position num / den + offset in integer arithmetic: the frame index and the
    # fraction are exact (distance 0 gives fraction 0), whatever the dtype of x.
    before = pos < w1
    num = torch.where(before, pos * w0, (pos - w1) * (last - w0))
    den = torch.where(before, w1, last - w1).clamp_min(1)
    i0 = torch.where(before, 0, w0) + torch.div(num, den, rounding_mode="floor")
    frac = torch.remainder(num, den).to(dtype) / den.to(dtype)
    i0 = i0.clamp(0, last)
    i1 = (i0 + 1).clamp_max(last)
    xf = x.to(dtype)
    a = torch.gather(xf, -1, i0.expand(x.shape))
    b = torch.gather(xf, -1, i1.expand(x.shape))
    # a * (1 - f) + b * f: at f == 0 this is a * 1 + b * 0 == a exactly (finite b).
    return (a * (1.0 - frac) + b * frac).to(x.dtype)


def resized_crop(x: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor,
                 canvas: tuple[int, int]) -> Tensor:
    """Crop a box from a zero-padded canvas and resize it back to ``(F, T)``.

    The canvas is ``canvas = (Fc, Tc)`` frames, ``>= (F, T)``, with ``x``
    centred in it (offset ``((Fc - F) // 2, (Tc - T) // 2)``) and zeros around.
    Each example's box ``[top, top + height) x [left, left + width)`` of the
    canvas is resized to ``(F, T)`` by bilinear interpolation with aligned
    corners (the box's first and last rows/columns land on the output's), as
    ``torch.nn.functional.interpolate(box, (F, T), mode="bilinear",
    align_corners=True)`` does: one batched ``grid_sample`` with a per-example
    affine grid, reading zeros outside ``x``.

    Args:
        x: Spectrogram ``(B, C, F, T)`` or ``(B, F, T)``.
        top, left: Box corner in canvas coordinates, int64 ``(B,)``.
        height, width: Box size, int64 ``(B,)``, ``>= 1``.
        canvas: ``(Fc, Tc)``, the canvas size.

    Returns:
        Tensor like ``x``, computed in float32.
    """
    squeeze = x.ndim == 3
    xs = x.unsqueeze(1) if squeeze else x
    b, f, t = xs.shape[0], xs.shape[-2], xs.shape[-1]
    # float32 for every input dtype: resampling is approximate anyway, and float64 input
    # then gives the float32 result (the grid's float32 rounding moves samples by ~1e-6).
    dtype = torch.float32
    off_f, off_t = (canvas[0] - f) // 2, (canvas[1] - t) // 2
    df, dt = float(max(f - 1, 1)), float(max(t - 1, 1))
    h, w = height.to(dtype), width.to(dtype)
    # Output u in [-1, 1] -> box row top + (u + 1) / 2 * (h - 1) -> input row minus off_f
    # -> grid coordinate 2 * row / (F - 1) - 1 (align_corners=True).
    sy = (h - 1.0) / df
    ty = (2.0 * (top - off_f).to(dtype) + h - 1.0) / df - 1.0
    sx = (w - 1.0) / dt
    tx = (2.0 * (left - off_t).to(dtype) + w - 1.0) / dt - 1.0
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, tx], -1), torch.stack([zero, sy, ty], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, [b, 1, f, t], align_corners=True)
    y = torch.nn.functional.grid_sample(xs.to(dtype), grid, mode="bilinear",
                                        padding_mode="zeros", align_corners=True)
    y = y.squeeze(1) if squeeze else y
    return y.to(x.dtype)


def band_gains(edges: Tensor, gains: Tensor, n_freq: int, linear: bool) -> Tensor:
    """Per-bin gains of FilterAugment's bands, ``(B, n_freq)``.

    Args:
        edges: Band edges ``(B, K + 1)`` int64, non-decreasing, ``edges[:, 0] == 0``
            and ``edges[:, K] == n_freq``; band ``k`` covers bins ``[edges[k],
            edges[k + 1])`` (an empty band covers none).
        gains: Step: ``(B, K)``, one gain per band. Linear: ``(B, K + 1)``; band ``k``
            goes from ``gains[k]`` at its first bin to ``gains[k + 1]`` at its last
            (``torch.linspace`` over the band's bins, as the reference code).
        n_freq: Number of bins ``F``.
        linear: Which of the two.

    Returns:
        ``(B, n_freq)`` gains, ``gains``' dtype.
    """
    k_max = edges.shape[1] - 1
    pos = torch.arange(n_freq, device=edges.device)
    # Band of each bin: how many inner edges lie at or below it.
    band = (pos >= edges[:, 1:k_max].unsqueeze(-1)).sum(1)  # (B, F), in [0, K - 1]
    if not linear:
        return torch.gather(gains, 1, band)
    start = torch.gather(edges, 1, band)
    size = torch.gather(edges, 1, band + 1) - start
    frac = (pos - start).to(gains.dtype) / (size - 1).clamp_min(1).to(gains.dtype)
    g0 = torch.gather(gains, 1, band)
    g1 = torch.gather(gains, 1, band + 1)
    return g0 + frac * (g1 - g0)


def filter_augment(x: Tensor, edges: Tensor, gains: Tensor, linear: bool) -> Tensor:
    """FilterAugment on log features: add per-bin gains along ``F``, shared over time.

    Args:
        x: Log-mel (dB) ``(B, C, F, T)`` or ``(B, F, T)``.
        edges, gains, linear: As :func:`band_gains`, gains in ``x``'s units (dB).

    Returns:
        ``x + gain`` per bin, like ``x``. All gains 0 gives ``x`` back exactly.
    """
    f = x.shape[-2]
    g = band_gains(edges, gains.to(_compute_dtype(x)), f, linear)
    g = g.reshape(x.shape[0], *([1] * (x.ndim - 3)), f, 1)
    return (x.to(g.dtype) + g).to(x.dtype)
