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
filter. The response is computed in the log domain, so ``W = 0`` (DC) and the
Nyquist bin give exact zeros or ones, never NaN.

To avoid circular wrap-around the signal is zero-padded to ``n_fft >= 2 T``
(:func:`fft_length`) and cropped back, so the output is the linear filtering
of the clip (zero outside it) up to the part of the impulse response longer
than the clip itself: negligible unless a cutoff is below a few times
``sample_rate / T``. Shapes: waveforms ``(B, C, T)`` (any ``(B, ..., T)``); one
response per example, shared by its channels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import softplus

__all__ = [
    "band_edges",
    "butterworth_filter",
    "butterworth_magnitude",
    "fft_length",
    "filter_zero_phase",
]

BTYPES = ("lowpass", "highpass", "bandpass", "bandstop")
#: Band edges are kept in ``[EDGE_MIN, 1 - EDGE_MIN]`` times the Nyquist frequency.
EDGE_MIN = 1e-3


def fft_length(length: int) -> int:
    """The smallest ``2^a 3^b 5^c >= 2 * length``: an FFT size without wrap-around.

    Example:
        >>> fft_length(400), fft_length(48000)
        (800, 96000)
    """
    target, best = max(2 * int(length), 2), None
    p2 = 1
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


def _log_warped(freqs_hz: Tensor, sample_rate: float) -> Tensor:
    """``log(tan(pi f / fs))``: the log prewarped frequency of the bilinear transform."""
    return torch.log(torch.tan(freqs_hz * (math.pi / sample_rate)).abs())


def butterworth_magnitude(freqs_hz: Tensor, edges_hz: Tensor, btype: str, sample_rate: float,
                          order: int = 4) -> Tensor:
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

    Returns:
        ``(B, F)`` float32 magnitudes in ``[0, 1]``.

    Example:
        >>> f = torch.tensor([0.0, 1000.0, 8000.0])
        >>> butterworth_magnitude(f, torch.tensor([1000.0]), "lowpass", 16000).round(decimals=4)
        tensor([[1.0000, 0.7071, 0.0000]])
    """
    if btype not in BTYPES:
        raise ValueError(f"btype must be one of {BTYPES}, got {btype!r}")
    lw = _log_warped(freqs_hz.float(), sample_rate)  # (F,), -inf at DC
    edges = edges_hz.float()
    if btype in ("lowpass", "highpass"):
        lx = lw - _log_warped(edges, sample_rate).unsqueeze(-1)  # (B, F): log(W / Wc)
        if btype == "highpass":
            lx = -lx
    else:
        wl, wh = torch.tan(edges * (math.pi / sample_rate)).unbind(-1)  # (B,) each
        w = lw.exp()  # (F,)
        # log(|W^2 - W0^2| / (W * Bw)); -inf at the centre W0, +inf at DC.
        lx = (torch.log((w * w - (wl * wh).unsqueeze(-1)).abs()) - lw
              - torch.log(wh - wl).unsqueeze(-1))
        if btype == "bandstop":
            lx = -lx
    return torch.exp(-0.5 * softplus(2 * order * lx))


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
    length = x.shape[-1]
    work = x if x.dtype == torch.float64 else x.float()
    spec = torch.fft.rfft(work, n=n_fft, dim=-1)
    m = magnitude.to(work.dtype).reshape(magnitude.shape[0], *([1] * (x.ndim - 2)), -1)
    y = torch.fft.irfft(spec * m, n=n_fft, dim=-1)[..., :length]
    return y.to(x.dtype)


def butterworth_filter(x: Tensor, edges_hz: Tensor, btype: str, sample_rate: float,
                       order: int = 4) -> Tensor:
    """Zero-phase Butterworth filtering, a different cutoff (or band) per example.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        edges_hz: Cutoffs ``(B,)`` or band edges ``(B, 2)`` in Hz, see
            :func:`butterworth_magnitude`.
        btype: ``"lowpass"``, ``"highpass"``, ``"bandpass"`` or ``"bandstop"``.
        sample_rate: Sample rate in Hz.
        order: Butterworth order; the roll-off is ``6 * order`` dB/octave. (Default: ``4``)

    Returns:
        Tensor like ``x`` (shape and dtype).

    Example:
        >>> x = torch.randn(3, 2, 1000)
        >>> butterworth_filter(x, torch.tensor([500.0, 1000.0, 2000.0]), "lowpass", 16000).shape
        torch.Size([3, 2, 1000])
    """
    n_fft = fft_length(x.shape[-1])
    freqs = torch.arange(n_fft // 2 + 1, device=x.device, dtype=torch.float32) * (
        sample_rate / n_fft)
    return filter_zero_phase(x, butterworth_magnitude(freqs, edges_hz, btype, sample_rate, order),
                             n_fft)
