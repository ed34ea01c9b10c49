"""BandLimit: white noise through each mode, the documented stop band and pass band.

The generic contract is in tests/test_contract.py via the class's ``cases``.
Here: Welch estimates of the response (output / input PSD) for bandwidths of
2, 3.4, 4 and 7 kHz at 16 kHz: the low-pass against scipy's order-16
Butterworth and the documented bounds (loss under 0.005 dB to 0.8 B and 0.15 dB
to 0.9 B; at least 13, 31 and 56 dB down from 1.1, 1.25 and 1.5 B), the
resampling mode's (0.05 dB to 0.85 B, -12 dB at B, 70 dB down from 1.15 B);
bandwidths at or above Nyquist give the input back; the draw; argument checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import torch
from spectra import welch_db

import augkit as ak

SR = 16000
BANDS = [2000.0, 3400.0, 4000.0, 7000.0]


@pytest.fixture(scope="module")
def noise():
    return torch.randn(4, 1, 6 * SR, generator=torch.Generator().manual_seed(0))


def given(bands):
    return {"apply": torch.ones(len(bands), dtype=torch.bool),
            "bandwidth_hz": torch.tensor(bands)}


def band(f, lo, hi):
    return (f >= lo) & (f <= min(hi, 0.49 * SR))


def test_low_pass_passes_below_and_stops_above_the_drawn_band(noise):
    y = ak.BandLimit(BANDS, sample_rate=SR, p=1.0)(noise, params=given(BANDS))
    f, db = welch_db(noise, y, SR)
    for i, b in enumerate(BANDS):
        assert np.abs(db[i][band(f, 20, 0.8 * b)]).max() < 0.01, b
        assert db[i][band(f, 20, 0.9 * b)].min() > -0.15 - 0.01, b
        for start, floor in ((1.1, 13.0), (1.25, 31.0), (1.5, 56.0)):
            above = band(f, start * b, SR)
            if above.any():
                assert db[i][above].max() < -floor, (b, start, db[i][above].max())
        sos = ss.butter(16, b, "lowpass", fs=SR, output="sos")
        expected = 20 * np.log10(np.abs(ss.sosfreqz(sos, worN=f, fs=SR)[1]) + 1e-300)
        keep = (expected > -40) & (f > 20)
        assert np.abs(db[i] - expected)[keep].max() < 0.1, b


def test_resampling_mode_passes_below_and_stops_above_the_drawn_band(noise):
    y = ak.BandLimit(BANDS, resample=True, sample_rate=SR, p=1.0)(noise,
                                                              params=given(BANDS))
    f, db = welch_db(noise, y, SR)
    for i, b in enumerate(BANDS):
        assert np.abs(db[i][band(f, 20, 0.85 * b)]).max() < 0.05, b
        assert abs(db[i][np.argmin(np.abs(f - b))] + 12.0) < 0.5, b
        above = band(f, 1.15 * b, SR)
        if above.any():
            assert db[i][above].max() < -70.0, (b, db[i][above].max())


@pytest.mark.parametrize("resample", [False, True])
def test_bandwidths_at_or_above_nyquist_give_the_input_back(noise, resample):
    t = ak.BandLimit(bandwidth_hz=(3400.0, 8000.0, 12000.0), resample=resample, sample_rate=SR,
                     p=1.0)
    x = noise[:, :, :4000]
    y = t(x, params=given([8000.0, 12000.0, 3400.0, 8000.0]))
    assert torch.equal(y[[0, 1, 3]], x[[0, 1, 3]]) and not torch.equal(y[2], x[2])


def test_bandwidths_are_drawn_uniformly_from_the_list():
    t = ak.BandLimit(sample_rate=SR)
    p = t.sample(torch.Size([8000, 1, 10]), 8000, torch.device("cpu"),
                 torch.Generator().manual_seed(0))["bandwidth_hz"]
    values, counts = torch.unique(p, return_counts=True)
    assert values.tolist() == [3400.0, 4000.0, 7000.0, 8000.0]
    assert ((counts / 8000 - 0.25).abs() < 0.03).all(), counts


def test_sample_rate_has_no_default():
    with pytest.raises(TypeError, match="sample_rate"):
        ak.BandLimit()


@pytest.mark.parametrize("value", [(), (3400.0, 0.0), (-1.0,), "3400", (3400.0, float("nan"))])
def test_bad_bandwidths_are_value_errors_naming_them(value):
    with pytest.raises(ValueError, match="bandwidth_hz"):
        ak.BandLimit(bandwidth_hz=value, sample_rate=SR)
