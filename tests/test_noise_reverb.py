"""ColoredNoise, BackgroundNoise, ImpulseResponse and their banks: physical properties.

SNRs measured back, spectral slopes of coloured noise, folder loading and
looping of noise clips, FFT convolution against torchaudio, delay
compensation, and the RT60 of the synthetic room bank (Schroeder integration).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from scipy.signal import welch

import augkit as ak
from augkit.banks import colored_noise_bank, synthetic_room_irs
from experiments.augmentations import Context, background_noise_arm, reverb_arm

SR = 16000


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def measured_snr_db(x, y, lengths=None):
    """(B,) SNR of ``y - x`` against ``x`` over each example's valid samples, float64."""
    x, n = x.double(), (y.double() - x.double())
    if lengths is not None:
        keep = torch.arange(x.shape[-1]) < lengths.view(-1, 1, 1)
        x, n = x * keep, n * keep
    return 10 * torch.log10(x.square().sum((1, 2)) / n.square().sum((1, 2)))


def spectral_slope(noise, lo=100.0, hi=4000.0):
    """Exponent ``a`` of a ``1 / f ** a`` power spectrum: Welch PSD, log-log fit over [lo, hi]."""
    f, psd = welch(noise, fs=SR, nperseg=2048, axis=-1)
    band = (f >= lo) & (f <= hi)
    logf = np.log10(f[band])
    return np.array([-np.polyfit(logf, np.log10(p[band]), 1)[0] for p in psd.reshape(-1,
                                                                              len(f))])


def rt60_schroeder(ir, sample_rate):
    """RT60 from the Schroeder backward integral of the tail, fit over -5 to -35 dB (T30)."""
    tail = ir[1:].double()  # the diffuse part, after the direct path
    edc = torch.flip(torch.cumsum(torch.flip(tail.square(), [0]), 0), [0])
    db = 10 * torch.log10(edc / edc[0])
    fit = (db <= -5) & (db >= -35)
    t = torch.arange(len(db), dtype=torch.float64)[fit] / sample_rate
    slope = np.polyfit(t.numpy(), db[fit].numpy(), 1)[0]  # dB per second
    return -60.0 / slope


# --------------------------------------------------------------------------- SNR


@pytest.mark.parametrize("make", [
    lambda: ak.ColoredNoise(p=1.0),
    lambda: ak.BackgroundNoise(torch.randn(5, 700, generator=gen(4)), p=1.0),
], ids=["ColoredNoise", "BackgroundNoise"])
@pytest.mark.parametrize("padded", [False, True])
def test_snr_is_the_drawn_one_and_padding_stays_silent(make, padded):
    t = make()
    x = torch.randn(12, 2, 2000, generator=gen(1)) * torch.linspace(0.1, 2, 12).view(-1, 1, 1)
    lengths = None
    if padded:
        lengths = torch.randint(300, 2001, (12,), generator=gen(2))
        x = x * (torch.arange(2000) < lengths.view(-1, 1, 1))
    y = t(x, generator=gen(3), lengths=lengths)
    drawn = t.last_params["snr_db"].double()
    assert drawn.std() > 3  # the draws really differ per example
    assert (measured_snr_db(x, y, lengths) - drawn).abs().max() < 0.5
    if padded:
        assert (y[torch.arange(2000).expand(12, 2, -1) >= lengths.view(-1, 1, 1)] == 0).all()


def test_colored_noise_at_infinite_snr_is_bit_identical():
    t = ak.ColoredNoise(p=1.0)
    x = torch.randn(4, 2, 300, generator=gen(0))
    t(x, generator=gen(1))
    params = dict(t.last_params, snr_db=torch.full((4,), math.inf))
    assert torch.equal(t(x, params=params), x)


# --------------------------------------------------------------------------- ColoredNoise


def test_colored_noise_spectral_slope_follows_the_drawn_exponent():
    t = ak.ColoredNoise(snr_db=(10, 10), f_decay=(-2, 2), p=1.0)
    x = 1e-3 * torch.randn(8, 1, 4 * SR, generator=gen(5))
    y = t(x, generator=gen(6))
    drawn = t.last_params["f_decay"].numpy()
    assert drawn.max() - drawn.min() > 2  # several exponents in the batch
    slopes = spectral_slope((y - x).double().numpy()[:, 0])
    assert np.abs(slopes - drawn).max() < 0.15, (slopes, drawn)


def test_colored_noise_bank_spreads_exponents_and_is_deterministic():
    bank = colored_noise_bank(5, 4.0, SR, seed=7)
    assert bank.shape == (5, 4 * SR)
    torch.testing.assert_close(bank.square().mean(-1), torch.ones(5))
    assert torch.equal(bank, colored_noise_bank(5, 4.0, SR, seed=7))
    assert not torch.equal(bank, colored_noise_bank(5, 4.0, SR, seed=8))
    slopes = spectral_slope(bank.double().numpy())
    assert np.abs(slopes - np.linspace(-2, 2, 5)).max() < 0.15, slopes


# --------------------------------------------------------------------------- BackgroundNoise


def test_short_noise_loops_and_long_noise_does_not_wrap():
    clip = torch.randn(1, 100, generator=gen(0))
    t = ak.BackgroundNoise(clip, snr_db=(10, 10), p=1.0)
    x = torch.randn(6, 2, 1000, generator=gen(1))
    noise = t(x, generator=gen(2)) - x
    torch.testing.assert_close(noise[..., 100:], noise[..., :-100], rtol=1e-4, atol=1e-5)
    # and it is the clip, read from the drawn offset, the same on both channels
    offset = t.last_params["offset"]
    want = clip[0][(offset.view(-1, 1) + torch.arange(1000)) % 100].unsqueeze(1)
    scale = (noise * want).sum(-1, keepdim=True) / want.square().sum(-1, keepdim=True)
    torch.testing.assert_close(noise, scale * want, rtol=1e-4, atol=1e-5)

    long = ak.BackgroundNoise(torch.randn(2, 300), p=1.0)
    long(torch.randn(64, 1, 250), generator=gen(3))
    offset = long.last_params["offset"]
    assert offset.max() <= 50 and offset.min() == 0


def test_background_noise_loads_a_folder(tmp_path):
    t16 = np.arange(SR) / SR
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t16), SR)
    t8 = np.arange(4000) / 8000
    tone = np.sin(2 * np.pi * 440 * t8)
    sf.write(tmp_path / "sub_b.flac", np.stack([tone, 0.5 * tone], 1), 8000)  # stereo, 8 kHz
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.warns(UserWarning, match="bad.wav"):
        t = ak.BackgroundNoise(tmp_path, sample_rate=SR, p=1.0)
    assert t.noise_lengths.tolist() == [SR, 8000]  # 0.5 s at 8 kHz resampled to 16 kHz
    b = t.noise_flat[SR:]
    ref = 0.75 * np.sin(2 * np.pi * 440 * np.arange(8000) / SR)  # mono mix of 1 and 0.5
    assert np.abs(b[200:-200].numpy() - ref[200:-200]).max() < 0.02
    # non-persistent buffers: moved by .to(), not saved
    assert {"noise_flat", "noise_starts", "noise_lengths"} <= dict(t.named_buffers()).keys()
    assert t.state_dict() == {}
    assert t.double().noise_flat.dtype == torch.float64


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="sample_rate"):
        ak.BackgroundNoise(tmp_path)
    with pytest.raises(ValueError, match="sample_rate"):
        ak.ImpulseResponse(str(tmp_path))
    with pytest.raises(ValueError, match=str(tmp_path)):
        ak.BackgroundNoise(tmp_path, sample_rate=SR)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    # nothing usable: one error that names the folder and says why (no warning as well)
    with pytest.raises(ValueError, match=r"could be decoded.*1 unreadable \(bad\.wav: "):
        ak.ImpulseResponse(tmp_path, sample_rate=SR)
    with pytest.raises(ValueError, match="noises"):
        ak.BackgroundNoise(torch.randn(10))
    with pytest.raises(ValueError, match="silent"):
        ak.ImpulseResponse(torch.zeros(2, 10))


# --------------------------------------------------------------------------- ImpulseResponse


def test_impulse_response_matches_torchaudio_fftconvolve():
    rooms = synthetic_room_irs(3, SR, rt60=(0.2, 0.4), seed=1)
    irs = torch.zeros(3, rooms.shape[1] + 100)
    for i, delay in enumerate([0, 37, 100]):  # pre-delays: the peak is not at 0
        irs[i, delay: delay + rooms.shape[1]] = rooms[i]
    t = ak.ImpulseResponse(irs, p=1.0)
    x = torch.randn(6, 2, 5000, generator=gen(0))
    y = t(x, generator=gen(1))
    index = t.last_params["index"]
    assert len(set(index.tolist())) > 1
    for b in range(6):
        ir = t.irs[index[b]]
        shift = int(ir.abs().argmax())
        full = torchaudio.functional.fftconvolve(x[b].double(), ir.double().expand(2, -1))
        ref = full[..., shift: shift + 5000]
        torch.testing.assert_close(y[b].double(), ref, rtol=1e-4, atol=1e-4 * ref.abs().max())


def test_fft_convolve_keeps_its_own_because_torchaudio_pads_exactly_and_crops_one_window(
        monkeypatch):
    """Why F.fft_convolve is not torchaudio.functional.fftconvolve (see its docstring)."""
    # 1. Each example is read from its own IR's direct path; fftconvolve's "same"
    #    mode crops one fixed window, so an IR with a pre-delay moves the signal.
    irs = torch.zeros(2, 64)
    irs[0, 0], irs[1, 40] = 1.0, 1.0  # two deltas, the second 40 samples late
    x = torch.randn(2, 1, 1000, generator=gen(0))
    torch.testing.assert_close(ak.functional.fft_convolve(x, irs), x, rtol=0, atol=1e-5)
    same = torchaudio.functional.fftconvolve(x, irs.unsqueeze(1), mode="same")
    assert not torch.allclose(same, x, atol=1e-3)
    # 2. The FFT length: exactly T + L - 1 there (here 1009, a prime: the slow case of
    #    every FFT library), the next 2^a 3^b 5^c length here (scipy's next_fast_len).
    sizes = []
    rfft = torch.fft.rfft
    monkeypatch.setattr(torch.fft, "rfft", lambda a, n=None, **kw: sizes.append(n) or rfft(
        a, n=n, **kw))
    x, ir = torch.randn(1, 1, 1000), torch.randn(1, 10)
    torchaudio.functional.fftconvolve(x, ir.unsqueeze(1))
    ak.functional.fft_convolve(x, ir)
    assert sizes == [1009, 1009, 1024, 1024]


def test_delta_with_predelay_returns_the_input_and_level_is_kept():
    irs = torch.zeros(2, 50)
    irs[0, 17], irs[1, 0] = 1.0, 0.5
    t = ak.ImpulseResponse(irs, p=1.0)
    x = torch.randn(8, 2, 400, generator=gen(0))
    torch.testing.assert_close(t(x, generator=gen(1)), x, rtol=1e-5, atol=1e-5)

    rooms = ak.ImpulseResponse(synthetic_room_irs(8, SR, rt60=(0.2, 0.6), seed=2), p=1.0)
    white = torch.randn(8, 1, 4 * SR, generator=gen(2))
    ratio = rooms(white, generator=gen(3)).square().mean(-1) / white.square().mean(-1)
    assert ((ratio - 1).abs() < 0.15).all(), ratio.flatten()


def test_impulse_response_leaves_padding_as_it_is():
    t = ak.ImpulseResponse(synthetic_room_irs(2, SR, rt60=(0.05, 0.1), seed=0), p=1.0)
    lengths = torch.tensor([400, 250, 17, 300])
    x = torch.randn(4, 2, 400, generator=gen(0)) * (torch.arange(400) < lengths.view(-1, 1, 1))
    y = t(x, generator=gen(1), lengths=lengths)
    pad = torch.arange(400).expand(4, 2, -1) >= lengths.view(-1, 1, 1)
    assert (y[pad] == 0).all() and not torch.equal(y, x)


def test_synthetic_room_bank_has_the_drawn_rt60():
    irs, rt60 = synthetic_room_irs(6, SR, rt60=(0.1, 1.0), seed=0, return_rt60=True)
    assert irs.shape == (6, SR) and rt60.min() >= 0.1 and rt60.max() <= 1.0
    assert (irs.abs().argmax(-1) == 0).all()  # the direct path is the peak,
    wet = synthetic_room_irs(8, SR, rt60=(0.02, 0.05), drr_db=(-20, -15), seed=0)
    assert (wet.abs().argmax(-1) == 0).all()  # even in a short, very wet room
    measured = torch.tensor([rt60_schroeder(h, SR) for h in irs])
    assert ((measured / rt60 - 1).abs() < 0.15).all(), (measured, rt60)
    assert torch.equal(irs, synthetic_room_irs(6, SR, rt60=(0.1, 1.0), seed=0))
    assert not torch.equal(irs, synthetic_room_irs(6, SR, rt60=(0.1, 1.0), seed=1))


# --------------------------------------------------------------------------- arms


def test_arm_builders_use_the_folders_or_the_generated_banks(tmp_path):
    sf.write(tmp_path / "n.wav", np.random.default_rng(0).standard_normal(8000) * 0.1, 8000)
    ctx = Context(SR, num_classes=3)
    noise = background_noise_arm(ctx, bank_size=4, bank_seconds=0.5, p=0.3)
    assert noise.num_noises == 4 and noise.p == 0.3
    assert torch.equal(noise.noise_flat, colored_noise_bank(4, 0.5, SR, seed=0).reshape(-1))
    reverb = reverb_arm(ctx, bank_size=3, rt60=[0.1, 0.2])
    assert reverb.irs.shape == (3, math.ceil(0.2 * SR))
    folders = Context(SR, 3, noise_dir=str(tmp_path), ir_dir=str(tmp_path))
    assert background_noise_arm(folders).noise_lengths.tolist() == [SR]
    assert reverb_arm(folders).irs.shape == (1, SR)
