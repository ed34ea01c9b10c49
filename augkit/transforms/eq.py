"""Per-example equalisers: peaking and shelving RBJ biquads, and a parametric EQ.

Each is the magnitude of an Audio-EQ-Cookbook biquad applied with zero phase in
one batched FFT (why, and how the padding is chosen: :mod:`augkit.functional.eq`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_number, check_range

#: Points per range axis on which the padding a transform needs is worked out.
GRID = 17


def _check_hz(name: str, value, sample_rate: float) -> tuple[float, float]:
    lo, hi = check_range(name, value)
    if not (0.0 < lo and hi < sample_rate / 2):
        raise ValueError(f"{name} must be > 0 and < sample_rate / 2 = {sample_rate / 2:g} Hz, "
                         f"got {value!r}")
    return lo, hi


def _check_q(value) -> tuple[float, float]:
    lo, hi = check_range("q", value)
    if lo <= 0.0:
        raise ValueError(f"q must be > 0, got {value!r}")
    return lo, hi


def _grid(lo: float, hi: float, log: bool) -> Tensor:
    if log:
        return torch.logspace(math.log10(lo), math.log10(hi), GRID, dtype=torch.float64)
    return torch.linspace(lo, hi, GRID, dtype=torch.float64)


def _margin(kind: str, freq, gain, q, sample_rate: float) -> int:
    """:func:`~augkit.functional.biquad_margin` over a grid of the sections a range can draw."""
    f, g, qq = torch.meshgrid(_grid(*freq, True), _grid(*gain, False), _grid(*q, True),
                              indexing="ij")
    return F.biquad_margin(*F.rbj_coefficients(kind, f, g, qq, sample_rate))


class _Equalizer(RandomTransform):
    """Shared shell: waveforms only, output-gated, ``apply`` from ``coefficients``."""

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # an FFT filter is only approximately the identity
    margin: int

    def __init__(self, sample_rate: float, p: float, same_on_batch: bool) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)

    def coefficients(self, params: Params) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def apply(self, x: Tensor, params: Params) -> Tensor:
        b, a = self.coefficients(params)
        return F.eq_filter(x, b, a, self.sample_rate, margin=self.margin)


class _Biquad(_Equalizer):
    kind: ClassVar[str] = ""
    freq_key: ClassVar[str] = ""

    def __init__(self, freq_hz, gain_db, q, sample_rate: float, p: float,
                 same_on_batch: bool) -> None:
        super().__init__(sample_rate, p, same_on_batch)
        self.freq_hz = _check_hz(self.freq_key, freq_hz, self.sample_rate)
        self.gain_db = check_range("gain_db", gain_db)
        self.q = _check_q(q)
        #: Zero-padding (samples) for the slowest impulse response the ranges can draw.
        self.margin = _margin(self.kind, self.freq_hz, self.gain_db, self.q, self.sample_rate)

    def sample(self, shape, n, device, generator) -> Params:
        return {self.freq_key: F.log_uniform((n,), *self.freq_hz, device, generator),
                "gain_db": F.uniform((n,), *self.gain_db, device, generator),
                "q": F.log_uniform((n,), *self.q, device, generator)}

    def coefficients(self, params: Params) -> tuple[Tensor, Tensor]:
        return F.rbj_coefficients(self.kind, params[self.freq_key], params["gain_db"],
                                  params["q"], self.sample_rate)

    def extra_repr(self) -> str:
        return (f"{self.freq_key}={self.freq_hz}, gain_db={self.gain_db}, q={self.q}, "
                f"sample_rate={self.sample_rate:g}, " + super().extra_repr())


class PeakingFilter(_Biquad):
    """Boost or cut a band around a centre frequency drawn per example (RBJ peaking EQ).

    The magnitude of the Audio-EQ-Cookbook peaking biquad (``gain_db`` at
    ``center_hz``, 0 dB far from it, bandwidth set by ``q``), applied with zero
    phase in one batched FFT (:mod:`augkit.functional.eq`). It equals the
    magnitude of ``torchaudio.functional.equalizer_biquad(x, sample_rate,
    center_hz, gain_db, q)``. Centres and ``q`` are drawn **log-uniformly**, gains
    uniformly, one set per example shared by its channels. The signal is
    zero-padded by as much as the slowest response the ranges can draw needs (at
    most its own length). ``sample_rate`` has no default: frequencies are in Hz.

    Args:
        center_hz: Range of the centre in Hz, in ``(0, sample_rate / 2)``.
            (Default: ``(50, 7500)``)
        gain_db: Range of the gain at the centre in dB. (Default: ``(-12, 12)``)
        q: Range of the quality factor, ``> 0``; the -3 dB-of-peak bandwidth is
            about ``center_hz / q``. (Default: ``(0.5, 5)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One filter for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged (float32 maths; float64 stays float64).

    Example:
        >>> t = PeakingFilter(center_hz=1000, gain_db=(-6, 6), q=2, sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    kind = "peaking"
    freq_key = "center_hz"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, center_hz: tuple[float, float] | float = (50.0, 7500.0),
                 gain_db: tuple[float, float] | float = (-12.0, 12.0),
                 q: tuple[float, float] | float = (0.5, 5.0), *, sample_rate: float,
                 p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(center_hz, gain_db, q, sample_rate, p, same_on_batch)


class LowShelfFilter(_Biquad):
    """Raise or lower everything below a cutoff drawn per example (RBJ low shelf).

    The magnitude of the Audio-EQ-Cookbook low-shelf biquad: ``gain_db`` at DC,
    0 dB at Nyquist, half of ``gain_db`` (in dB) at ``cutoff_hz``; ``q = 0.707``
    is the steepest shelf without overshoot (the cookbook's slope ``S = 1``),
    larger ``q`` gives a bump before the shelf. It equals the magnitude of
    ``torchaudio.functional.bass_biquad(x, sample_rate, gain_db, cutoff_hz, q)``.
    Applied with zero phase in one batched FFT (:mod:`augkit.functional.eq`);
    cutoffs and ``q`` drawn **log-uniformly**, gains uniformly, per example.
    ``sample_rate`` has no default: frequencies are in Hz.

    Args:
        cutoff_hz: Range of the shelf midpoint in Hz, in ``(0, sample_rate / 2)``.
            (Default: ``(50, 4000)``)
        gain_db: Range of the shelf gain in dB. (Default: ``(-12, 12)``)
        q: Range of the quality factor, ``> 0``. (Default: ``(0.5, 1)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One filter for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged (float32 maths; float64 stays float64).

    Example:
        >>> t = LowShelfFilter(cutoff_hz=200, gain_db=6, sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    kind = "lowshelf"
    freq_key = "cutoff_hz"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, cutoff_hz: tuple[float, float] | float = (50.0, 4000.0),
                 gain_db: tuple[float, float] | float = (-12.0, 12.0),
                 q: tuple[float, float] | float = (0.5, 1.0), *, sample_rate: float,
                 p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(cutoff_hz, gain_db, q, sample_rate, p, same_on_batch)


class HighShelfFilter(_Biquad):
    """Raise or lower everything above a cutoff drawn per example (RBJ high shelf).

    The magnitude of the Audio-EQ-Cookbook high-shelf biquad: 0 dB at DC,
    ``gain_db`` at Nyquist, half of ``gain_db`` (in dB) at ``cutoff_hz``;
    ``q = 0.707`` is the steepest shelf without overshoot. It equals the
    magnitude of ``torchaudio.functional.treble_biquad(x, sample_rate, gain_db,
    cutoff_hz, q)``. Applied with zero phase in one batched FFT
    (:mod:`augkit.functional.eq`); cutoffs and ``q`` drawn **log-uniformly**,
    gains uniformly, per example. ``sample_rate`` has no default: frequencies
    are in Hz.

    Args:
        cutoff_hz: Range of the shelf midpoint in Hz, in ``(0, sample_rate / 2)``.
            (Default: ``(300, 7500)``)
        gain_db: Range of the shelf gain in dB. (Default: ``(-12, 12)``)
        q: Range of the quality factor, ``> 0``. (Default: ``(0.5, 1)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One filter for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged (float32 maths; float64 stays float64).

    Example:
        >>> t = HighShelfFilter(cutoff_hz=3000, gain_db=-6, sample_rate=16000, p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    kind = "highshelf"
    freq_key = "cutoff_hz"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, cutoff_hz: tuple[float, float] | float = (300.0, 7500.0),
                 gain_db: tuple[float, float] | float = (-12.0, 12.0),
                 q: tuple[float, float] | float = (0.5, 1.0), *, sample_rate: float,
                 p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(cutoff_hz, gain_db, q, sample_rate, p, same_on_batch)


#: Q of ParametricEQ's shelves: the steepest shelf without overshoot (slope S = 1).
SHELF_Q = 1 / math.sqrt(2)


class ParametricEQ(_Equalizer):
    """A random parametric EQ per example: microphone or speaker colouration.

    Each example gets ``n`` peaking bands (``n`` uniform on the integers in
    ``n_bands``), each with its own centre (log-uniform in ``center_hz``), gain
    (uniform in ``gain_db``) and ``q`` (log-uniform), and, with ``shelves``, a low
    and a high shelf (cookbook shelves with ``q = 1 / sqrt(2)``, midpoints
    log-uniform in ``low_shelf_hz`` and ``high_shelf_hz``, gains uniform in
    ``shelf_gain_db``). The response is the product of the sections'
    Audio-EQ-Cookbook magnitudes (:class:`PeakingFilter`, :class:`LowShelfFilter`,
    :class:`HighShelfFilter`), applied with zero phase in one batched FFT
    (:mod:`augkit.functional.eq`). Bands beyond an example's ``n`` have gain 0
    (a flat response). ``sample_rate`` has no default: frequencies are in Hz.

    Args:
        n_bands: ``(lo, hi)`` peaking bands per example, integers ``0 <= lo <= hi``,
            ``hi >= 1``. (Default: ``(1, 4)``)
        center_hz: Range of the band centres in Hz. (Default: ``(50, 7500)``)
        gain_db: Range of the band gains in dB. (Default: ``(-6, 6)``)
        q: Range of the band quality factors. (Default: ``(0.5, 3)``)
        shelves: Add a low and a high shelf to every example. (Default: ``True``)
        shelf_gain_db: Range of the shelf gains in dB. (Default: ``(-6, 6)``)
        low_shelf_hz: Range of the low shelf's midpoint in Hz. (Default: ``(60, 400)``)
        high_shelf_hz: Range of the high shelf's midpoint in Hz. (Default: ``(2000, 7000)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One EQ for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged. Parameters: ``n_bands`` ``(B,)``; ``center_hz``,
        ``gain_db``, ``q`` ``(B, hi)``; the shelves' ``(B,)``.

    Example:
        >>> t = ParametricEQ(n_bands=(2, 3), sample_rate=16000, p=1.0)
        >>> y = t(torch.randn(4, 1, 1600))
        >>> y.shape, t.last_params["gain_db"].shape
        (torch.Size([4, 1, 1600]), torch.Size([4, 3]))
    """

    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),
             dict(kwargs=dict(sample_rate=16000, n_bands=(2, 6), shelves=False),
                  input="wave", changes="always"))

    def __init__(self, n_bands: tuple[int, int] = (1, 4),
                 center_hz: tuple[float, float] | float = (50.0, 7500.0),
                 gain_db: tuple[float, float] | float = (-6.0, 6.0),
                 q: tuple[float, float] | float = (0.5, 3.0), shelves: bool = True,
                 shelf_gain_db: tuple[float, float] | float = (-6.0, 6.0),
                 low_shelf_hz: tuple[float, float] | float = (60.0, 400.0),
                 high_shelf_hz: tuple[float, float] | float = (2000.0, 7000.0), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(sample_rate, p, same_on_batch)
        if not (isinstance(n_bands, (tuple, list)) and len(n_bands) == 2):
            raise ValueError(f"n_bands must be a (low, high) pair of integers, got {n_bands!r}")
        lo, hi = check_int("n_bands", n_bands[0]), check_int("n_bands", n_bands[1], 1)
        if lo > hi:
            raise ValueError(f"n_bands must have low <= high, got {n_bands!r}")
        self.n_bands = (lo, hi)
        self.center_hz = _check_hz("center_hz", center_hz, self.sample_rate)
        self.gain_db = check_range("gain_db", gain_db)
        self.q = _check_q(q)
        self.shelves = bool(shelves)
        self.shelf_gain_db = check_range("shelf_gain_db", shelf_gain_db)
        self.low_shelf_hz = _check_hz("low_shelf_hz", low_shelf_hz, self.sample_rate)
        self.high_shelf_hz = _check_hz("high_shelf_hz", high_shelf_hz, self.sample_rate)
        margin = _margin("peaking", self.center_hz, self.gain_db, self.q, self.sample_rate)
        if self.shelves:
            margin = max(margin, *(
                _margin(kind, hz, self.shelf_gain_db, (SHELF_Q, SHELF_Q), self.sample_rate)
                for kind, hz in (("lowshelf", self.low_shelf_hz),
                                 ("highshelf", self.high_shelf_hz))))
        #: Zero-padding (samples) for the slowest impulse response the ranges can draw.
        self.margin = margin

    def sample(self, shape, n, device, generator) -> Params:
        lo, hi = self.n_bands
        count = lo + F.randint_below(torch.full((n,), hi - lo + 1, device=device), device,
                                     generator)
        gain = F.uniform((n, hi), *self.gain_db, device, generator)
        params = {
            "n_bands": count,
            "center_hz": F.log_uniform((n, hi), *self.center_hz, device, generator),
            "gain_db": torch.where(torch.arange(hi, device=device) < count[:, None], gain, 0.0),
            "q": F.log_uniform((n, hi), *self.q, device, generator),
        }
        if self.shelves:
            params.update(
                low_shelf_hz=F.log_uniform((n,), *self.low_shelf_hz, device, generator),
                low_shelf_gain_db=F.uniform((n,), *self.shelf_gain_db, device, generator),
                high_shelf_hz=F.log_uniform((n,), *self.high_shelf_hz, device, generator),
                high_shelf_gain_db=F.uniform((n,), *self.shelf_gain_db, device, generator))
        return params

    def coefficients(self, params: Params) -> tuple[Tensor, Tensor]:
        b, a = F.rbj_coefficients("peaking", params["center_hz"], params["gain_db"],
                                  params["q"], self.sample_rate)  # (B, hi, 3)
        if self.shelves:
            q = torch.full_like(params["low_shelf_hz"], SHELF_Q)
            lb, la = F.rbj_coefficients("lowshelf", params["low_shelf_hz"],
                                        params["low_shelf_gain_db"], q, self.sample_rate)
            hb, ha = F.rbj_coefficients("highshelf", params["high_shelf_hz"],
                                        params["high_shelf_gain_db"], q, self.sample_rate)
            b = torch.cat([b, lb[:, None], hb[:, None]], dim=1)
            a = torch.cat([a, la[:, None], ha[:, None]], dim=1)
        return b, a

    def extra_repr(self) -> str:
        shelves = (f"shelves=True, shelf_gain_db={self.shelf_gain_db}, "
                   f"low_shelf_hz={self.low_shelf_hz}, high_shelf_hz={self.high_shelf_hz}, "
                   if self.shelves else "shelves=False, ")
        return (f"n_bands={self.n_bands}, center_hz={self.center_hz}, gain_db={self.gain_db}, "
                f"q={self.q}, " + shelves + f"sample_rate={self.sample_rate:g}, "
                + super().extra_repr())
