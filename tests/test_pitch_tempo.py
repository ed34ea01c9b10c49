"""PitchShift, TimeStretch and Speed: physical properties and reference parity.

Short signals at 16 kHz (0.5-1 s). Pitch is measured with a zero-padded FFT
peak and parabolic interpolation on the middle half of a tone; onsets and
click positions on the energy envelope.
"""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torchaudio
from conftest import generator

import augkit as ak
from augkit.functional import phase_vocoder as PV
from augkit.functional import resample as RS
from augkit.transforms import pitch_shift as pitch_shift_module
from augkit.transforms import speed as speed_module
from augkit.transforms import time_stretch as time_stretch_module

SR = 16000


def tone(freq: float, seconds: float = 0.5, batch: int = 1) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return torch.sin(2 * math.pi * freq * t).expand(batch, 1, -1).contiguous()


def measured_pitch(y: torch.Tensor) -> torch.Tensor:
    """Frequency in Hz of the strongest partial of each ``(..., T)`` row (its middle half)."""
    n = y.shape[-1]
    mid = y[..., n // 4 : 3 * n // 4].double()
    pad = 16 * mid.shape[-1]
    spec = torch.fft.rfft(mid * torch.hann_window(mid.shape[-1], periodic=False,
                                                  dtype=torch.float64), n=pad).abs()
    k = spec.argmax(-1, keepdim=True)
    a, b, c = (spec.gather(-1, k + d).squeeze(-1) for d in (-1, 0, 1))
    return (k.squeeze(-1) + 0.5 * (a - c) / (a - 2 * b + c)) * SR / pad


def envelope(y: torch.Tensor, width: int = 64) -> torch.Tensor:
    """RMS over ``width`` samples, scaled so a unit sine reads 1: ``(..., T)``."""
    e = torch.nn.functional.avg_pool1d(y.reshape(-1, 1, y.shape[-1]).square(), width, 1,
                                       width // 2, count_include_pad=False)
    return (e[..., : y.shape[-1]] * 2).sqrt().reshape(y.shape)


def crossings(e: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last sample of each row of ``e`` above ``level``."""
    idx = torch.arange(e.shape[-1]).expand_as(e)
    above = e > level
    return (torch.where(above, idx, e.shape[-1]).amin(-1),
            torch.where(above, idx, -1).amax(-1))


def run(t, x, **params):
    """Apply ``t`` to ``x`` with given per-example parameters (every example drawn)."""
    params = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()}
    params["apply"] = torch.ones(x.shape[0], dtype=torch.bool)
    return t(x, params=params)


# --- PitchShift ---------------------------------------------------------------------------


def test_pitch_shift_scales_the_pitch_of_a_tone_per_example():
    t = ak.PitchShift(semitones=(-7, 7), sample_rate=SR, p=1.0)
    x = tone(440.0, batch=8)
    y = t(x, generator=generator("cpu", 1))
    semitones = t.last_params["semitones"].double()
    assert semitones.unique().numel() == 8 and semitones.abs().max() > 2
    expected = 440.0 * 2.0 ** (semitones / 12)
    # Measured: within 1e-6 relative; 0.1% is a fifth of the 0.37-semitone test's margin.
    torch.testing.assert_close(measured_pitch(y[:, 0]), expected, rtol=1e-3, atol=0)


@pytest.mark.parametrize("semitones", [0.37, -2.71, 11.5])
def test_pitch_shift_takes_any_real_number_of_semitones(semitones):
    t = ak.PitchShift(semitones=(-12, 12), sample_rate=SR, p=1.0)
    y = run(t, tone(440.0), semitones=[semitones])
    # 0.37 semitones is 2.2%: a shift rounded to whole semitones (or a fast ratio) fails.
    expected = torch.tensor([440.0 * 2.0 ** (semitones / 12)], dtype=torch.float64)
    torch.testing.assert_close(measured_pitch(y[:, 0]), expected, rtol=2e-4, atol=0)


def test_pitch_shift_keeps_onsets_offsets_and_level():
    """A tone burst (200-400 ms) stays in place and keeps its level after shifting."""
    x = tone(440.0, batch=6)
    time = torch.arange(x.shape[-1]) / SR
    x = x * ((time >= 0.2) & (time < 0.4))
    shifts = [-12.0, -4.0, -1.0, 0.37, 4.0, 12.0]
    y = run(ak.PitchShift(semitones=(-12, 12), sample_rate=SR, p=1.0), x, semitones=shifts)
    assert y.shape == x.shape
    on, off = crossings(envelope(y[:, 0]), 0.5)
    # Measured: onsets within 2.5 ms, offsets within 5.5 ms (phase-locked vocoder; the
    # standard one is off by up to 16 ms here).
    assert ((on - 0.2 * SR).abs() < 0.004 * SR).all(), (on - 0.2 * SR) / SR
    assert ((off - 0.4 * SR).abs() < 0.008 * SR).all(), (off - 0.4 * SR) / SR
    energy = y.square().sum(-1) / x.square().sum(-1)
    # Measured: 0.98-0.99 (the standard phase vocoder keeps 0.12-0.98 here).
    assert ((energy > 0.95) & (energy < 1.05)).all(), energy


def test_pitch_shift_channels_share_their_example_s_shift():
    x = torch.cat([tone(440.0, batch=2), tone(660.0, batch=2)], dim=1)  # (2, 2, T)
    y = run(ak.PitchShift(sample_rate=SR, p=1.0), x, semitones=[3.0, -2.0])
    ratio = 2.0 ** (torch.tensor([[3.0], [-2.0]], dtype=torch.float64) / 12)
    expected = torch.tensor([440.0, 660.0], dtype=torch.float64) * ratio
    torch.testing.assert_close(measured_pitch(y), expected, rtol=1e-3, atol=0)


def test_pitch_shift_works_on_inputs_shorter_than_its_window():
    t = ak.PitchShift(sample_rate=SR, p=1.0)
    assert t.n_fft == 512
    y = t(torch.randn(3, 2, 100), generator=generator("cpu"))
    assert y.shape == (3, 2, 100) and torch.isfinite(y).all()


@pytest.mark.parametrize("rate, n_fft", [(8000, 256), (16000, 512), (22050, 1024),
                                         (44100, 2048), (48000, 2048)])
def test_pitch_shift_window_is_32_to_64_ms(rate, n_fft):
    assert PV.pitch_shift_n_fft(rate) == n_fft
    assert 0.032 <= n_fft / rate < 0.064


# --- TimeStretch --------------------------------------------------------------------------


def click_positions(y: torch.Tensor, starts: torch.Tensor, spacing: torch.Tensor, count: int
                    ) -> torch.Tensor:
    """Energy centroid of each click within half a spacing of where it should be: ``(B, count)``."""
    e = y.double().square()
    out = torch.empty(y.shape[0], count, dtype=torch.float64)
    for b in range(y.shape[0]):
        for i in range(count):
            centre = float(starts[b] + i * spacing[b])
            lo, hi = int(centre - spacing[b] / 2), min(int(centre + spacing[b] / 2), y.shape[-1])
            w = e[b, lo:hi]
            out[b, i] = (torch.arange(lo, hi, dtype=torch.float64) * w).sum() / w.sum()
    return out


def test_time_stretch_scales_the_spacing_of_a_click_train_per_example():
    period, first, n = 1600, 800, 9  # clicks every 100 ms from 50 ms, 1 s
    x = torch.zeros(6, 1, SR)
    x[..., first::period] = 1.0
    t = ak.TimeStretch(rate=(0.8, 1.25), p=1.0)
    y = t(x, generator=generator("cpu", 2))[:, 0]
    rate = t.last_params["rate"].double()
    assert (rate.max() - rate.min()) > 0.2
    # Clicks whose half-spacing neighbourhood lies inside every output (stretched end or T).
    room = torch.minimum(torch.full_like(rate, SR), SR / rate) - (first + period / 2) / rate
    count = min(n, int((room / (period / rate)).min()) + 1)
    assert count >= 7
    pos = click_positions(y, first / rate, period / rate, count)
    k = torch.arange(count, dtype=torch.float64)
    k0 = k - k.mean()
    slope = (k0 * (pos - pos.mean(-1, keepdim=True))).sum(-1) / k0.square().sum()
    # Spacing = period / rate within 2% (measured: within 0.25%).
    torch.testing.assert_close(slope, period / rate, rtol=0.02, atol=0)
    # And each click where it belongs, within 10 ms (measured: within a hop, 8 ms: a
    # click lands where its frame's synthesis window puts it).
    assert (pos - (first + k * period) / rate[:, None]).abs().max() < 0.010 * SR


def test_time_stretch_keeps_pitch_and_pads_the_end_with_zeros():
    x = tone(440.0, seconds=1.0, batch=4)
    rate = [0.8, 0.9, 1.1, 1.25]
    y = run(ak.TimeStretch(p=1.0), x, rate=rate)[:, 0]
    for b, r in enumerate(rate):
        end = int(SR / r) if r > 1 else SR
        torch.testing.assert_close(measured_pitch(y[b, :end]),
                                   torch.tensor(440.0, dtype=torch.float64), rtol=1e-3, atol=0)
        if r > 1:  # shorter: zeros after the stretched end
            assert (y[b, end + 1 :] == 0).all()
            assert envelope(y[b : b + 1, end - 400 : end - 200]).min() > 0.9


def test_time_stretch_by_one_reconstructs_the_input():
    x = torch.randn(2, 3, 3000, generator=torch.Generator().manual_seed(0))
    for locking in (True, False):
        y = PV.time_stretch(x, torch.ones(2), 3000, phase_locking=locking)
        torch.testing.assert_close(y, x, rtol=0, atol=1e-4)


def test_standard_phase_vocoder_matches_torchaudio_per_example():
    x = torch.randn(3, 2, 4000, generator=torch.Generator().manual_seed(0))
    window = torch.hann_window(512)
    spec = PV.stft(x, window, 128)  # (B, C, M, F)
    torch.testing.assert_close(spec, torch.stft(x.view(-1, 4000), 512, 128, window=window,
                                                pad_mode="constant", return_complex=True)
                               .transpose(-1, -2).view_as(spec))
    rate = torch.tensor([0.8, 1.0, 1.3])
    n = math.ceil(spec.shape[-2] / 0.8)
    y = PV.phase_vocoder(spec, rate, n, phase_locking=False)
    advance = torch.linspace(0, math.pi * 128, 257)[..., None]
    for b in range(3):
        ref = torchaudio.functional.phase_vocoder(spec[b].transpose(-1, -2), float(rate[b]),
                                                  advance).transpose(-1, -2)
        # torchaudio accumulates phases of hundreds of radians in float32: 1e-3 of the peak.
        torch.testing.assert_close(y[b, :, : ref.shape[-2]], ref, rtol=0,
                                   atol=1e-3 * float(ref.abs().max()))
        assert (y[b, :, ref.shape[-2] + 1 :] == 0).all()  # past the end: silence


def test_overlap_add_inverts_stft_at_any_hop():
    x = torch.randn(2, 1000, generator=torch.Generator().manual_seed(1))
    for n_fft, hop in [(512, 128), (256, 100), (64, 32)]:
        w = torch.hann_window(n_fft)
        y = PV.overlap_add(PV.stft(x, w, hop), w, hop, 1000)
        torch.testing.assert_close(y, x, rtol=0, atol=1e-5)


# --- Speed --------------------------------------------------------------------------------


def band_limited(seconds: float = 0.5) -> torch.Tensor:
    """Partials up to 3.1 kHz with 20 ms fades, so neither edge rings: ``(1, 1, T)``."""
    n = int(seconds * SR)
    t = torch.arange(n) / SR
    x = sum(torch.sin(2 * math.pi * f * t + f) for f in (220.0, 1000.0, 2500.0, 3100.0)) / 4
    fade = torch.clamp(torch.minimum(t, t[-1] - t) / 0.02, max=1.0)
    return (x * fade).view(1, 1, n)


@pytest.mark.parametrize("factor, orig, new", [(1.1, 11, 10), (0.9, 9, 10), (1.25, 5, 4)])
def test_speed_matches_torchaudio_resample(factor, orig, new):
    x = band_limited()
    y = run(ak.Speed(factor=(0.5, 2.0), p=1.0), x, factor=[factor])[0]
    ref = torchaudio.functional.resample(x[0], orig, new)
    n = min(ref.shape[-1], x.shape[-1])
    # Both are band-limited sinc interpolators (different windows): measured < 1e-3.
    assert (y[:, :n] - ref[:, :n]).abs().max() < 2e-3
    assert (y[:, int(x.shape[-1] / factor) + 1 :] == 0).all()  # past the end: zeros


def test_speed_scales_pitch_and_tempo():
    x = tone(440.0, seconds=1.0, batch=3)
    factor = [0.9, 1.05, 1.1]
    y = run(ak.Speed(p=1.0), x, factor=factor)[:, 0]
    for b, f in enumerate(factor):
        end = min(SR, int(SR / f))
        torch.testing.assert_close(measured_pitch(y[b, :end]),
                                   torch.tensor(440.0 * f, dtype=torch.float64), rtol=1e-4, atol=0)
        _, last = crossings(envelope(y[b : b + 1]), 0.5)
        assert abs(int(last) - end) < 0.002 * SR  # the tone ends at T / factor


def test_speeding_up_does_not_alias():
    """A partial above the new Nyquist frequency is removed, not folded back."""
    x = tone(6000.0)  # 0.75 of Nyquist; at factor 1.5 it would be 9 kHz > 8 kHz
    y = run(ak.Speed(factor=(0.5, 2.0), p=1.0), x, factor=[1.5])
    valid = y[..., 200 : int(x.shape[-1] / 1.5) - 200]
    level = 10 * torch.log10(valid.square().mean() / x.square().mean())
    assert level < -55, level  # measured: about -70 dB


def test_resample_by_one_keeps_the_band_below_the_rolloff():
    x = band_limited()
    y = RS.resample(x, torch.ones(1), x.shape[-1], max_factor=1.0)
    assert (y - x).abs().max() < 1e-3


# --- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize("build, name", [
    (lambda: ak.TimeStretch(rate=(0.0, 1.2)), "rate"),
    (lambda: ak.TimeStretch(rate=(1.2, 0.8)), "rate"),
    (lambda: ak.TimeStretch(hop_length=300), "hop_length"),
    (lambda: ak.TimeStretch(n_fft=2), "n_fft"),
    (lambda: ak.Speed(factor=(-1.0, 1.1)), "factor"),
    (lambda: ak.Speed(factor=float("nan")), "factor"),
    (lambda: ak.PitchShift(semitones=(2, float("inf")), sample_rate=SR), "semitones"),
    (lambda: ak.PitchShift(sample_rate=0), "sample_rate"),
])
def test_bad_arguments_are_value_errors_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_pitch_shift_needs_the_sample_rate():
    with pytest.raises(TypeError):
        ak.PitchShift()


def test_waveforms_only():
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        ak.Speed()(torch.randn(2, 1, 8, 10))


@pytest.mark.parametrize("module", [PV, RS, pitch_shift_module, time_stretch_module,
                                    speed_module])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
