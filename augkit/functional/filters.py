"""Batched zero-phase Butterworth filters with a different cutoff per example.

Every example's filter is the *magnitude* of the digital Butterworth filter that
``scipy.signal.butter(order, edges, btype, fs=sample_rate)`` designs (bilinear
transform with prewarped edges), applied with zero phase in the frequency
domain: one batched ``rfft``, a ``(B, 1, F)`` response, one ``irfft``. With
``W = tan(pi * f / sample_rate)`` (the prewarped frequency) and ``Wc``, ``Wl``,
``Wh`` the prewarped cutoff and band edges, ``W0 = sqrt(Wl * Wh)``,
``Bw = Wh - Wl``::

    |H(f)| = 1 / sqrt(1 + x ** (2 * order)),  x = W / Wc                (lowpass)
                                               x = Wc / W                (highpass)
                                               x = |W^2 - W0^2| / (W Bw)  (bandpass)
                                               x = W Bw / |W^2 - W0^2|    (bandstop)

The gain is ``1 / sqrt(2)`` (-3.01 dB) at every cutoff and band edge, and far
from it falls by ``6 * order`` dB per octave (24 dB/octave at the default
order 4). Applying ``|H|`` with zero phase gives ``|H|``, not ``|H|^2`` as
``filtfilt`` would, so the roll-off is that of one pass of an order-``order``
filter. The response is computed as ``(1 + x ** (2 * order)) ** -0.5`` with
``x`` from per-example coefficients and the prewarped grid, so DC and the
Nyquist bin give exact zeros or ones (overflow to ``inf`` gives 0), never NaN.

To avoid circular wrap-around the signal is zero-padded and cropped back. By
default the padding is the clip's length (``n_fft >= 2 T``, :func:`fft_length`),
so the output is the linear filtering of the clip (zero outside it) up to the
part of the impulse response longer than the clip itself: negligible unless a
cutoff is below a few times ``sample_rate / T``. With ``margin`` (what the
transforms pass, from :func:`filter_margin` over the cutoffs they can draw)
the padding is ``min(T, margin)`` samples: the impulse response of an order-N
Butterworth decays exponentially, at a rate set by its pole nearest the real
frequency axis, and ``margin`` is 16 of those time constants, where the rest
of the response (the sum of its magnitudes) is below about ``3e-8``, under
float32 resolution; the output is then the same as with ``2 T`` up to
rounding, with FFTs about half as long. Shapes: waveforms ``(B, C, T)`` (any
``(B, ..., T)``); one response per example, shared by its channels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "band_edges",
    "butterworth_filter",
    "butterworth_magnitude",
    "fft_length",
    "filter_margin",
    "filter_zero_phase",
    "notch_edges",
    "notch_filter",
]

BTYPES = ("lowpass", "highpass", "bandpass", "bandstop")
#: Band edges are kept in ``[EDGE_MIN, 1 - EDGE_MIN]`` times the Nyquist frequency.
EDGE_MIN = 1e-3
#: Highest order whose lowpass/highpass factors ``Wc ** -2N`` and ``W ** 2N`` are
#: multiplied in float32: with band edges kept inside ``[EDGE_MIN, 1 - EDGE_MIN]``
#: of Nyquist, ``Wc ** 2N`` stays below 1e38 up to order 6; higher orders take float64.
FLOAT32_ORDER = 6
#: Padding in time constants of the slowest-decaying impulse response (see the
#: module docstring): past it the rest of the response sums to below about ``3e-8``.
TAIL_TIME_CONSTANTS = 16.0


def fft_length(length: int, margin: int | None = None) -> int:
    """The smallest ``2^a 3^b 5^c >= length + pad`` with ``a >= 2``: a fast FFT size.

    ``pad`` is ``length`` (``n >= 2 * length``: no wrap-around at all), or
    ``min(length, margin)`` when ``margin`` (zero-padding the filter's impulse
    response needs, see :func:`filter_margin`) is given. Multiples of 4 only: a
    real FFT of ``n`` runs a complex one of ``n / 2``, much slower when that is odd.

    Example:
        >>> fft_length(400), fft_length(48000), fft_length(80000, margin=5000)
        (800, 96000, 86400)
    """
    length = max(int(length), 1)
    pad = length if margin is None else min(length, max(int(margin), 0))
    target, best = max(length + pad, 4), None
    p2 = 4
    while p2 < 2 * target:
        p3 = p2
        while p3 < 2 * target:
            p5 = p3
            while p5 < target:
                p5 *= 5
            best = p5 if best is None else min(best, p5)
            p3 *= 3
        p2 *= 2
    return best


def band_edges(center_hz: Tensor, bandwidth_fraction: Tensor, sample_rate: float) -> Tensor:
    """Band edges ``center * (1 -/+ bandwidth_fraction / 2)``, kept inside ``(0, nyquist)``.

    Args:
        center_hz: Band centres (arithmetic mean of the edges) in Hz, ``(B,)``.
        bandwidth_fraction: Bandwidth divided by the centre, ``(B,)``, in ``(0, 2)``.
        sample_rate: Sample rate in Hz.

    Returns:
        ``(B, 2)``: low and high edge in Hz, clamped to
        ``[EDGE_MIN, 1 - EDGE_MIN] * sample_rate / 2``.
    """
    nyquist = sample_rate / 2
    half = center_hz * bandwidth_fraction / 2
    edges = torch.stack([center_hz - half, center_hz + half], dim=-1)
    return edges.clamp(EDGE_MIN * nyquist, (1 - EDGE_MIN) * nyquist)


def _warped(freqs_hz: Tensor, sample_rate: float) -> Tensor:
    """``tan(pi f / fs)``: the prewarped frequency of the bilinear transform."""
    return torch.tan(freqs_hz * (math.pi / sample_rate))


def _even_power(x: Tensor, order: int) -> Tensor:
    """``x ** (2 * order)`` in place: repeated squaring when ``order`` is a power of two."""
    power = x.square_()
    if order & (order - 1) == 0:
        for _ in range(order.bit_length() - 1):
            power.square_()
        return power
    return power.pow_(order)


def butterworth_magnitude(freqs_hz: Tensor, edges_hz: Tensor, btype: str, sample_rate: float,
                          order: int = 4, *, out: Tensor | None = None) -> Tensor:
    """``|H(f)|`` of per-example digital Butterworth filters (see the module docstring).

    Equal to the magnitude of ``scipy.signal.butter(order, edges, btype, fs=sample_rate)``.

    Args:
        freqs_hz: Frequencies in ``[0, sample_rate / 2]``, ``(F,)``.
        edges_hz: Cutoffs ``(B,)`` for ``"lowpass"``/``"highpass"``; low and high
            edges ``(B, 2)`` for ``"bandpass"``/``"bandstop"``. All in
            ``(0, sample_rate / 2)``.
        btype: ``"lowpass"``, ``"highpass"``, ``"bandpass"`` or ``"bandstop"``.
        sample_rate: Sample rate in Hz.
        order: Butterworth order ``N`` (the prototype's; band filters have ``2 N`` poles).
        out: Optional float32 ``(B, F)`` tensor to write the result into.

    Returns:
        ``(B, F)`` float32 magnitudes in ``[0, 1]``.

    Example:
        >>> f = torch.tensor([0.0, 1000.0, 8000.0])
        >>> butterworth_magnitude(f, torch.tensor([1000.0]), "lowpass", 16000).round(decimals=4)
        tensor([[1.0000, 0.7071, 0.0000]])
    """
    if btype not in BTYPES:
        raise ValueError(f"btype must be one of {BTYPES}, got {btype!r}")
    # (F,) grid in float32 (its tan is -2.3e7 at Nyquist: the sign vanishes in even
    # powers); per-example coefficients in float64, then float32.
    w = _warped(freqs_hz.float(), sample_rate)
    edges = _warped(edges_hz.double(), sample_rate)
    if btype in ("lowpass", "highpass"):
        # x^(2N) = (W / Wc)^(2N) as one product of the grid's and the cutoff's powers
        # (lowpass W^2N / Wc^2N, highpass Wc^2N / W^2N): one (B, F) pass. Overflow to
        # inf (W^2N at Nyquist, W^-2N at DC) gives the exact 0 there.
        grid = _even_power(w.double(), order)  # W^2N on the (F,) grid only
        if btype == "lowpass":
            grid, coef = grid, edges.pow(-2 * order)
        else:
            grid, coef = grid.reciprocal(), edges.pow(2 * order)
        if order <= FLOAT32_ORDER:
            power = torch.outer(coef.float(), grid.float(), out=out)
        else:  # a factor would under- or overflow float32 alone (0 * inf = NaN): float64
            power = torch.outer(coef, grid).float()
            power = power if out is None else out.copy_(power)
    else:  # x = (W^2 - W0^2) / (W Bw) = W / Bw - (W0^2 / Bw) / W; bandstop: 1 / x
        wl, wh = edges.unbind(-1)
        bw = wh - wl
        x = torch.outer(bw.reciprocal().float(), w, out=out)
        x.addr_((wl * wh / bw).float(), w.reciprocal(), alpha=-1)
        power = _even_power(x, order)
        if btype == "bandstop":
            power.reciprocal_()
    return power.add_(1.0).rsqrt_()


def filter_margin(edges_hz: Tensor, btype: str, sample_rate: float, order: int = 4) -> int:
    """Zero-padding (samples) after which every given filter's impulse response is spent.

    The zero-phase impulse response of ``|H|`` decays as ``exp(-r n)`` with ``r``
    twice the smallest ``|Im atan(W)|`` over the poles ``W`` of ``|H|^2`` (where
    ``x ** (2 N) = -1``): slow for a cutoff or band edge near DC or Nyquist and for
    narrow bands. The margin is :data:`TAIL_TIME_CONSTANTS` time constants of the
    slowest example, where the rest of the response sums to below about ``3e-8``.
    Meant for a transform's constructor, over a grid of the cutoffs it can draw
    (it reads the result on the host).

    Args:
        edges_hz: Cutoffs ``(K,)`` or band edges ``(K, 2)`` in Hz, as for
            :func:`butterworth_magnitude`.
        btype: ``"lowpass"``, ``"highpass"``, ``"bandpass"`` or ``"bandstop"``.
        sample_rate: Sample rate in Hz.
        order: Butterworth order.

    Returns:
        The margin in samples, for :func:`butterworth_filter`'s ``margin``.

    Example:
        >>> filter_margin(torch.tensor([20.0, 2400.0]), "highpass", 16000)
        5324
    """
    if btype not in BTYPES:
        raise ValueError(f"btype must be one of {BTYPES}, got {btype!r}")
    k = torch.arange(2 * order, dtype=torch.float64)
    roots = torch.polar(torch.ones_like(k), math.pi * (2 * k + 1) / (2 * order))  # x^2N = -1
    edges = _warped(edges_hz.detach().to("cpu", torch.float64), sample_rate)
    if btype in ("lowpass", "highpass"):  # W = Wc x (highpass: Wc / x, the same set)
        poles = edges.reshape(-1, 1) * roots
    else:  # W^2 - x Bw W - W0^2 = 0 (bandstop: 1 / x, the same set)
        wl, wh = edges.reshape(-1, 2).unbind(-1)
        bw, w0sq = (wh - wl).unsqueeze(-1), (wl * wh).unsqueeze(-1)
        disc = torch.sqrt(roots * roots * bw * bw + 4 * w0sq)
        poles = torch.cat([(roots * bw + disc) / 2, (roots * bw - disc) / 2], dim=-1)
    # Im atan(a + ib) = log((a^2 + (1 + b)^2) / (a^2 + (1 - b)^2)) / 4
    a2, b = poles.real.square(), poles.imag.abs()
    rate = 0.5 * torch.log((a2 + (1 + b).square()) / (a2 + (1 - b).square())).min()
    return math.ceil(TAIL_TIME_CONSTANTS / float(rate))


def filter_zero_phase(x: Tensor, magnitude: Tensor, n_fft: int) -> Tensor:
    """Multiply the spectrum of each example by its real response; zero phase.

    Args:
        x: Signals ``(B, ..., T)``; zero-padded to ``n_fft`` and cropped back.
        magnitude: Real responses on the ``rfft`` grid of ``n_fft``,
            ``(B, n_fft // 2 + 1)``, shared by the channels of an example.
        n_fft: FFT length, ``>= T`` (``>= 2 T`` avoids wrap-around, see :func:`fft_length`).

    Returns:
        Tensor like ``x`` (shape and dtype); computed in float32 (float64 stays float64).
    """

    def response(bins: slice, out: Tensor | None) -> Tensor:
        m = magnitude[:, bins].unsqueeze(-1).expand(-1, -1, 2)
        return m if out is None else out.copy_(m)

    return _filter_interleaved(x, response, n_fft, differentiable=needs_grad(magnitude))


def needs_grad(*tensors: Tensor) -> bool:
    """Whether autograd records ops on any of ``tensors`` now.

    The fast paths of augkit's ops write into buffers in place (``out=``, ``mul_``),
    which autograd refuses when an input requires grad; they then take an
    out-of-place path computing the same values.
    """
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _filter_interleaved(x: Tensor, response, n_fft: int, differentiable: bool = False
                        ) -> Tensor:
    """:func:`filter_zero_phase` with ``response(bins, out)``: ``(B, bins, 2)`` float32.

    The spectrum's real view is scaled in place by a contiguous interleaved
    response (the same for re and im): several times faster than a
    complex-by-real product (which promotes the response to complex) or a
    broadcast over the last dim. Few large buffers: the padded signal's buffer
    holds, in turn, the signal, the response (bins ``0 .. n_fft // 2 - 1`` fit in
    it exactly; the last bin is made apart) and the inverse FFT. When ``x``
    requires grad, the same product out of place (differentiable in ``x``).
    """
    length = x.shape[-1]
    work = x if x.dtype == torch.float64 else x.float()
    if x.numel() == 0:
        return x.clone()
    if differentiable or needs_grad(x):
        # Autograd does not take the in-place buffer reuse below (out=, mul_): the
        # same maths out of place, differentiable in x.
        spec = torch.fft.rfft(work, n=n_fft, dim=-1)
        m = response(slice(0, spec.shape[-1]), None)[..., 0].to(work.dtype)
        m = m.reshape(x.shape[0], *([1] * (x.ndim - 2)), -1)
        return torch.fft.irfft(spec * m, n=n_fft, dim=-1)[..., :length].to(x.dtype)
    padded = work.new_empty(*work.shape[:-1], n_fft)
    padded[..., :length].copy_(work)
    padded[..., length:].zero_()
    spec = torch.fft.rfft(padded, dim=-1)
    b, n_bins = x.shape[0], spec.shape[-1]
    shape = (b, *([1] * (x.ndim - 2)), -1, 2)
    spec_ri = torch.view_as_real(spec)
    head = n_fft // 2  # bins 0 .. head - 1: 2 * head <= n_fft floats per example
    if work.dtype == torch.float32:
        m = response(slice(0, head), padded.view(-1)[: b * 2 * head].view(b, head, 2))
    else:
        m = response(slice(0, head), None).to(work.dtype)
    spec_ri[..., :head, :].mul_(m.reshape(shape))
    spec_ri[..., head:, :].mul_(response(slice(head, n_bins), None).to(work.dtype).reshape(shape))
    del m
    torch.fft.irfft(spec, n=n_fft, dim=-1, out=padded)
    return padded[..., :length].to(x.dtype)


def butterworth_filter(x: Tensor, edges_hz: Tensor, btype: str, sample_rate: float,
                       order: int = 4, margin: int | None = None) -> Tensor:
    """Zero-phase Butterworth filtering, a different cutoff (or band) per example.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        edges_hz: Cutoffs ``(B,)`` or band edges ``(B, 2)`` in Hz, see
            :func:`butterworth_magnitude`.
        btype: ``"lowpass"``, ``"highpass"``, ``"bandpass"`` or ``"bandstop"``.
        sample_rate: Sample rate in Hz.
        order: Butterworth order; the roll-off is ``6 * order`` dB/octave. (Default: ``4``)
        margin: Zero-padding in samples, at most ``T``: :func:`filter_margin` of the
            cutoffs that ``edges_hz`` can hold (a Python int, known before the call).
            (Default: ``T``, no wrap-around for any cutoff)

    Returns:
        Tensor like ``x`` (shape and dtype).

    Example:
        >>> x = torch.randn(3, 2, 1000)
        >>> butterworth_filter(x, torch.tensor([500.0, 1000.0, 2000.0]), "lowpass", 16000).shape
        torch.Size([3, 2, 1000])
    """
    n_fft = fft_length(x.shape[-1], margin)

    def response(bins: slice, out: Tensor | None) -> Tensor:
        # The rfft grid with every bin twice: the response comes out interleaved (re, im).
        k = torch.arange(2 * bins.start, 2 * bins.stop, device=x.device, dtype=torch.float32)
        freqs = torch.div(k, 2, rounding_mode="floor") * (sample_rate / n_fft)
        m = butterworth_magnitude(freqs, edges_hz, btype, sample_rate, order,
                                  out=None if out is None else out.view(out.shape[0], -1))
        return m.view(m.shape[0], -1, 2)

    return _filter_interleaved(x, response, n_fft)


def notch_edges(center_hz: Tensor, width_hz: Tensor, sample_rate: float) -> Tensor:
    """Band-stop edges whose Butterworth null is exactly at ``center_hz``.

    The band-stop response of :func:`butterworth_magnitude` is zero at the
    geometric centre ``W0 = sqrt(Wl * Wh)`` of the prewarped edges, not at their
    arithmetic mean. Here the prewarped bandwidth ``Bw`` is that of
    ``center -/+ width / 2`` (clamped inside ``(0, sample_rate / 2)``, as
    :func:`band_edges` does) and the edges are the prewarped pair with
    ``Wh - Wl = Bw`` and ``Wl * Wh = tan(pi center / sample_rate) ** 2``, so the
    null sits on ``center_hz`` and the -3 dB edges are about ``width_hz`` apart,
    a little above ``center -/+ width / 2`` (the centre is geometric). Where the
    high edge is clamped near the Nyquist frequency the notch is wider.

    Args:
        center_hz: Null frequencies in Hz, in ``(0, sample_rate / 2)``, any shape ``S``.
        width_hz: -3 dB widths in Hz, ``> 0``, shape ``S``.
        sample_rate: Sample rate in Hz.

    Returns:
        ``S + (2,)`` float64: low and high -3 dB edge in Hz, for
        :func:`butterworth_magnitude` (``"bandstop"``) and :func:`filter_margin`.

    Example:
        >>> notch_edges(torch.tensor([1000.0]), torch.tensor([200.0]), 16000).round()
        tensor([[ 905., 1105.]], dtype=torch.float64)
    """
    nyquist = sample_rate / 2
    lo, hi = EDGE_MIN * nyquist, (1 - EDGE_MIN) * nyquist
    c = center_hz.double().clamp(lo, hi)
    half = width_hz.double() / 2
    w0 = _warped(c, sample_rate)
    bw = _warped((c + half).clamp(lo, hi), sample_rate) - _warped((c - half).clamp(lo, hi),
                                                                     sample_rate)
    wl = 2 * w0 * w0 / (torch.sqrt(bw * bw + 4 * w0 * w0) + bw)  # the root of W^2 + Bw W - W0^2
    edges = torch.stack([wl, wl + bw], dim=-1)
    return torch.atan(edges) * (sample_rate / math.pi)


def notch_filter(x: Tensor, center_hz: Tensor, width_hz: Tensor, sample_rate: float,
                 order: int = 4, margin: int | None = None) -> Tensor:
    """Zero-phase notches: each example's spectrum times the product of ``K`` band-stops.

    Notch ``k`` of example ``b`` is the order-``order`` Butterworth band-stop of
    :func:`notch_edges` (``center_hz[b, k]``, ``width_hz[b, k]``): zero gain at
    the centre, about -80 dB at ``width / 20`` from it (order 4), -3 dB at its
    edges. A width of 0 means no notch (a flat response), so
    examples may use fewer than ``K``.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        center_hz: Notch centres in Hz ``(B, K)``, in ``(0, sample_rate / 2)``.
        width_hz: Notch widths in Hz ``(B, K)``; ``0``: no notch.
        sample_rate: Sample rate in Hz.
        order: Butterworth order of each band-stop. (Default: ``4``)
        margin: Zero-padding in samples, at most ``T``: :func:`filter_margin` of the
            :func:`notch_edges` that the parameters can hold. (Default: ``T``)

    Returns:
        Tensor like ``x`` (shape and dtype); computed in float32 (float64 stays float64).

    Example:
        >>> x = torch.randn(2, 1, 1000)
        >>> notch_filter(x, torch.tensor([[1000.0, 3000.0], [500.0, 0.0]]),
        ...              torch.tensor([[100.0, 200.0], [50.0, 0.0]]), 16000).shape
        torch.Size([2, 1, 1000])
    """
    n_fft = fft_length(x.shape[-1], margin)
    active = width_hz > 0  # (B, K)
    edges = notch_edges(center_hz, width_hz.clamp_min(1e-3), sample_rate)  # (B, K, 2)

    def response(bins: slice, out: Tensor | None) -> Tensor:
        k = torch.arange(2 * bins.start, 2 * bins.stop, device=x.device, dtype=torch.float32)
        freqs = torch.div(k, 2, rounding_mode="floor") * (sample_rate / n_fft)
        m = None
        for j in range(edges.shape[1]):  # notches, not examples: (B, F) buffers
            first = m is None and out is not None
            mj = butterworth_magnitude(freqs, edges[:, j], "bandstop", sample_rate, order,
                                       out=out.view(out.shape[0], -1) if first else None)
            mj.masked_fill_(~active[:, j, None], 1.0)
            m = mj if m is None else m.mul_(mj)
        if m is None:  # K = 0: flat
            m = torch.ones(x.shape[0], k.numel(), device=x.device)
            if out is not None:
                m = out.view(out.shape[0], -1).copy_(m)
        return m.view(m.shape[0], -1, 2)

    return _filter_interleaved(x, response, n_fft)
