"""Per-example low-, high-, band-pass and band-stop filters (zero-phase Butterworth)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from .. import functional as F
from ..functional.filters import EDGE_MIN
from ._base import Params, RandomTransform, check_number, check_range

#: Points per range axis on which the padding a transform needs is worked out.
GRID = 65


def _log_grid(low: float, high: float, n: int) -> Tensor:
    """``n`` float64 points log-spaced on ``[low, high]`` (``low > 0``)."""
    return torch.logspace(math.log10(low), math.log10(high), n, dtype=torch.float64)


def _check_hz(name: str, value, sample_rate: float) -> tuple[float, float]:
    lo, hi = check_range(name, value)
    nyquist = sample_rate / 2
    if not (0.0 < lo and hi < nyquist):
        raise ValueError(f"{name} must be > 0 and < sample_rate / 2 = {nyquist:g} Hz, "
                         f"got {value!r}")
    return lo, hi


class _ButterworthFilter(RandomTransform):
    """Shared shell: zero-phase Butterworth magnitude, one cutoff or band per example."""

    btype: ClassVar[str] = ""
    #: Butterworth order N: |H| falls by 6 N dB/octave past a cutoff (24 dB/octave).
    order: ClassVar[int] = 4
    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # an FFT filter is only approximately the identity

    def __init__(self, sample_rate: float, p: float, same_on_batch: bool) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)

    def edges(self, params: Params) -> Tensor:
        raise NotImplementedError

    def drawable_edges(self) -> Tensor:
        """A fine grid of the cutoffs (or bands) ``sample`` can draw: ``margin`` covers them."""
        raise NotImplementedError

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.butterworth_filter(x, self.edges(params), self.btype, self.sample_rate,
                                     self.order, margin=self.margin)

    def _set_margin(self) -> None:
        #: Zero-padding (samples) that the impulse response of every filter the ranges
        #: can draw needs to die out; worked out once, on the host, from the ranges.
        self.margin = F.filter_margin(self.drawable_edges(), self.btype, self.sample_rate,
                                      self.order)


class _CutoffFilter(_ButterworthFilter):
    def __init__(self, cutoff_hz, sample_rate: float, p: float, same_on_batch: bool) -> None:
        super().__init__(sample_rate, p, same_on_batch)
        self.cutoff_hz = _check_hz("cutoff_hz", cutoff_hz, self.sample_rate)
        self._set_margin()

    def sample(self, shape, n, device, generator) -> Params:
        return {"cutoff_hz": F.log_uniform((n,), *self.cutoff_hz, device, generator)}

    def edges(self, params: Params) -> Tensor:
        return params["cutoff_hz"]

    def drawable_edges(self) -> Tensor:
        return _log_grid(*self.cutoff_hz, GRID)

    def extra_repr(self) -> str:
        return (f"cutoff_hz={self.cutoff_hz}, sample_rate={self.sample_rate:g}, "
                + super().extra_repr())


class _BandFilter(_ButterworthFilter):
    def __init__(self, center_hz, bandwidth_fraction, sample_rate: float, p: float,
                 same_on_batch: bool) -> None:
        super().__init__(sample_rate, p, same_on_batch)
        self.center_hz = _check_hz("center_hz", center_hz, self.sample_rate)
        self.bandwidth_fraction = check_range("bandwidth_fraction", bandwidth_fraction)
        if not (0.0 < self.bandwidth_fraction[0] and self.bandwidth_fraction[1] < 2.0):
            raise ValueError("bandwidth_fraction must be > 0 and < 2 (the low edge "
                             f"center * (1 - fraction / 2) must be above 0), "
                             f"got {bandwidth_fraction!r}")
        top = self.center_hz[1] * (1 + self.bandwidth_fraction[1] / 2)
        if top > (1 - EDGE_MIN) * self.sample_rate / 2:
            raise ValueError(
                f"the upper band edge reaches {top:g} Hz (center_hz {self.center_hz[1]:g} x "
                f"(1 + bandwidth_fraction {self.bandwidth_fraction[1]:g} / 2)), above "
                f"sample_rate / 2 = {self.sample_rate / 2:g} Hz; lower center_hz or "
                "bandwidth_fraction")
        self._set_margin()

    def sample(self, shape, n, device, generator) -> Params:
        return {"center_hz": F.log_uniform((n,), *self.center_hz, device, generator),
                "bandwidth_fraction": F.uniform((n,), *self.bandwidth_fraction, device,
                                                generator)}

    def edges(self, params: Params) -> Tensor:
        return F.band_edges(params["center_hz"], params["bandwidth_fraction"],
                             self.sample_rate)

    def drawable_edges(self) -> Tensor:
        centers = _log_grid(*self.center_hz, GRID)
        fractions = torch.linspace(*self.bandwidth_fraction, GRID, dtype=torch.float64)
        c, f = torch.meshgrid(centers, fractions, indexing="ij")
        return F.band_edges(c.reshape(-1), f.reshape(-1), self.sample_rate)

    def extra_repr(self) -> str:
        return (f"center_hz={self.center_hz}, bandwidth_fraction={self.bandwidth_fraction}, "
                f"sample_rate={self.sample_rate:g}, " + super().extra_repr())


class LowPassFilter(_CutoffFilter):
    """Low-pass filter each example at its own cutoff.

    Cutoffs are drawn per example **log-uniformly** in ``cutoff_hz`` (equal
    chances per octave, as pitch and timbre are perceived), one per example
    shared by its channels.

    The filter is the magnitude of the order-4 digital Butterworth filter that
    ``scipy.signal.butter(4, ..., fs=sample_rate)`` designs, applied with zero phase
    (no delay, no phase distortion) in the frequency domain, one batched FFT for the
    whole batch (see :mod:`augkit.functional.filters`): ``|H|`` is -3 dB at the
    cutoff and falls by 24 dB/octave beyond it (``|H|``, not ``|H|^2``: one pass, not
    ``filtfilt``). The signal is zero-padded before the FFT and cropped back, by as
    many samples as the slowest impulse response the ranges can draw needs to die
    out (below float32 resolution; :func:`augkit.functional.filter_margin`), at most
    its own length, so there is no circular wrap-around. Output keeps the input's
    shape and dtype (computed in float32; float64 stays float64).

    ``sample_rate`` has no default: cutoffs are in Hz and only mean something at
    the audio's own rate (and must stay below its Nyquist frequency).

    Args:
        cutoff_hz: Range of the -3 dB cutoff in Hz, each in ``(0, sample_rate / 2)``;
            a number means ``(v, v)``. (Default: ``(150, 7500)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One cutoff for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = LowPassFilter(cutoff_hz=(500, 2000), sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    btype = "lowpass"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, cutoff_hz: tuple[float, float] | float = (150.0, 7500.0), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(cutoff_hz, sample_rate, p, same_on_batch)


class HighPassFilter(_CutoffFilter):
    """High-pass filter each example at its own cutoff.

    Cutoffs are drawn per example **log-uniformly** in ``cutoff_hz`` (equal
    chances per octave), one per example shared by its channels.

    Filtering is as in :class:`LowPassFilter`: the zero-phase magnitude of
    ``scipy.signal.butter(4, cutoff, btype="highpass", ...)``'s design in one batched
    FFT, -3 dB at the cutoff and 24 dB/octave below it, padded against wrap-around;
    shape and dtype are kept. ``sample_rate`` has no default: cutoffs are in Hz.

    Args:
        cutoff_hz: Range of the -3 dB cutoff in Hz, each in ``(0, sample_rate / 2)``;
            a number means ``(v, v)``. (Default: ``(20, 2400)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One cutoff for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = HighPassFilter(cutoff_hz=(100, 400), sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    btype = "highpass"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, cutoff_hz: tuple[float, float] | float = (20.0, 2400.0), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(cutoff_hz, sample_rate, p, same_on_batch)


class BandPassFilter(_BandFilter):
    """Band-pass filter each example around its own centre frequency.

    The band is given by its centre and relative width: ``bandwidth_fraction`` is
    the bandwidth divided by the centre frequency, so the -3 dB edges are
    ``center_hz * (1 - fraction / 2)`` and ``center_hz * (1 + fraction / 2)``
    (the upper edge must stay below ``sample_rate / 2``, checked at construction;
    the lower one is kept above 0.1 % of Nyquist).
    ``fraction = 1`` is a band about 1.6 octaves wide (``0.5 c`` to ``1.5 c``);
    the response peaks at the geometric centre of the prewarped edges,
    ``scipy.signal.butter(4, [low, high], ...)``'s centre.
    Centres are drawn per example **log-uniformly** in ``center_hz`` (equal chances
    per octave), fractions uniformly in ``bandwidth_fraction``.

    The filter is the magnitude of the order-4 digital Butterworth filter that
    ``scipy.signal.butter(4, ..., fs=sample_rate)`` designs, applied with zero phase
    (no delay, no phase distortion) in the frequency domain, one batched FFT for the
    whole batch (see :mod:`augkit.functional.filters`): ``|H|`` is -3 dB at the
    band edges (``|H|``, not ``|H|^2``: one pass, not ``filtfilt``). The signal is
    zero-padded before the FFT and cropped back, by as many samples as the slowest
    impulse response the ranges can draw needs to die out (below float32
    resolution; :func:`augkit.functional.filter_margin`), at most its own length,
    so there is no circular wrap-around. Output keeps the input's
    shape and dtype (computed in float32; float64 stays float64).

    ``sample_rate`` has no default: centres are in Hz and only mean something at
    the audio's own rate (and must stay below its Nyquist frequency).

    Args:
        center_hz: Range of the band centre in Hz, each in ``(0, sample_rate / 2)``;
            a number means ``(v, v)``. (Default: ``(200, 4000)``)
        bandwidth_fraction: Range of bandwidth / centre, in ``(0, 2)``.
            (Default: ``(0.5, 1.99)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One band for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = BandPassFilter(center_hz=1000, bandwidth_fraction=1.0, sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    btype = "bandpass"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, center_hz: tuple[float, float] | float = (200.0, 4000.0),
                 bandwidth_fraction: tuple[float, float] | float = (0.5, 1.99), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(center_hz, bandwidth_fraction, sample_rate, p, same_on_batch)


class BandStopFilter(_BandFilter):
    """Band-stop (notch-like) filter each example around its own centre frequency.

    The band is drawn as in :class:`BandPassFilter` (centre log-uniform in
    ``center_hz``, -3 dB edges at ``center_hz * (1 -/+ bandwidth_fraction / 2)``,
    the upper edge below ``sample_rate / 2``); the response nulls at the geometric
    centre of the prewarped edges. Filtering is the zero-phase magnitude of
    ``scipy.signal.butter(4, [low, high], btype="bandstop", ...)``'s design in one
    batched FFT, padded against wrap-around; shape and dtype are kept.

    ``sample_rate`` has no default: centres are in Hz and only mean something at
    the audio's own rate (and must stay below its Nyquist frequency).

    Args:
        center_hz: Range of the band centre in Hz, each in ``(0, sample_rate / 2)``;
            a number means ``(v, v)``. (Default: ``(200, 4000)``)
        bandwidth_fraction: Range of bandwidth / centre, in ``(0, 2)``.
            (Default: ``(0.5, 1.99)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One band for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = BandStopFilter(center_hz=1000, bandwidth_fraction=1.0, sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    btype = "bandstop"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, center_hz: tuple[float, float] | float = (200.0, 4000.0),
                 bandwidth_fraction: tuple[float, float] | float = (0.5, 1.99), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(center_hz, bandwidth_fraction, sample_rate, p, same_on_batch)
