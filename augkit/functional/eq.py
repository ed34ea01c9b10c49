"""Per-example equalisers: RBJ Audio-EQ-Cookbook biquads applied with zero phase.

Each section is one of Robert Bristow-Johnson's cookbook biquads
(https://www.w3.org/TR/audio-eq-cookbook/): ``"peaking"``, ``"lowshelf"`` or
``"highshelf"``, with ``w0 = 2 pi f0 / fs``, ``A = 10 ** (gain_db / 40)`` and
``alpha = sin(w0) / (2 Q)`` (the cookbook's Q form for all three, also for the
shelves: ``Q = 1 / sqrt(2)`` is the steepest shelf without overshoot, the
cookbook's slope ``S = 1``). These are exactly the filters of
``torchaudio.functional.equalizer_biquad(x, fs, f0, gain_db, Q)``,
``bass_biquad(x, fs, gain_db, f0, Q)`` and ``treble_biquad(x, fs, gain_db, f0, Q)``
(whose default ``Q = 0.707`` is that no-overshoot shelf); ``f0`` is the peak's
centre, or the shelf's midpoint (half the shelf gain in dB).

**Why zero phase in one FFT, not a batched IIR.** Every example's response is
the biquad's *magnitude* ``|H(e^{jw})|``, multiplied into the spectrum of the
zero-padded signal: one batched ``rfft``/``irfft`` as the Butterworth filters
(:mod:`augkit.functional.filters`) do, so a different filter per example costs
nothing extra and the whole batch runs as a few large kernels. A batched IIR
(``torchaudio.functional.lfilter`` with per-example coefficients) is a
recursion over time: ``T`` sequential steps, slow on a GPU for clips of
seconds, and a cascade of sections multiplies that. Zero phase changes nothing
that an augmentation cares about (the ear is nearly phase-deaf for smooth EQ,
and the magnitude, what a spectrogram sees, is the cookbook's exactly) and adds
no delay. The price is padding: the zero-phase impulse response of a high-Q or
low-frequency section rings for long, at the rate set by its pole (or zero)
nearest the unit circle, and must die out inside the padding or it wraps
around. :func:`biquad_margin` gives that padding (16 time constants,
``exp(-16) ~ 1e-7``, under float32 resolution) for every section a transform
can draw; it is at most the clip's length (:func:`~augkit.functional.filters.fft_length`).

The magnitude is evaluated as ``|C(e^{jw})|^2 = (c0 + c1 + c2)^2 - 4 (c0 c1 +
c1 c2 + 4 c0 c2) phi + 16 c0 c2 phi^2`` with ``phi = sin^2(w / 2)`` in float64
(no cancellation near DC, where low-frequency sections live), then float32.
Shapes: waveforms ``(B, C, T)`` (any ``(B, ..., T)``); one response per
example, shared by its channels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .filters import fft_length, filter_zero_phase

__all__ = ["KINDS", "biquad_magnitude", "biquad_margin", "eq_filter", "rbj_coefficients"]

KINDS = ("peaking", "lowshelf", "highshelf")
#: Padding in time constants of the slowest-decaying section (see the module docstring).
TAIL_TIME_CONSTANTS = 16.0


def rbj_coefficients(kind: str, freq_hz: Tensor, gain_db: Tensor, q: Tensor,
                     sample_rate: float) -> tuple[Tensor, Tensor]:
    """Cookbook biquad coefficients, normalised so that ``a0 = 1``; float64.

    Args:
        kind: ``"peaking"``, ``"lowshelf"`` or ``"highshelf"``.
        freq_hz: Centre (peaking) or shelf midpoint frequency in Hz, in
            ``(0, sample_rate / 2)``, any shape ``S``.
        gain_db: Gain at the centre (peaking) or of the shelf in dB, shape ``S``.
        q: Quality factor ``> 0``, shape ``S``.
        sample_rate: Sample rate in Hz.

    Returns:
        ``(b, a)``, each ``S + (3,)``: ``H(z) = (b0 + b1 z^-1 + b2 z^-2) /
        (1 + a1 z^-1 + a2 z^-2)``.

    Example:
        >>> b, a = rbj_coefficients("peaking", torch.tensor(1000.0), torch.tensor(0.0),
        ...                         torch.tensor(1.0), 16000)
        >>> torch.equal(b, a)
        True
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    f, g, q = (torch.as_tensor(v).double() for v in (freq_hz, gain_db, q))
    w0 = f * (2 * math.pi / sample_rate)
    cos, alpha = torch.cos(w0), torch.sin(w0) / (2 * q)
    amp = torch.pow(10.0, g / 40)
    if kind == "peaking":
        b = (1 + alpha * amp, -2 * cos, 1 - alpha * amp)
        a = (1 + alpha / amp, -2 * cos, 1 - alpha / amp)
    else:
        sa = 2 * torch.sqrt(amp) * alpha
        s = 1.0 if kind == "lowshelf" else -1.0  # the high shelf mirrors cos(w0)
        pc, mc = (amp + 1) * cos, (amp - 1) * cos
        b = (amp * ((amp + 1) - s * mc + sa), 2 * s * amp * ((amp - 1) - s * pc),
             amp * ((amp + 1) - s * mc - sa))
        a = (((amp + 1) + s * mc + sa), -2 * s * ((amp - 1) + s * pc),
             ((amp + 1) + s * mc - sa))
    a0 = a[0]
    return torch.stack(b, -1) / a0.unsqueeze(-1), torch.stack(a, -1) / a0.unsqueeze(-1)


def _power(c: Tensor, phi: Tensor) -> Tensor:
    """``|c0 + c1 z^-1 + c2 z^-2|^2`` on the unit circle: ``c`` ``(B, 3)``, ``phi`` ``(F,)``.

    Horner's form of the quadratic in ``phi``, per example: one ``(B, F)`` buffer,
    three in-place passes over it.
    """
    c0, c1, c2 = c.unsqueeze(-1).unbind(-2)  # (B, 1) each
    out = (16 * c0 * c2) * phi
    out.sub_(4 * (c0 * c1 + c1 * c2 + 4 * c0 * c2)).mul_(phi)
    return out.add_((c0 + c1 + c2).square())


def biquad_magnitude(freqs_hz: Tensor, b: Tensor, a: Tensor, sample_rate: float) -> Tensor:
    """``|H(f)|`` of per-example biquads, or of cascades of them.

    Args:
        freqs_hz: Frequencies in ``[0, sample_rate / 2]``, ``(F,)``.
        b, a: Coefficients ``(B, 3)``, or ``(B, K, 3)`` for a cascade of ``K``
            sections per example (their magnitudes multiply).
        sample_rate: Sample rate in Hz.

    Returns:
        ``(B, F)`` float32 magnitudes.

    Example:
        >>> b, a = rbj_coefficients("lowshelf", torch.tensor([100.0]), torch.tensor([12.0]),
        ...                         torch.tensor([0.707]), 16000)
        >>> mag = biquad_magnitude(torch.tensor([0.0, 8000.0]), b, a, 16000)
        >>> (20 * mag.log10()).round(decimals=2)
        tensor([[12.,  0.]])
    """
    phi = torch.sin(freqs_hz.to(b.device, torch.float64) * (math.pi / sample_rate)).square()
    if b.ndim == 2:
        b, a = b.unsqueeze(1), a.unsqueeze(1)
    out = None
    for k in range(b.shape[1]):  # sections, not examples: (B, F) buffers
        r = _power(b[:, k], phi).div_(_power(a[:, k], phi))
        out = r if out is None else out.mul_(r)
    return out.clamp_min_(0.0).sqrt_().float()


def _max_root_radius(c: Tensor) -> Tensor:
    """Largest ``|z|`` over the roots of ``c0 z^2 + c1 z + c2``, ``c`` ``(..., 3)``."""
    c0, c1, c2 = c.to(torch.complex128).unbind(-1)
    disc = torch.sqrt(c1 * c1 - 4 * c0 * c2)
    return torch.maximum(((-c1 + disc) / (2 * c0)).abs(), ((-c1 - disc) / (2 * c0)).abs())


def biquad_margin(b: Tensor, a: Tensor) -> int:
    """Zero-padding (samples) after which every given section's zero-phase response is spent.

    The zero-phase impulse response of ``|H|`` decays as ``r ** n`` with ``r`` the
    largest radius over the poles *and* zeros of the sections (``|H|`` is not
    analytic at either); the margin is :data:`TAIL_TIME_CONSTANTS` time constants
    ``1 / -log(r)``. Meant for a transform's constructor, over a grid of the
    sections it can draw (it reads the result on the host).

    Args:
        b, a: Coefficients ``(..., 3)`` (:func:`rbj_coefficients`).

    Returns:
        The margin in samples, for :func:`eq_filter`'s ``margin``.

    Example:
        >>> b, a = rbj_coefficients("peaking", torch.tensor([50.0, 1000.0]),
        ...                         torch.tensor([12.0, -12.0]), torch.tensor([10.0, 1.0]), 16000)
        >>> biquad_margin(b, a)
        32520
    """
    radius = torch.maximum(_max_root_radius(b.detach().cpu()),
                           _max_root_radius(a.detach().cpu())).max()
    rate = -math.log(min(float(radius), 1.0 - 1e-12))
    return math.ceil(TAIL_TIME_CONSTANTS / rate)


def eq_filter(x: Tensor, b: Tensor, a: Tensor, sample_rate: float,
              margin: int | None = None) -> Tensor:
    """Zero-phase equalisation: each example's spectrum times its biquads' ``|H|``.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        b, a: Per-example coefficients ``(B, 3)`` or cascades ``(B, K, 3)``
            (:func:`rbj_coefficients`).
        sample_rate: Sample rate in Hz.
        margin: Zero-padding in samples, at most ``T``: :func:`biquad_margin` of the
            sections ``b, a`` can hold (a Python int, known before the call).
            (Default: ``T``)

    Returns:
        Tensor like ``x`` (shape and dtype); computed in float32 (float64 stays float64).

    Example:
        >>> b, a = rbj_coefficients("peaking", torch.full((3,), 1000.0),
        ...                         torch.tensor([-6.0, 0.0, 6.0]), torch.full((3,), 2.0), 16000)
        >>> eq_filter(torch.randn(3, 2, 1000), b, a, 16000).shape
        torch.Size([3, 2, 1000])
    """
    n_fft = fft_length(x.shape[-1], margin)
    freqs = torch.arange(n_fft // 2 + 1, device=x.device, dtype=torch.float64) * (
        sample_rate / n_fft)
    return filter_zero_phase(x, biquad_magnitude(freqs, b.to(x.device), a.to(x.device),
                                                 sample_rate), n_fft)
