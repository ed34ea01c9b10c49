"""Clipping, TanhDistortion, BitCrush, MuLaw, Aliasing: physics and parity.

The generic contract is in tests/test_contract.py via each class's ``cases``.
Here: the clipped fraction is the drawn percentile (numpy's percentile for the
threshold); the THD of a sine rises with the tanh drive and the RMS is kept;
the quantisation noise power is ``step^2 / 12`` for the drawn bit depth; mu-law
equals torchaudio's encode + decode; aliasing puts a tone's energy at its folded
frequency.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio.functional as TAF

import augkit as ak
from augkit import functional as F

SR = 16000


def sine(freqs, seconds=1.0, amp=0.5):
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    f = torch.as_tensor(freqs, dtype=torch.float64)[:, None]
    return (amp * torch.sin(2 * math.pi * f * t)).float()[:, None]  # (B, 1, T)


def power_at(y, hz):
    """Power of each example (B, 1, T) in the rfft bin at ``hz`` (1-s clips: 1-Hz bins)."""
    spec = np.abs(np.fft.rfft(y[:, 0].double().numpy(), axis=-1)) ** 2
    return spec[np.arange(len(hz)), np.asarray(hz, dtype=int)]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- Clipping


@pytest.mark.parametrize("with_lengths", [False, True])
def test_clipped_fraction_is_the_drawn_percentile(with_lengths):
    x = torch.randn(16, 2, 3000, generator=gen(0))
    lengths = torch.randint(1000, 3001, (16,), generator=gen(1)) if with_lengths else None
    t = ak.Clipping(percentile=(0.0, 60.0), p=1.0)
    y = t(x, lengths=lengths, generator=gen(2))
    pct = t.last_params["percentile"].double().numpy()
    n = (lengths if with_lengths else torch.full((16,), 3000)).numpy()
    for i in range(16):
        xi, yi = x[i, :, : n[i]].numpy(), y[i, :, : n[i]].numpy()
        threshold = np.percentile(np.abs(xi), 100 - pct[i])  # numpy's "linear" method
        assert np.abs(yi).max() == pytest.approx(threshold, rel=1e-5)
        clipped = (yi != xi).mean()
        assert abs(clipped - pct[i] / 100) <= 1.0 / xi.size + 1e-9, (i, clipped, pct[i])
        assert torch.equal(y[i, :, n[i]:], x[i, :, n[i]:])  # padding untouched
    assert len(set(pct.round(6))) == 16


@pytest.mark.parametrize("kind", ["continuous", "ties", "inf_and_nan", "zeros", "tiny"])
def test_radix_selection_equals_the_sort(kind):
    """The CPU's selection gives the sorted order's value at every rank (ties, inf
    padding, NaN last, zeros and subnormals included), and so does the pair of
    neighbouring order statistics abs_quantile interpolates between."""
    a = torch.randn(6, 997, generator=gen(3)).abs() * torch.logspace(-3, 3, 6)[:, None]
    if kind == "ties":
        a = (a * 4).round() / 4
    elif kind == "inf_and_nan":
        a[:, 500:] = math.inf
        a[2, 10:20] = math.nan
    elif kind == "zeros":
        a[:3] = 0.0
    elif kind == "tiny":
        a = a * 1e-40  # subnormal float32
    ordered = a.sort(1).values
    for lo in (torch.zeros(6, dtype=torch.long), torch.full((6,), 996),
               torch.randint(0, 997, (6,), generator=gen(4)), torch.arange(6) * 150):
        want = ordered.gather(1, lo[:, None]).squeeze(1)
        got = F.distortion.select_nonnegative(a, lo)
        assert torch.equal(got.isnan(), want.isnan())
        assert torch.equal(got.nan_to_num(), want.nan_to_num()), (kind, lo)
        if kind != "inf_and_nan":  # (the pair's next value up is not meant to reach NaN)
            hi = (lo + 1).clamp_max(996)
            got = F.distortion._pair_by_selection(a, lo, hi)
            assert all(map(torch.equal, got, F.distortion._pair_by_sort(a, lo, hi)))


def test_soft_clipping_stays_under_the_threshold_and_is_linear_near_zero():
    x = torch.randn(4, 1, 4000, generator=gen(0))
    t = ak.Clipping(percentile=10.0, mode="soft", p=1.0)
    y = t(x)
    thr = F.abs_quantile(x, torch.full((4,), 0.9))
    assert (y.abs() <= thr[:, None, None] + 1e-6).all()
    small = x.abs() < 0.05 * thr[:, None, None]
    torch.testing.assert_close(y[small], x[small], rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------- TanhDistortion


def thd(y, f0=1000, n=7):
    """Total harmonic distortion (amplitude ratio) of 1-s clips with a tone at f0."""
    spec = np.abs(np.fft.rfft(y[:, 0].double().numpy(), axis=-1)) ** 2
    harm = sum(spec[:, k * f0] for k in range(2, n + 1) if k * f0 < SR / 2)
    return np.sqrt(harm / spec[:, f0])


def test_thd_of_a_sine_rises_with_drive_and_the_rms_is_kept():
    drives = torch.tensor([0.0, 10.0, 20.0, 30.0])
    x = sine([1000.0] * 4, amp=0.3)
    y = ak.TanhDistortion(p=1.0)(x, params={"apply": torch.ones(4, dtype=torch.bool),
                                             "drive_db": drives})
    d = thd(y)
    assert (np.diff(d) > 0).all(), d
    assert d[0] < 0.01 and d[-1] > 0.2, d  # barely bent at 0 dB, near square at 30 dB
    assert thd(x).max() < 1e-4
    torch.testing.assert_close(y.square().mean(-1), x.square().mean(-1), rtol=1e-4, atol=0)
    # odd harmonics only (tanh is odd)
    spec = np.abs(np.fft.rfft(y[:, 0].double().numpy(), axis=-1)) ** 2
    assert (spec[:, 2000] < 1e-8 * spec[:, 1000]).all()


def test_tanh_distortion_ignores_the_input_level_and_padding():
    x = sine([440.0] * 2)
    params = {"apply": torch.ones(2, dtype=torch.bool), "drive_db": torch.full((2,), 15.0)}
    t = ak.TanhDistortion(p=1.0)
    y = t(x * torch.tensor([1.0, 0.01]).view(2, 1, 1), params=params)
    torch.testing.assert_close(y[1] * 100, y[0], rtol=1e-4, atol=1e-5)
    lengths = torch.tensor([8000, 16000])
    padded = x.clone()
    padded[0, :, 8000:] = 0.0
    yl = t(padded, params=params, lengths=lengths)
    assert (yl[0, :, 8000:] == 0).all()
    torch.testing.assert_close(yl[0, :, :8000].square().mean(), x[0, :, :8000].square().mean(),
                               rtol=1e-4, atol=0)
    assert torch.equal(t(torch.zeros(2, 1, 100), params=params), torch.zeros(2, 1, 100))


# ---------------------------------------------------------------- BitCrush, MuLaw


def test_quantisation_noise_power_is_step_squared_over_12():
    x = (torch.rand(9, 1, 40000, generator=gen(0)) * 1.8 - 0.9)
    bits = torch.arange(4, 13)
    y = ak.BitCrush(p=1.0)(x, params={"apply": torch.ones(9, dtype=torch.bool),
                                      "bit_depth": bits})
    step = 2.0 ** (1 - bits.double())
    noise = (y - x).double().square().mean((1, 2))
    ratio = noise / (step**2 / 12)
    assert ((ratio - 1).abs() < 0.05).all(), ratio
    assert torch.equal(torch.round(y.double() / step.view(-1, 1, 1)) * step.view(-1, 1, 1),
                       y.double())  # on the grid


def test_bit_crush_in_place_works_under_autograd():
    """The rounding runs in place in one buffer, with and without autograd (no ``out=``,
    which autograd refuses): the same values either way."""
    x = torch.randn(5, 2, 999, generator=gen(7)) * 0.7
    depth = torch.tensor([1, 3, 8, 16, 24])
    fast = F.bit_crush(x, depth)
    slow = F.bit_crush(x.clone().requires_grad_(True), depth)
    assert torch.equal(fast, slow.detach())
    assert torch.equal(F.bit_crush(x.double(), depth), F.bit_crush(
        x.double().requires_grad_(True), depth).detach())


def test_bit_depth_is_drawn_per_example_as_integers():
    t = ak.BitCrush(bit_depth=(3, 6))
    d = t.sample(torch.Size([4000, 1, 8]), 4000, torch.device("cpu"), gen(0))["bit_depth"]
    counts = torch.bincount(d - 3, minlength=4).float() / 4000
    assert d.min() == 3 and d.max() == 6 and ((counts - 0.25).abs() < 0.03).all()


@pytest.mark.parametrize("channels", [16, 256])
def test_mu_law_equals_torchaudio_encode_decode(channels):
    x = torch.rand(4, 1, 5000, generator=gen(0)) * 2 - 1
    y = ak.MuLaw(quantization_channels=channels, p=1.0)(x)
    ref = TAF.mu_law_decoding(TAF.mu_law_encoding(x, channels), channels)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)
    assert len(torch.unique(y)) <= channels


def test_mu_law_levels_differ_per_example():
    x = (torch.rand(1, 1, 5000, generator=gen(0)) * 2 - 1).expand(4, 1, 5000)
    ch = torch.tensor([4, 16, 64, 256])
    y = ak.MuLaw(p=1.0)(x, params={"apply": torch.ones(4, dtype=torch.bool),
                                   "quantization_channels": ch})
    for i in range(4):
        ref = TAF.mu_law_decoding(TAF.mu_law_encoding(x[i], int(ch[i])), int(ch[i]))
        torch.testing.assert_close(y[i], ref, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- Aliasing


def test_aliasing_puts_energy_at_the_folded_frequency():
    """A 3 kHz tone held at 4 kHz folds to 1 kHz, at 5 kHz to 2 kHz, at 4.4 kHz to 1.4 kHz:
    the strongest bin below the new Nyquist, within 10 dB of the tone (linear
    interpolation back up droops by sinc^2); a proper resampler (torchaudio's
    windowed sinc, down and up) leaves almost nothing there."""
    f0, rates = 3000.0, [4000.0, 5000.0, 4400.0, 16000.0]
    folded = [1000, 2000, 1400, 3000]
    x = sine([f0] * 4)
    y = ak.Aliasing(sample_rate=SR, rate_hz=(4000.0, 16000.0), p=1.0)(
        x, params={"apply": torch.ones(4, dtype=torch.bool), "rate_hz": torch.tensor(rates)})
    spec = np.abs(np.fft.rfft(y[:, 0].double().numpy(), axis=-1)) ** 2
    for i in range(3):
        assert spec[i, : int(rates[i] / 2)].argmax() == folded[i], i
    ratio_db = 10 * np.log10(power_at(y, folded) / power_at(x, [3000] * 4))
    assert (ratio_db[:3] > -10.0).all(), ratio_db
    torch.testing.assert_close(y[3], x[3])  # at the input's own rate: unchanged
    clean = TAF.resample(TAF.resample(x[0], SR, 4000), 4000, SR)
    assert 10 * np.log10(power_at(clean[None], [1000]) / power_at(x[:1], [3000]))[0] < -40


def test_aliasing_keeps_tones_below_the_new_nyquist_up_to_the_interpolation_droop():
    """A 500 Hz tone comes through with linear interpolation's gain sinc^2(f / rate)."""
    rates = np.array([8000.0, 6000.0, 2000.0])
    x = sine([500.0] * 3)
    y = ak.Aliasing(sample_rate=SR, p=1.0)(x, params={
        "apply": torch.ones(3, dtype=torch.bool), "rate_hz": torch.tensor(rates)})
    ratio_db = 10 * np.log10(power_at(y, [500] * 3) / power_at(x, [500] * 3))
    expected_db = 40 * np.log10(np.sinc(500.0 / rates))
    assert np.abs(ratio_db - expected_db).max() < 0.1, (ratio_db, expected_db)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("cls, kwargs, name", [
    (ak.Clipping, dict(percentile=(10.0, 120.0)), "percentile"),
    (ak.Clipping, dict(mode="fuzz"), "mode"),
    (ak.TanhDistortion, dict(drive_db=(10.0, 0.0)), "drive_db"),
    (ak.BitCrush, dict(bit_depth=(0, 4)), "bit_depth"),
    (ak.BitCrush, dict(bit_depth=(8, 4)), "bit_depth"),
    (ak.MuLaw, dict(quantization_channels=1), "quantization_channels"),
    (ak.Aliasing, dict(rate_hz=(1000.0, 20000.0), sample_rate=SR), "rate_hz"),
    (ak.Aliasing, dict(sample_rate=0), "sample_rate"),
])
def test_bad_arguments_are_value_errors_naming_them(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)
