"""Band-limited fractional-index resampling, a different factor per example.

Output sample ``j`` of example ``b`` is the input read at position
``j * factor[b]`` by windowed-sinc interpolation: ``factor > 1`` reads faster
(the signal gets shorter and higher), ``factor < 1`` slower. Everything is
batched: no loop over examples and no host sync, so it runs on any device and
under ``torch.cuda.set_sync_debug_mode("error")``.

How: the kernel of example ``b`` is ``sinc(c_b * t) * kaiser(t / W)`` with
cutoff ``c_b = rolloff * min(1, 1 / factor_b)`` (in units of the input's
Nyquist frequency: downsampling low-passes below the new Nyquist, which avoids
aliasing, and upsampling below the old one, which avoids images) and a
half-width of ``W`` input samples, the same for every example:
``W = ceil(zero_crossings / c_min)``, ``c_min`` the cutoff at ``max_factor``.
Each example's kernel is tabulated at ``phases`` fractional offsets per sample
(rows normalised to sum 1, so DC passes exactly); a sample reads its ``2 W``
neighbours and the two table rows around its fractional position and
interpolates linearly between them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["resample", "resample_half_width"]

#: Fixed-point scale for ``j * factor``: positions are exact int64 products, so
#: no float64 is needed (and none of its precision loss in float32).
_SCALE_BITS = 24
_KAISER_BETA = 8.6  # about -85 dB stopband
#: Chunks whose read positions are worked out together.
_INDEX_BLOCK = 16


def resample_half_width(max_factor: float, zero_crossings: int = 16,
                        rolloff: float = 0.9) -> int:
    """Kernel half-width ``W`` in input samples (the kernel has ``2 W`` taps).

    Args:
        max_factor: Largest factor the kernel must band-limit for.
        zero_crossings: Zero crossings of the sinc on each side at ``max_factor``.
        rolloff: Cutoff as a fraction of the lower of the input's and the
            output's Nyquist frequencies.
    """
    c_min = rolloff * min(1.0, 1.0 / max_factor)
    return int(math.ceil(zero_crossings / c_min))


def _kernel_table(factor: Tensor, half: int, phases: int, rolloff: float,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """Per-example kernel tables ``(B, phases + 1, 2 * half)``, rows summing to 1.

    Row ``q`` holds the weights of taps ``k = -(half - 1) .. half`` for a read at
    fractional offset ``q / phases`` past the tap ``k = 0``.
    """
    device = factor.device
    k = torch.arange(-(half - 1), half + 1, device=device, dtype=dtype)
    frac = torch.arange(phases + 1, device=device, dtype=dtype) / phases
    t = frac[:, None] - k  # (P + 1, K): distance from the read position to each tap
    u = (t / half).clamp(-1.0, 1.0)
    beta = torch.full((), _KAISER_BETA, device=device, dtype=dtype)
    window = torch.special.i0(beta * torch.sqrt(1.0 - u * u)) / torch.special.i0(beta)
    cutoff = rolloff * torch.clamp(1.0 / factor.to(dtype), max=1.0)  # (B,)
    table = torch.sinc(cutoff[:, None, None] * t) * window  # (B, P + 1, K)
    return table / table.sum(-1, keepdim=True)


def _chunk(rows: int, taps: int, length: int, device: torch.device) -> int:
    """Output samples per chunk: ~256K tap products on CPU (cache), ~32M elsewhere."""
    target = 1 << 18 if device.type == "cpu" else 1 << 25
    return max(1, min(length, target // max(1, rows * taps)))


def resample(x: Tensor, factor: Tensor, length: int, max_factor: float,
             zero_crossings: int = 16, rolloff: float = 0.9, phases: int = 128) -> Tensor:
    """Read each example at positions ``j * factor[b]``, band-limited.

    Positions past the last input sample give 0, so with ``length = T`` and
    ``factor > 1`` the end of the output is zero. Factor 1 returns the input
    low-passed at ``rolloff`` times its Nyquist frequency.

    Memory: the work is chunked over output time; each chunk holds about four
    float32 tensors of ``rows * chunk * 2 W`` elements (``rows = B * C``),
    about 1 MB per tensor on CPU and 128 MB on other devices.

    Args:
        x: Waveforms ``(B, ..., T)``, any float dtype (computed in float32;
            float64 stays float64).
        factor: Read step per example ``(B,)``, ``> 0``.
        length: Output samples.
        max_factor: Upper bound of ``factor`` (a Python number, from the
            configuration): it sets the number of taps. Larger factors still
            work, band-limited less sharply.
        zero_crossings: Sinc zero crossings per side at ``max_factor``; more is
            sharper and slower. (Default: ``16``)
        rolloff: Cutoff as a fraction of the lower of the input's and the
            output's Nyquist frequencies; the kernel is flat (0.1 dB) to about
            0.88 of the cutoff and down 60 dB at about 1.15 of it. (Default: ``0.9``)
        phases: Table rows per input sample (linear interpolation between
            rows). (Default: ``128``)

    Returns:
        float32 tensor ``(B, ..., length)`` (float64 for float64 input).
        Differentiable in ``x`` (then the chunks are concatenated rather than
        written into one output buffer).

    Example:
        >>> x = torch.randn(2, 1, 1000)
        >>> resample(x, torch.tensor([1.1, 0.9]), 1000, max_factor=1.1).shape
        torch.Size([2, 1, 1000])
    """
    b, t_in = x.shape[0], x.shape[-1]
    lead = x.shape[:-1]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    rows = x.reshape(b, -1, t_in).to(dtype)
    c = rows.shape[1]
    half = resample_half_width(max(float(max_factor), 1e-6), zero_crossings, rolloff)
    taps = 2 * half
    device = x.device
    # Zero padding on both sides: taps left of 0 and right of T - 1 read zeros.
    padded = torch.nn.functional.pad(rows, (half, half + 1))
    width = padded.shape[-1]
    windows = padded.reshape(-1).unfold(0, taps, 1)  # (rows * width - taps + 1, taps), a view
    table = _kernel_table(factor, half, phases, rolloff, dtype).reshape(-1, taps)  # (B*(P+1), K)
    scale = 1 << _SCALE_BITS
    step = torch.round(factor.float() * scale).long()  # (B,) fixed-point factor
    row_base = (torch.arange(b * c, device=device) * width).view(b, c, 1)
    table_base = (torch.arange(b, device=device) * (phases + 1)).view(b, 1)
    grad = torch.is_grad_enabled() and (x.requires_grad or factor.requires_grad)
    # Autograd does not take the sums written into a preallocated output (out=):
    # then the chunks are collected and concatenated instead.
    y = None if grad else torch.empty(b, c, length, device=device, dtype=dtype)
    pieces = []
    chunk = _chunk(b * c, taps, length, device)
    # The read positions of a block of chunks at a time (index maths in a few large
    # ops), then per chunk only the gathers and the products: fewer, larger ops.
    block = chunk * _INDEX_BLOCK
    for block_start in range(0, length, block):
        j = torch.arange(block_start, min(block_start + block, length), device=device)
        pos = j * step[:, None]  # (B, n) exact
        whole = pos >> _SCALE_BITS
        frac = (pos & (scale - 1)).to(dtype) / scale  # in [0, 1)
        q = frac * phases
        q0 = q.floor()
        lerp = (q - q0).unsqueeze(-1)  # (B, n, 1)
        q0 = q0.long()
        # Tap k = -(half - 1) of sample ``whole`` sits at padded index whole + 1.
        first = row_base + (whole + 1).clamp(max=width - taps)[:, None]  # (B, C, n)
        w_idx = table_base + q0  # (B, n)
        # Read at or after the last sample: zero (the weights, not the reads, are masked).
        inside = (pos <= (t_in - 1) << _SCALE_BITS).unsqueeze(-1)  # (B, n, 1)
        for s in range(0, j.shape[0], chunk):
            e = min(s + chunk, j.shape[0])
            neighbours = windows.index_select(0, first[:, :, s:e].reshape(-1))
            neighbours = neighbours.view(b, c, e - s, taps)
            wi = w_idx[:, s:e].reshape(-1)
            w = torch.lerp(table.index_select(0, wi), table.index_select(0, wi + 1),
                           lerp[:, s:e].reshape(-1, 1)).view(b, 1, e - s, taps)
            keep = inside[:, None, s:e, 0]
            if y is None:
                pieces.append(torch.where(keep, (neighbours * w).sum(-1), 0.0))
                continue
            out = y[..., block_start + s: block_start + e]
            torch.sum(neighbours * w, -1, out=out)
            out.masked_fill_(~keep, 0.0)
    if y is None:
        y = torch.cat(pieces, dim=-1) if pieces else rows.new_zeros(b, c, length)
    return y.reshape(*lead, length)
