"""Batched non-linear distortion and quantisation, per-example parameters.

Every op works on waveforms ``(B, C, T)`` (any ``(B, ..., T)``), takes its
parameters as ``(B,)`` tensors, computes in float32 and returns the input's
dtype. Ops whose effect depends on level take ``lengths`` ``(B,)``: the level
is measured over the valid samples only, and the padding after them is left
as it is.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .augment import per_example, signal_rms, valid_mask

__all__ = ["abs_quantile", "alias", "bit_crush", "clip", "mu_law", "tanh_distortion"]

CLIP_MODES = ("hard", "soft")


def _keep_padding(y: Tensor, x: Tensor, lengths: Tensor | None) -> Tensor:
    mask = valid_mask(x, lengths)
    y = y.to(x.dtype)
    return y if mask is None else torch.where(mask, y, x)


def abs_quantile(x: Tensor, q: Tensor, lengths: Tensor | None = None) -> Tensor:
    """The ``q``-quantile of ``|x|`` per example, over its channels and valid samples.

    Linear interpolation between order statistics (numpy's default ``"linear"``
    method): with ``n`` values sorted, position ``q (n - 1)``. On the CPU by radix
    selection (:func:`select_nonnegative`, no sort), elsewhere one segmented sort
    (no host sync).

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        q: Quantile levels in ``[0, 1]``, ``(B,)``.
        lengths: Valid samples per example ``(B,)``. (Default: all of ``T``)

    Returns:
        ``(B,)`` float32 (0 for an example with no valid samples).

    Example:
        >>> abs_quantile(torch.tensor([[[-4.0, 1.0, 2.0, -3.0, 9.0]]]), torch.tensor([0.5]),
        ...              lengths=torch.tensor([4]))
        tensor([2.5000])
    """
    a = x.float().abs()
    b, per_time = x.shape[0], x[0].numel() // max(x.shape[-1], 1)
    if lengths is None:
        count = torch.full((b,), x[0].numel(), device=x.device)
    else:
        a = torch.where(valid_mask(x, lengths), a, math.inf)  # sorted after the valid ones
        count = lengths.clamp(0, x.shape[-1]) * per_time
    flat = a.reshape(b, -1)
    pos = q.double().clamp(0, 1) * (count - 1).clamp_min(0)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, (count - 1).clamp_min(0))
    pair = _pair_by_selection if flat.device.type == "cpu" and flat.shape[1] else _pair_by_sort
    v_lo, v_hi = pair(flat, lo, hi)
    v = v_lo + (pos - lo).float() * (v_hi - v_lo)
    return torch.where(count > 0, v, 0.0)


def _pair_by_sort(a: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's order statistics ``lo`` and ``hi`` ``(B,)``: one segmented sort (GPU)."""
    ordered = a.sort(dim=1).values
    return ordered.gather(1, lo[:, None]).squeeze(1), ordered.gather(1, hi[:, None]).squeeze(1)


def _pair_by_selection(a: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """The same for ``hi`` in ``{lo, lo + 1}``, without a sort (CPU)."""
    v_lo = select_nonnegative(a, lo)
    at_most = (a <= v_lo[:, None]).sum(1)  # rank hi is v_lo again, or the next value up
    above = torch.where(a > v_lo[:, None], a, math.inf).amin(1)
    return v_lo, torch.where(at_most > hi, v_lo, above)


#: Radix digits of a non-negative float32's bits (sign bit 0), most significant first:
#: (shift, bits) covering bits 30..0.
_DIGITS = ((20, 11), (10, 10), (0, 10))


def select_nonnegative(a: Tensor, k: Tensor) -> Tensor:
    """The ``k``-th smallest value of each row (0-based), by radix selection: CPU.

    A non-negative float32's bits, read as an int32, order as the floats do (``inf``
    and NaN last, as :func:`torch.sort` puts them). Three histogram passes over 11,
    10 and 10 bits find the value's bits from the top: each pass counts, per row,
    the values below the prefix found so far (bucket 0), those in each digit under
    it, and those above (the last bucket), so the cumulative counts are ranks. Exact
    (the same value as ``a.sort(1).values.gather(1, k)``) and about 15x faster than
    the sort on the CPU for rows of 10^5 samples; ``torch.bincount`` reads the
    data's maximum (a host sync on a GPU), so it is meant for the CPU.

    Args:
        a: ``(B, N)`` float32, every value ``>= 0`` (or ``inf``/NaN), ``N >= 1``.
        k: ``(B,)`` integer ranks in ``[0, N)``.

    Returns:
        ``(B,)`` float32.

    Example:
        >>> select_nonnegative(torch.tensor([[3.0, 0.5, 2.0, 0.5]]), torch.tensor([2]))
        tensor([2.])
    """
    bits_of = a.contiguous().view(torch.int32)
    b = a.shape[0]
    prefix = torch.zeros(b, dtype=torch.int32, device=a.device)
    for shift, bits in _DIGITS:
        buckets = (1 << bits) + 2  # below the prefix, the digits, above it
        digit = bits_of >> shift if shift else bits_of.clone()
        digit.sub_((prefix << bits)[:, None] - 1).clamp_(0, buckets - 1)
        digit.add_(torch.arange(b, dtype=torch.int32, device=a.device)[:, None] * buckets)
        counts = torch.bincount(digit.view(-1), minlength=b * buckets).view(b, buckets)
        found = (counts.cumsum(1) <= k[:, None]).sum(1)  # the bucket holding rank k
        prefix = (prefix << bits) | (found - 1).to(torch.int32)
    return prefix.view(torch.float32)


def clip(x: Tensor, threshold: Tensor, mode: str = "hard",
         lengths: Tensor | None = None) -> Tensor:
    """Clip each example at its own threshold.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        threshold: ``(B,)``, ``>= 0``.
        mode: ``"hard"``: ``clamp(x, -t, t)``; ``"soft"``: ``t tanh(x / t)`` (smooth,
            slope 1 at 0, never above ``t``).
        lengths: Valid samples per example ``(B,)``; the padding is kept.

    Returns:
        Tensor like ``x``.

    Example:
        >>> clip(torch.tensor([[[-2.0, 0.5, 3.0]]]), torch.tensor([1.0]))
        tensor([[[-1.0000,  0.5000,  1.0000]]])
    """
    if mode not in CLIP_MODES:
        raise ValueError(f"mode must be one of {CLIP_MODES}, got {mode!r}")
    t = per_example(threshold.float(), x)
    w = x.float()
    if mode == "hard":
        y = torch.minimum(torch.maximum(w, -t), t)
    else:
        t = t.clamp_min(torch.finfo(torch.float32).tiny)
        y = t * torch.tanh(w / t)
    return _keep_padding(y, x, lengths)


def tanh_distortion(x: Tensor, drive_db: Tensor, lengths: Tensor | None = None,
                    reference_rms: float = 0.1) -> Tensor:
    """``tanh`` saturation with a per-example drive, the RMS kept.

    Each example is scaled so that its RMS (over channels and valid samples) is
    ``reference_rms`` times ``10 ** (drive_db / 20)``, passed through ``tanh``,
    and scaled back to its own RMS: the drive, not the input's level, sets how
    hard it saturates, and the level is kept. A silent example stays silent.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        drive_db: ``(B,)`` drive in dB over ``reference_rms``.
        lengths: Valid samples per example ``(B,)``; the padding is kept.
        reference_rms: RMS into the ``tanh`` at 0 dB drive. (Default: ``0.1``)

    Returns:
        Tensor like ``x``.

    Example:
        >>> x = torch.sin(torch.linspace(0, 20, 400)).view(1, 1, -1)
        >>> y = tanh_distortion(x, torch.tensor([20.0]))
        >>> float(y.square().mean() / x.square().mean())
        1.0...
    """
    w = x.float()
    rms = signal_rms(w, lengths)
    pre = torch.pow(10.0, drive_db.float() / 20) * reference_rms / rms.clamp_min(1e-12)
    mask = valid_mask(w, lengths)
    y = torch.tanh(w * per_example(pre, w))
    if mask is not None:
        y = torch.where(mask, y, 0.0)
    out_rms = signal_rms(y, lengths)
    y = y * per_example(rms / out_rms.clamp_min(1e-30), y)
    return _keep_padding(y, x, lengths)


def bit_crush(x: Tensor, bit_depth: Tensor) -> Tensor:
    """Round each example to a uniform grid of ``2 ** bit_depth`` levels over ``[-1, 1)``.

    The step is ``2 ** (1 - bit_depth)`` (full scale 2, as ``bit_depth``-bit PCM);
    rounding to the nearest level (mid-tread, so 0 stays 0). Values beyond
    ``[-1, 1]`` are clipped to ``[-1, 1 - step]`` as a PCM converter would.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        bit_depth: ``(B,)`` integers ``>= 1`` (or floats: fractional depths).

    Returns:
        Tensor like ``x``.

    Example:
        >>> bit_crush(torch.tensor([[[0.3, -0.6, 0.99]]]), torch.tensor([2]))
        tensor([[[ 0.5000, -0.5000,  0.5000]]])
    """
    step = per_example(torch.pow(2.0, 1.0 - bit_depth.float()), x)
    y = x.float().div(step).round_().mul_(step)  # one buffer, in place
    return y.clamp_(min=-1.0).clamp_(max=1.0 - step).to(x.dtype)


def mu_law(x: Tensor, quantization_channels: Tensor) -> Tensor:
    """mu-law encode then decode, ``quantization_channels`` per example.

    The formulas of ``torchaudio.functional.mu_law_encoding`` and
    ``mu_law_decoding`` with ``mu = channels - 1``; ``x`` is clamped to ``[-1, 1]``
    first (torchaudio expects it there).

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        quantization_channels: ``(B,)``, ``>= 2``.

    Returns:
        Tensor like ``x``.

    Example:
        >>> mu_law(torch.tensor([[[0.5, -1.0]]]), torch.tensor([256])).round(decimals=4)
        tensor([[[ 0.4967, -1.0000]]])
    """
    mu = per_example(quantization_channels.float() - 1.0, x)
    w = x.float().clamp(-1.0, 1.0)
    log1p_mu = torch.log1p(mu)
    enc = torch.sign(w) * torch.log1p(mu * w.abs()) / log1p_mu
    code = torch.floor((enc + 1) / 2 * mu + 0.5)  # torchaudio's .to(int64) of a value >= 0
    dec = code / mu * 2 - 1
    y = torch.sign(dec) * (torch.exp(dec.abs() * log1p_mu) - 1.0) / mu
    return y.to(x.dtype)


def alias(x: Tensor, rate_hz: Tensor, sample_rate: float) -> Tensor:
    """Resample down to ``rate_hz`` with no low-pass, then back up: aliasing.

    Down: the sample nearest each instant ``m / rate_hz`` (nearest-neighbour
    decimation, no anti-aliasing filter, so content above ``rate_hz / 2`` folds
    back below it). Up: linear interpolation between those samples (no
    anti-imaging filter either), back on the input's grid; ``rate_hz =
    sample_rate`` gives the input back.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        rate_hz: ``(B,)`` intermediate rates in ``(0, sample_rate]``.
        sample_rate: The input's rate in Hz.

    Returns:
        Tensor like ``x``.

    Example:
        >>> x = torch.tensor([[[0.0, 1.0, 0.0, -1.0, 0.0, 1.0, 0.0, -1.0]]])  # fs / 4
        >>> alias(x, torch.tensor([8000.0]), 16000)  # held at fs / 2: folds to 0 Hz
        tensor([[[0., 0., 0., 0., 0., 0., 0., 0.]]])
    """
    b, length = x.shape[0], x.shape[-1]
    step = (sample_rate / rate_hz.double()).clamp_min(1.0)[:, None]  # input samples per held
    # (B, T) buffers, few and reused in place (each allocation of one is page faults)
    u = torch.arange(length, device=x.device, dtype=torch.float64) / step
    m = u.floor()
    frac = u.sub_(m).float()  # u is spent
    last = length - 1
    src0 = m.mul(step).round_().long().clamp_max_(last)
    src1 = m.add_(1).mul_(step).round_().long()  # m is spent
    src1 = torch.where(src1 > last, src0, src1, out=src1)  # past the end: hold the last one
    flat = x.float().reshape(b, -1, length)
    idx = (b, flat.shape[1], length)
    v0 = flat.gather(2, src0[:, None].expand(idx))
    v1 = flat.gather(2, src1[:, None].expand(idx))
    y = torch.lerp(v0, v1, frac[:, None])
    return y.reshape(x.shape).to(x.dtype)
