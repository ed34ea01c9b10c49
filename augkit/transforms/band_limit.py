"""Per-example band-limiting to a telephone or codec bandwidth drawn from a list."""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from .. import functional as F
from ..functional.filters import EDGE_MIN
from ..functional.resample import resample
from ._base import Params, RandomTransform, check_number

#: The resampler's cutoff as a fraction of the lower rate's Nyquist frequency.
ROLLOFF = 0.9


class BandLimit(RandomTransform):
    """Limit each example to a bandwidth drawn from a list: telephone and codec bands.

    Each example gets one of ``bandwidth_hz`` (uniformly; 3.4 kHz: narrowband
    telephone, 4 kHz: 8 kHz audio, 7 kHz: wideband telephone, 8 kHz: 16 kHz
    audio), the highest frequency it keeps. A bandwidth at or above the Nyquist
    frequency (``sample_rate / 2``) leaves the example exactly as it was.

    - ``resample=False``: an order-16 zero-phase Butterworth low-pass with its
      -3 dB cutoff at the bandwidth ``B`` (the maths of :class:`LowPassFilter`,
      96 dB/octave): the loss is under 0.15 dB up to ``0.9 B``, under 0.005 dB up
      to ``0.8 B``; the attenuation is at least 13 dB from ``1.1 B``, 31 dB from
      ``1.25 B`` and 56 dB from ``1.5 B``
      (``10 log10(1 + (f / B) ** 32)``, more near Nyquist).
    - ``resample=True``: resampled down and back up, band-limited
      (:func:`augkit.functional.resample.resample`, a Kaiser-windowed sinc) at
      the rate whose resampler cutoff (0.9 of its Nyquist frequency) is ``B``,
      as a codec running at a lower rate would: the loss is under 0.05 dB up to
      ``0.85 B``, 12 dB at ``B`` (6 dB per pass) and at least 70 dB from
      ``1.15 B`` (the resampler's floor is about -85 dB). For ``B`` between 0.9
      and 1 times the Nyquist frequency the cutoff stays at 0.9 Nyquist. The
      resampler's taps are sized for the lowest bandwidth in the list: replaying
      parameters with a lower one band-limits it less sharply.

    Real codecs (MP3, AAC, Opus, AMR) add quantisation noise, pre-echo and
    band replication besides the band limit; they need the CPU and their own
    libraries, and are left out.

    ``sample_rate`` has no default: bandwidths are in Hz.

    Args:
        bandwidth_hz: The bandwidths to draw from, in Hz, each ``> 0``; a number
            means that one only. (Default: ``(3400, 4000, 7000, 8000)``)
        resample: Resample down and back up instead of the low-pass. (Default: ``False``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One bandwidth for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged. Parameters: ``bandwidth_hz`` ``(B,)``.

    Example:
        >>> t = BandLimit(bandwidth_hz=(3400, 7000), sample_rate=16000, p=1.0)
        >>> y = t(torch.randn(4, 1, 1600))
        >>> y.shape, set(t.last_params["bandwidth_hz"].tolist()) <= {3400.0, 7000.0}
        (torch.Size([4, 1, 1600]), True)
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # an FFT filter is only approximately the identity
    #: Butterworth order of the low-pass: 6 * order dB/octave.
    order = 16
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="maybe"),
             dict(kwargs=dict(sample_rate=16000, bandwidth_hz=(1000.0, 3400.0, 7000.0)),
                  input="wave", changes="always"),
             dict(kwargs=dict(sample_rate=16000, bandwidth_hz=(2000.0, 3400.0, 7000.0),
                              resample=True), input="wave", changes="always"))

    def __init__(self, bandwidth_hz=(3400.0, 4000.0, 7000.0, 8000.0), resample: bool = False,
                 *, sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)
        if isinstance(bandwidth_hz, numbers.Real):
            bandwidth_hz = (bandwidth_hz,)
        if not isinstance(bandwidth_hz, (tuple, list)) or not bandwidth_hz:
            raise ValueError(f"bandwidth_hz must be a number or a non-empty list of numbers, "
                             f"got {bandwidth_hz!r}")
        self.bandwidth_hz = tuple(check_number("bandwidth_hz", b, 0.0, low_open=True)
                                  for b in bandwidth_hz)
        self.resample = bool(resample)
        nyquist = self.sample_rate / 2
        limited = [b for b in self.bandwidth_hz if b < nyquist]
        # Low-pass: zero-padding for the slowest impulse response (the lowest cutoff).
        self.margin = (F.filter_margin(torch.tensor(limited, dtype=torch.float64), "lowpass",
                                       self.sample_rate, self.order) if limited else 0)
        #: Largest down-sampling factor the resampler's taps are sized for.
        self.max_factor = max([1.0] + [self._factor(b) for b in limited])

    def _factor(self, bandwidth: float) -> float:
        return ROLLOFF * self.sample_rate / (2 * bandwidth)

    def sample(self, shape, n, device, generator) -> Params:
        choices = self.bandwidth_hz
        k = F.randint_below(torch.full((n,), len(choices), device=device), device, generator)
        out = torch.full((n,), choices[0], device=device)
        for i, b in enumerate(choices[1:], 1):  # list entries, not examples: no host copy
            out = torch.where(k == i, b, out)
        return {"bandwidth_hz": out}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        band = params["bandwidth_hz"]
        nyquist = self.sample_rate / 2
        if self.resample:
            factor = (ROLLOFF * self.sample_rate / (2 * band.double())).clamp_min(1.0).float()
            length = x.shape[-1]
            low = resample(x, factor, length, max_factor=self.max_factor)
            y = resample(low, factor.reciprocal(), length, max_factor=1.0).to(x.dtype)
        else:
            cutoff = band.clamp_max(nyquist * (1 - EDGE_MIN))
            y = F.butterworth_filter(x, cutoff, "lowpass", self.sample_rate, self.order,
                                     margin=self.margin)
        return torch.where((band < nyquist)[:, None, None], y, x)

    def extra_repr(self) -> str:
        return (f"bandwidth_hz={self.bandwidth_hz}, resample={self.resample}, "
                f"sample_rate={self.sample_rate:g}, " + super().extra_repr())

