"""Atmospheric absorption of sound (ISO 9613-1), a different path per example.

The pure-tone attenuation coefficient of ISO 9613-1:1993 (equations 3 to 5 and
Annex B), in dB per metre, for frequency ``f`` (Hz), air temperature ``T``
(kelvin), relative humidity ``h_r`` (%) and pressure ``p_a`` (kPa), with the
reference values ``T0 = 293.15 K``, ``T01 = 273.16 K`` (the triple point of
water) and ``p_r = 101.325 kPa``::

    C     = -6.8346 (T01 / T) ** 1.261 + 4.6151
    h     = h_r 10 ** C / (p_a / p_r)                    molar concentration of water vapour, %
    f_rO  = (p_a / p_r) (24 + 4.04e4 h (0.02 + h) / (0.391 + h))          oxygen relaxation, Hz
    f_rN  = (p_a / p_r) (T / T0) ** -0.5 (9 + 280 h exp(-4.170 ((T / T0) ** (-1/3) - 1)))
    alpha = 8.686 f^2 [1.84e-11 (p_r / p_a) (T / T0) ** 0.5
                       + (T / T0) ** -2.5 (0.01275 exp(-2239.1 / T) / (f_rO + f^2 / f_rO)
                                         + 0.1068 exp(-3352.0 / T) / (f_rN + f^2 / f_rN))]

The first term is classical and rotational absorption, the others the
vibrational relaxation of oxygen and nitrogen. At 20 °C and 50 % it gives
0.0047 dB/m at 1 kHz and 0.105 dB/m at 8 kHz; it reproduces the octave-band
table of ISO 9613-2 (Table 2) to its rounding (``tests/test_air.py``). The
standard states ±10 % accuracy from 50 Hz to 10 kHz, -20 to 50 °C and 10 to
100 % humidity; above 10 kHz the same formula is used as it stands.

:func:`air_absorption` applies ``10 ** (-alpha(f) * distance / 20)`` to each
example's spectrum with zero phase, in one batched FFT (as the filters of
:mod:`augkit.functional.filters`). Only the absorption: the ``1 / r`` spreading
loss of a longer path is a gain, left to :class:`~augkit.Gain`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .filters import fft_length, filter_zero_phase

__all__ = ["air_absorption", "air_absorption_db"]

#: Reference pressure p_r (kPa), temperature T0 and the triple point T01 (K).
P_REF_KPA = 101.325
T0_K = 293.15
T01_K = 273.16
#: dB per neper, as ISO 9613-1 rounds it (20 / ln 10).
DB_PER_NEPER = 8.686


def air_absorption_db(freqs_hz: Tensor, temperature_c: Tensor, humidity: Tensor,
                      pressure_kpa: float = P_REF_KPA) -> Tensor:
    """ISO 9613-1 attenuation coefficient ``alpha`` in dB/m, per example.

    Args:
        freqs_hz: Frequencies in Hz, ``(F,)``.
        temperature_c: Air temperatures in °C, ``(B,)``.
        humidity: Relative humidities in percent, ``(B,)``, ``> 0``.
        pressure_kpa: Ambient pressure in kPa. (Default: ``101.325``)

    Returns:
        ``(B, F)`` float64 coefficients in dB/m (multiply by the distance in metres).

    Example:
        >>> a = air_absorption_db(torch.tensor([1000.0, 8000.0]), torch.tensor([20.0]),
        ...                       torch.tensor([50.0]))
        >>> [round(v, 1) for v in (a[0] * 1000).tolist()]  # dB/km
        [4.7, 105.3]
    """
    f = freqs_hz.double()
    t = temperature_c.double().unsqueeze(-1) + 273.15  # (B, 1) kelvin
    p = pressure_kpa / P_REF_KPA
    c = -6.8346 * (T01_K / t) ** 1.261 + 4.6151
    h = humidity.double().unsqueeze(-1) * torch.pow(10.0, c) / p
    t_rel = t / T0_K
    fr_o = p * (24 + 4.04e4 * h * (0.02 + h) / (0.391 + h))
    fr_n = p * t_rel.rsqrt() * (9 + 280 * h * torch.exp(-4.170 * (t_rel ** (-1 / 3) - 1)))
    f2 = f * f
    relax = (0.01275 * torch.exp(-2239.1 / t) / (fr_o + f2 / fr_o)
             + 0.1068 * torch.exp(-3352.0 / t) / (fr_n + f2 / fr_n))
    return DB_PER_NEPER * f2 * (1.84e-11 / p * t_rel.sqrt() + t_rel ** -2.5 * relax)


def air_absorption(x: Tensor, distance_m: Tensor, temperature_c: Tensor, humidity: Tensor,
                   sample_rate: float, pressure_kpa: float = P_REF_KPA) -> Tensor:
    """Attenuate each example as ``distance_m`` metres of air would (zero phase).

    The gain at ``f`` is ``10 ** (-alpha(f) * distance / 20)`` with ``alpha`` from
    :func:`air_absorption_db`. The signal is zero-padded by its own length before
    the FFT (``n_fft >= 2 T``), so there is no wrap-around.

    Args:
        x: Waveforms ``(B, C, T)`` (any ``(B, ..., T)``).
        distance_m: Path lengths in metres, ``(B,)``, ``>= 0``.
        temperature_c: Air temperatures in °C, ``(B,)``.
        humidity: Relative humidities in percent, ``(B,)``.
        sample_rate: Sample rate in Hz.
        pressure_kpa: Ambient pressure in kPa. (Default: ``101.325``)

    Returns:
        Tensor like ``x`` (shape and dtype); computed in float32 (float64 stays float64).

    Example:
        >>> x = torch.randn(2, 1, 1000)
        >>> air_absorption(x, torch.tensor([10.0, 500.0]), torch.tensor([20.0, 10.0]),
        ...                torch.tensor([50.0, 30.0]), 16000).shape
        torch.Size([2, 1, 1000])
    """
    n_fft = fft_length(x.shape[-1])
    freqs = torch.arange(n_fft // 2 + 1, device=x.device, dtype=torch.float64) * (
        sample_rate / n_fft)
    db = air_absorption_db(freqs, temperature_c, humidity, pressure_kpa)
    db.mul_(distance_m.double().unsqueeze(-1) * (-math.log(10) / 20))
    return filter_zero_phase(x, db.exp_().float(), n_fft)
