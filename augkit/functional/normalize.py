"""Deterministic normalisation maths: per-example max and standardisation, fitted
per-frequency moments, and ITU-R BS.1770-4 integrated loudness.

Everything is batched over examples with no host sync: masks from ``lengths``
are built with ``torch.arange`` comparisons, selections with ``torch.where``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .augment import valid_mask

__all__ = [
    "max_normalize",
    "standardize",
    "frame_moments",
    "k_weighting",
    "integrated_loudness",
    "loudness_normalize",
]

#: BS.1770-4 gating: 400 ms blocks, 75 % overlap, absolute gate, relative gate.
BLOCK_S = 0.400
OVERLAP = 0.75
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
#: BS.1770-4 channel weights, in pyloudnorm's order (L, R, C, Ls, Rs).
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 input, else float32 (bf16/fp16 statistics in float32)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def max_normalize(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Subtract each example's maximum, so that its loudest bin is 0.

    Args:
        x: Features in dB (or dB times a scale), ``(B, C, F, T)`` (any
            ``(B, ..., T)``).
        lengths: Valid frames per example ``(B,)``: the maximum is taken over those
            only; the whole example (padding included) is shifted by it. An example
            with no valid frame is left as it is. (Default: all frames)

    Returns:
        Tensor like ``x`` (same dtype).
    """
    dims = tuple(range(1, x.ndim))
    mask = valid_mask(x, lengths)
    src = x if mask is None else torch.where(mask, x, float("-inf"))
    peak = src.amax(dim=dims, keepdim=True)
    if mask is not None:  # no valid frame: no shift (and no inf)
        peak = torch.where(torch.isfinite(peak), peak, 0.0)
    return x - peak


def standardize(x: Tensor, lengths: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Per-example standardisation ``(x - mean) / max(std, eps)`` over all non-batch dims.

    ``std`` is the population standard deviation (``ddof=0``, as ``numpy.std``).

    Args:
        x: Features ``(B, C, F, T)`` (any ``(B, ..., T)``).
        lengths: Valid frames per example ``(B,)``: the statistics use those
            only, and the padded frames are set to 0 afterwards. (Default: all)
        eps: Floor on the standard deviation. (Default: ``1e-5``)

    Returns:
        Tensor like ``x`` (same dtype); statistics in float32 (float64 for
        float64 input).
    """
    dims = tuple(range(1, x.ndim))
    xc = x.to(_compute_dtype(x))
    mask = valid_mask(x, lengths)
    if mask is None:
        mean = xc.mean(dim=dims, keepdim=True)
        var = (xc - mean).square().mean(dim=dims, keepdim=True)
    else:
        count = (mask.sum(dim=dims, keepdim=True) * (x[0].numel() // x.shape[-1])).clamp_min(1)
        mean = torch.where(mask, xc, 0.0).sum(dim=dims, keepdim=True) / count
        var = torch.where(mask, (xc - mean).square(), 0.0).sum(dim=dims, keepdim=True) / count
    y = (xc - mean) / var.sqrt().clamp_min(eps)
    if mask is not None:
        y = torch.where(mask, y, 0.0)
    return y.to(x.dtype)


def frame_moments(x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Per-frequency count, mean and sum of squared deviations over all frames, float64.

    Args:
        x: Features ``(B, C, F, T)`` or ``(B, F, T)``; a frame is one ``(b, c, t)``.
        lengths: Valid frames per example ``(B,)``; only those count. (Default: all)

    Returns:
        ``(count, mean, m2)``: ``count`` a float64 scalar tensor (frames seen),
        ``mean`` and ``m2`` float64 ``(F,)``; with no frame, ``mean`` and ``m2`` are 0.
        Merge batches with Chan et al.'s parallel update (what
        :class:`~augkit.FrequencyStandardize` does).
    """
    xd = x.to(torch.float64)
    dims = tuple(d for d in range(x.ndim) if d != x.ndim - 2)
    mask = valid_mask(x, lengths)
    if mask is None:
        count = torch.full((), float(x.numel() // x.shape[-2]), dtype=torch.float64,
                           device=x.device)
        mean = xd.mean(dim=dims)
        m2 = (xd - mean[:, None]).square().sum(dim=dims)
        return count, mean, m2
    per_row = x[0].numel() // (x.shape[-2] * x.shape[-1])  # channels
    count = lengths.to(torch.float64).clamp(0, x.shape[-1]).sum() * per_row
    mean = torch.where(mask, xd, 0.0).sum(dim=dims) / count.clamp_min(1)
    m2 = torch.where(mask, (xd - mean[:, None]).square(), 0.0).sum(dim=dims)
    return count, mean, m2


def k_weighting(sample_rate: float) -> tuple[tuple[list[float], list[float]], ...]:
    """BS.1770-4 K-weighting as two biquads, with coefficients derived as pyloudnorm does.

    Stage 1 is a high shelf (+4 dB, ``Q = 1/sqrt(2)``, 1500 Hz), stage 2 a high
    pass (``Q = 0.5``, 38 Hz), both from the RBJ cookbook formulae of
    ``pyloudnorm.iirfilter.IIRfilter`` (``"high_shelf"`` and ``"high_pass"``), so
    they are defined for any sample rate (not only the 48 kHz table of the
    standard).

    Args:
        sample_rate: Sample rate in Hz.

    Returns:
        ``((b, a), (b, a))`` in filtering order, each a list of three floats
        normalised so that ``a[0] == 1``.
    """
    stages = []
    for kind, gain_db, q, fc in (("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0),
                                 ("high_pass", 0.0, 0.5, 38.0)):
        big_a = 10 ** (gain_db / 40.0)
        w0 = 2.0 * math.pi * (fc / sample_rate)
        alpha = math.sin(w0) / (2.0 * q)
        cos, sq = math.cos(w0), math.sqrt(big_a)
        if kind == "high_shelf":
            b = [big_a * ((big_a + 1) + (big_a - 1) * cos + 2 * sq * alpha),
                 -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
                 big_a * ((big_a + 1) + (big_a - 1) * cos - 2 * sq * alpha)]
            a = [(big_a + 1) - (big_a - 1) * cos + 2 * sq * alpha,
                 2 * ((big_a - 1) - (big_a + 1) * cos),
                 (big_a + 1) - (big_a - 1) * cos - 2 * sq * alpha]
        else:
            b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
            a = [1 + alpha, -2 * cos, 1 - alpha]
        stages.append(([v / a[0] for v in b], [v / a[0] for v in a]))
    return tuple(stages)


def _num_blocks(seconds):
    """Gating blocks for a clip of ``seconds`` (pyloudnorm's ``numBlocks``, eq. 3)."""
    step = BLOCK_S * (1.0 - OVERLAP)
    if isinstance(seconds, Tensor):
        return torch.round((seconds - BLOCK_S) / step).to(torch.int64) + 1
    return int(round((seconds - BLOCK_S) / step)) + 1


def integrated_loudness(x: Tensor, sample_rate: int, lengths: Tensor | None = None) -> Tensor:
    """Integrated loudness per example (ITU-R BS.1770-4), as ``pyloudnorm.Meter``.

    K-weighting (:func:`k_weighting`, run with ``torchaudio.functional.lfilter``
    in float64), mean square over 400 ms blocks with 75 % overlap (block bounds
    and count as pyloudnorm computes them), channel weights 1.0 for L/R/C and
    1.41 for Ls/Rs, absolute gate -70 LUFS, relative gate -10 LU. Matches
    ``pyloudnorm.Meter(sample_rate).integrated_loudness`` on each example alone
    (its valid samples, ``(T, C)``).

    Args:
        x: Waveforms ``(B, C, T)`` with ``C <= 5``, or ``(B, T)``.
        sample_rate: Sample rate in Hz.
        lengths: Valid samples per example ``(B,)``; only those are measured.
            (Default: all of ``T``)

    Returns:
        Loudness in LUFS, ``(B,)``, float32 (float64 for float64 input):
        ``-inf`` where every block is gated out (silence, as pyloudnorm), ``nan``
        for clips shorter than one 400 ms block (pyloudnorm raises there).

    Raises:
        ValueError: Not ``(B, T)`` or ``(B, C, T)``, or more than 5 channels.
    """
    from torchaudio.functional import lfilter

    if x.ndim == 2:
        x = x.unsqueeze(1)
    if x.ndim != 3 or x.shape[1] > len(CHANNEL_WEIGHTS):
        raise ValueError(f"integrated_loudness expects waveforms (B, C, T) with C <= 5 "
                         f"(BS.1770 channels L, R, C, Ls, Rs), got shape {tuple(x.shape)}")
    batch, chans, n = x.shape
    dev, f64 = x.device, torch.float64
    y = x.to(f64)
    with torch.autocast(dev.type, enabled=False):  # lfilter's FIR part is a conv1d
        for b, a in k_weighting(sample_rate):  # coefficients filled on the device: no copy
            b_t, a_t = (torch.stack([torch.full((), v, dtype=f64, device=dev) for v in c])
                        for c in (b, a))
            y = lfilter(y, a_t, b_t, clamp=False)
    mask = valid_mask(y, lengths)
    sq = y.square() if mask is None else torch.where(mask, y.square(), 0.0)
    csum = torch.nn.functional.pad(sq.cumsum(-1), (1, 0))  # (B, C, T + 1)

    # Block bounds in samples as pyloudnorm computes them (int of the same float64
    # products), for the most blocks any example can have; shorter ones mask the rest.
    n_max = max(1, _num_blocks(n / sample_rate))
    j = torch.arange(n_max, dtype=f64, device=dev) * (1.0 - OVERLAP)
    lo = (BLOCK_S * j * sample_rate).to(torch.int64)
    hi = (BLOCK_S * (j + 1) * sample_rate).to(torch.int64).clamp_max(n)
    z = (csum.index_select(-1, hi) - csum.index_select(-1, lo)) / (BLOCK_S * sample_rate)
    ones = torch.ones(chans, dtype=f64, device=dev)
    weights = torch.where(torch.arange(chans, device=dev) >= 3, ones * CHANNEL_WEIGHTS[3], ones)
    power = (z * weights[:, None]).sum(1)  # (B, J)

    if lengths is None:
        valid_len = torch.full((batch,), n, dtype=f64, device=dev)
    else:
        valid_len = lengths.to(f64).clamp(0, n)
    blocks = _num_blocks(valid_len / sample_rate)  # (B,)
    in_clip = torch.arange(n_max, device=dev) < blocks[:, None]
    block_lufs = -0.691 + 10.0 * torch.log10(power)  # -inf for silent blocks

    def gated_mean(gate: Tensor) -> tuple[Tensor, Tensor]:
        count = gate.sum(-1)
        return torch.where(gate, power, 0.0).sum(-1) / count.clamp_min(1), count

    gate = in_clip & (block_lufs >= ABSOLUTE_GATE)
    mean, count = gated_mean(gate)
    relative = torch.where(count > 0, -0.691 + 10.0 * torch.log10(
        torch.where(count > 0, mean, 1.0)) + RELATIVE_GATE, float("inf"))
    gate = in_clip & (block_lufs > relative[:, None]) & (block_lufs > ABSOLUTE_GATE)
    mean, count = gated_mean(gate)
    ok = (count > 0) & (mean > 0)
    lufs = torch.where(ok, -0.691 + 10.0 * torch.log10(torch.where(ok, mean, 1.0)),
                       float("-inf"))
    lufs = torch.where(valid_len < BLOCK_S * sample_rate, float("nan"), lufs)
    return lufs.to(_compute_dtype(x))


def loudness_normalize(x: Tensor, sample_rate: int, target_lufs: float = -23.0,
                       lengths: Tensor | None = None) -> Tensor:
    """Scale each example to an integrated loudness of ``target_lufs``.

    The gain is ``10 ** ((target_lufs - L) / 20)`` with ``L`` from
    :func:`integrated_loudness` (as ``pyloudnorm.normalize.loudness``), one per
    example, shared by its channels. Clips shorter than one 400 ms block and
    silent clips (every block gated out) are returned unchanged. Padding after
    ``lengths`` stays as it is (zero padding stays zero).

    Args:
        x: Waveforms ``(B, C, T)`` with ``C <= 5``, or ``(B, T)``.
        sample_rate: Sample rate in Hz.
        target_lufs: Loudness to reach, in LUFS. (Default: ``-23.0``, EBU R 128)
        lengths: Valid samples per example ``(B,)``. (Default: all of ``T``)

    Returns:
        Tensor like ``x`` (same dtype).
    """
    lufs = integrated_loudness(x, sample_rate, lengths).to(torch.float64)
    ok = torch.isfinite(lufs)
    gain = torch.where(ok, 10.0 ** ((target_lufs - torch.where(ok, lufs, 0.0)) / 20.0), 1.0)
    gain = gain.reshape(-1, *([1] * (x.ndim - 1)))
    y = x * gain.to(_compute_dtype(x))
    mask = valid_mask(x, lengths)
    if mask is not None:
        y = torch.where(mask, y, x)
    return y.to(x.dtype)
