"""Per-example frequency dropout: narrow notches at random frequencies (SpeechBrain's DropFreq)."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_number, check_range

#: Points per range axis on which the padding the transform needs is worked out.
GRID = 33


class DropFreq(RandomTransform):
    """Cut 1 to ``n`` narrow notches at random frequencies out of each example.

    SpeechBrain's ``DropFreq``, per example: each example gets ``n`` notches
    (``n`` uniform on the integers in ``n_notches``), each centred at a frequency
    drawn **uniformly** in ``freq_hz`` (in Hz, as SpeechBrain draws on a linear
    axis) with a -3 dB width drawn uniformly in ``width_hz``. Each notch is an
    order-4 Butterworth band-stop applied with zero phase in one batched FFT (the
    maths of :class:`BandStopFilter`, :func:`augkit.functional.notch_filter`),
    with its null placed exactly on the drawn centre: the gain there is 0, at
    least 60 dB down within ``width / 20`` of it (about 80 dB at that distance),
    about 24 dB down at ``width / 4`` and 3 dB down at the edges (measured with
    white noise in ``tests/test_dropfreq.py``). Notches may overlap (their
    responses multiply).

    SpeechBrain draws the frequencies once for the whole batch, as fractions of
    the Nyquist frequency, and its notch (a 101-tap windowed-sinc band-reject
    filter) is about ``2.3 * drop_freq_width * sample_rate / 2`` wide at -3 dB and
    about 50 dB deep: ``DropFreq(drop_freq_low=a, drop_freq_high=b,
    drop_freq_count_low=n0, drop_freq_count_high=n1, drop_freq_width=w)`` is
    roughly ``DropFreq(freq_hz=(a * nyquist, b * nyquist), n_notches=(n0, n1),
    width_hz=2.3 * w * nyquist)`` here (its default ``w = 0.05`` is about 930 Hz
    at 16 kHz).

    ``sample_rate`` has no default: frequencies are in Hz.

    Args:
        freq_hz: Range of the notch centres in Hz, in ``(0, sample_rate / 2)``.
            (Default: ``(50, 7500)``)
        n_notches: ``(lo, hi)`` notches per example, integers ``0 <= lo <= hi``,
            ``hi >= 1``; a number means ``(n, n)``. (Default: ``(1, 3)``)
        width_hz: Range of the notches' -3 dB widths in Hz, ``> 0``.
            (Default: ``(100, 1000)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: The same notches for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged. Parameters: ``n_notches`` ``(B,)``; ``center_hz``
        and ``width_hz`` ``(B, hi)``, with width 0 for the notches beyond an
        example's ``n_notches`` (no notch).

    Example:
        >>> t = DropFreq(n_notches=(1, 2), sample_rate=16000, p=1.0)
        >>> y = t(torch.randn(4, 1, 1600))
        >>> y.shape, t.last_params["center_hz"].shape
        (torch.Size([4, 1, 1600]), torch.Size([4, 2]))
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # an FFT filter is only approximately the identity
    #: Butterworth order of each notch (a band-stop of ``2 * order`` poles).
    order = 4
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),
             dict(kwargs=dict(sample_rate=8000, freq_hz=(100.0, 3900.0), n_notches=(0, 4),
                              width_hz=(20.0, 200.0)), input="wave", changes="maybe"))

    def __init__(self, freq_hz: tuple[float, float] | float = (50.0, 7500.0),
                 n_notches: tuple[int, int] | int = (1, 3),
                 width_hz: tuple[float, float] | float = (100.0, 1000.0), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)
        self.freq_hz = check_range("freq_hz", freq_hz)
        if not (0.0 < self.freq_hz[0] and self.freq_hz[1] < self.sample_rate / 2):
            raise ValueError(f"freq_hz must be > 0 and < sample_rate / 2 = "
                             f"{self.sample_rate / 2:g} Hz, got {freq_hz!r}")
        if not isinstance(n_notches, (tuple, list)):
            n_notches = (n_notches, n_notches)
        if len(n_notches) != 2:
            raise ValueError(f"n_notches must be a (low, high) pair of integers, "
                             f"got {n_notches!r}")
        lo, hi = check_int("n_notches", n_notches[0]), check_int("n_notches", n_notches[1], 1)
        if lo > hi:
            raise ValueError(f"n_notches must have low <= high, got {n_notches!r}")
        self.n_notches = (lo, hi)
        self.width_hz = check_range("width_hz", width_hz)
        if self.width_hz[0] <= 0.0:
            raise ValueError(f"width_hz must be > 0, got {width_hz!r}")
        centres = torch.linspace(*self.freq_hz, GRID, dtype=torch.float64)
        widths = torch.linspace(*self.width_hz, GRID, dtype=torch.float64)
        c, w = torch.meshgrid(centres, widths, indexing="ij")
        edges = F.notch_edges(c.reshape(-1), w.reshape(-1), self.sample_rate)
        #: Zero-padding (samples) for the slowest impulse response the ranges can draw.
        self.margin = F.filter_margin(edges, "bandstop", self.sample_rate, self.order)

    def sample(self, shape, n, device, generator) -> Params:
        lo, hi = self.n_notches
        count = lo + F.randint_below(torch.full((n,), hi - lo + 1, device=device), device,
                                     generator)
        width = F.uniform((n, hi), *self.width_hz, device, generator)
        return {
            "n_notches": count,
            "center_hz": F.uniform((n, hi), *self.freq_hz, device, generator),
            "width_hz": torch.where(torch.arange(hi, device=device) < count[:, None], width, 0.0),
        }

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.notch_filter(x, params["center_hz"], params["width_hz"], self.sample_rate,
                              self.order, margin=self.margin)

    def extra_repr(self) -> str:
        return (f"freq_hz={self.freq_hz}, n_notches={self.n_notches}, width_hz={self.width_hz}, "
                f"sample_rate={self.sample_rate:g}, " + super().extra_repr())
