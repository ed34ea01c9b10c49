"""Additive coloured noise (power spectrum ``1 / f ** f_decay``) at a per-example SNR."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_range


class ColoredNoise(RandomTransform):
    """Additive noise whose power spectrum falls as ``1 / f ** f_decay``, at a per-example SNR.

    Each example draws an exponent ``f_decay ~ U(f_decay)`` (``0`` white, ``1``
    pink, ``2`` brown; negative: blue ``-1``, violet ``-2``) and an SNR
    ``snr_db ~ U(snr_db)``. Its noise is generated at the input's full length in
    one go, as a random-phase spectrum: every ``rfft`` bin gets the magnitude
    ``|f| ** (-f_decay / 2)`` and a phase drawn uniformly from 4096 equally
    spaced angles (one independent draw per bin and channel), the DC (and
    Nyquist) bin zero, then one inverse FFT, scaled to unit power analytically
    (:func:`augkit.functional.random_phase_noise`): the power spectrum is met
    exactly, and the sum of that many random-phase cosines is close to Gaussian.
    It is then scaled to the SNR of the example's power (mean square over its
    channels and valid samples: with ``lengths`` the padding stays as it is) by
    :func:`augkit.functional.add_noise_snr`; a silent example stays silent.

    The phases are a parameter (``params["phase"]``, ``B x C x (T // 2 + 1)``
    int32 ``m`` for the angle ``2 pi m / 4096``; two 12-bit phases per 24-bit
    draw, a quarter of the random numbers full-length white noise needs), so a
    replay is exact and ``same_on_batch`` shares them.

    Args:
        snr_db: SNR range in dB. (Default: ``(3, 30)``)
        f_decay: Range of spectral exponents. (Default: ``(-2, 2)``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw (exponent, SNR and noise) for the whole batch.
            (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> pink = ColoredNoise(snr_db=10, f_decay=1.0, p=1.0)
        >>> pink(torch.ones(2, 1, 64), generator=g).shape
        torch.Size([2, 1, 64])
    """

    ndims = (3,)
    expects = "waveforms (B, C, T)"
    identity = {"snr_db": float("inf")}
    uses_lengths = True
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs=dict(snr_db=(0, 10), f_decay=(1, 2)), input="wave", changes="always"))

    def __init__(self, snr_db: tuple[float, float] | float = (3.0, 30.0),
                 f_decay: tuple[float, float] | float = (-2.0, 2.0), p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.snr_db = check_range("snr_db", snr_db)
        self.f_decay = check_range("f_decay", f_decay)

    def sample(self, shape, n, device, generator) -> Params:
        return {"snr_db": F.uniform((n,), *self.snr_db, device, generator),
                "f_decay": F.uniform((n,), *self.f_decay, device, generator),
                "phase": F.random_phases((n, *shape[1:-1], shape[-1] // 2 + 1), device,
                                         generator)}

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        noise = F.random_phase_noise(params["phase"], params["f_decay"], x.shape[-1])
        # Unit power by construction (the mean over channels of unit-power rows).
        return F.add_noise_snr(x, noise, params["snr_db"], lengths,
                               noise_power=torch.ones_like(params["snr_db"]), reuse_noise=True)

    def extra_repr(self) -> str:
        return f"snr_db={self.snr_db}, f_decay={self.f_decay}, " + super().extra_repr()
