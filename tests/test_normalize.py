"""The normalisers against their references: librosa, numpy, pyloudnorm.

MaxNormalize after AmplitudeToDB is ``librosa.power_to_db(S, ref=np.max)``;
Standardize and FrequencyStandardize are numpy's mean/std (per example, and over
the concatenated training frames); integrated loudness is
``pyloudnorm.Meter(sr).integrated_loudness`` at five sample rates, and a
normalised clip measures its target by pyloudnorm. Also: Compose carries
``lengths`` through the frontend to them, and nothing syncs on CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import augkit as ak
from augkit import functional as F

librosa = pytest.importorskip("librosa")
pyln = pytest.importorskip("pyloudnorm")

RATES = [8000, 16000, 22050, 44100, 48000]


def power_spectrogram(shape, seed=0):
    """Power spectra over ~140 dB, so that the 80 dB floor is active."""
    g = torch.Generator().manual_seed(seed)
    return 10.0 ** (torch.rand(shape, generator=g, dtype=torch.float64) * 14 - 12)


# --- MaxNormalize ---------------------------------------------------------------------


def test_max_normalize_after_db_matches_librosa():
    s = power_spectrogram((3, 2, 16, 40))
    s[1] *= 1e-3  # examples at different levels: each is referenced to its own max
    chain = ak.Compose([ak.AmplitudeToDB(top_db=80.0), ak.MaxNormalize()])
    got = chain(s.float())
    assert got.dtype == torch.float32
    for b in range(3):
        ref = librosa.power_to_db(s[b].numpy(), ref=np.max, top_db=80.0)
        np.testing.assert_allclose(got[b].numpy(), ref, atol=1e-4, rtol=0)


def test_max_normalize_with_lengths():
    x = torch.randn(3, 1, 8, 20, dtype=torch.float64)
    x[0, ..., 15:] = 100.0  # loud padding must not set the maximum
    lengths = torch.tensor([15, 20, 0])
    y = ak.MaxNormalize()(x, lengths=lengths)
    assert y[0, ..., :15].max() == 0 and y[1].max() == 0
    torch.testing.assert_close(y[0], x[0] - x[0, ..., :15].max())  # one shift, padding too
    torch.testing.assert_close(y[2], x[2])  # no valid frame: unchanged


# --- Standardize ----------------------------------------------------------------------


def numpy_standardize(x, lengths, eps):
    out = np.zeros_like(x)
    for b in range(x.shape[0]):
        v = x[b, ..., : lengths[b]]
        out[b, ..., : lengths[b]] = (v - v.mean()) / max(v.std(), eps)
    return out


@pytest.mark.parametrize("with_lengths", [False, True])
def test_standardize_matches_numpy(with_lengths):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 2, 10, 30, generator=g, dtype=torch.float64)
    x = x * torch.tensor([1.0, 3.0, 0.1, 10.0]).reshape(4, 1, 1, 1) + torch.tensor(
        [0.0, -50.0, 7.0, 2.0]).reshape(4, 1, 1, 1)
    x[3] = 5.0  # constant: all zeros, not NaN
    lengths = torch.tensor([30, 11, 1, 25]) if with_lengths else None
    y = ak.Standardize(eps=1e-5)(x, lengths=lengths)
    ref = numpy_standardize(x.numpy(), [30] * 4 if lengths is None else lengths.tolist(), 1e-5)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-10, rtol=1e-10)
    y32 = ak.Standardize()(x.float(), lengths=lengths)
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.numpy(), ref, atol=1e-4, rtol=1e-4)


# --- FrequencyStandardize -------------------------------------------------------------


def test_frequency_standardize_fits_like_numpy_over_all_frames():
    g = torch.Generator().manual_seed(2)
    freq_mean = torch.linspace(-60, -10, 12, dtype=torch.float64)[:, None]
    freq_std = torch.linspace(1, 8, 12, dtype=torch.float64)[:, None]
    batches = [torch.randn(b, 2, 12, t, generator=g, dtype=torch.float64) * freq_std + freq_mean
               for b, t in ((3, 40), (5, 25), (1, 60))]
    lengths = [torch.tensor([40, 7, 33]), None, torch.tensor([0])]
    fs = ak.FrequencyStandardize(12)
    assert fs.fit(batches[0], lengths[0]) is fs
    for x, n in zip(batches[1:], lengths[1:], strict=True):
        fs.fit(x.float() if n is None else x, n)  # float32 batches accumulate in float64
    frames = np.concatenate(
        [x[b, :, :, : (x.shape[-1] if n is None else int(n[b]))].permute(1, 0, 2)
         .reshape(12, -1).numpy()
         for x, n in zip(batches, lengths, strict=True) for b in range(x.shape[0])],
        axis=1)  # (F, all frames)
    assert int(fs.count) == frames.shape[1] == 2 * (40 + 7 + 33) + 2 * 5 * 25
    np.testing.assert_allclose(fs.mean.numpy(), frames.mean(1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fs.std.numpy(), frames.std(1), rtol=1e-6, atol=1e-6)
    assert fs.mean.dtype == fs.std.dtype == torch.float64

    x = batches[1].float()
    y = fs(x)
    ref = (x.double().numpy() - frames.mean(1)[:, None]) / frames.std(1)[:, None]
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-4, rtol=1e-4)


def test_frequency_standardize_exact_on_float64_in_one_batch():
    x = torch.randn(4, 1, 6, 50, dtype=torch.float64) * 3 + 2
    fs = ak.FrequencyStandardize(6).fit(x)
    frames = x.permute(2, 0, 1, 3).reshape(6, -1).numpy()
    np.testing.assert_allclose(fs.mean.numpy(), frames.mean(1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fs.std.numpy(), frames.std(1), rtol=1e-12, atol=1e-12)
    y = fs(x, lengths=torch.tensor([50, 10, 0, 49]))
    assert (y[1, ..., 10:] == 0).all() and (y[2] == 0).all()


def test_frequency_standardize_unfitted_reset_and_state_dict():
    fs = ak.FrequencyStandardize(4)
    x = torch.randn(2, 1, 4, 10)
    with pytest.raises(ValueError, match="not fitted"):
        fs(x)
    fs.fit(x * 2 + 1)
    with pytest.raises(ValueError, match="frequency bins"):
        fs(torch.randn(2, 1, 5, 10))
    assert set(fs.state_dict()) == {"mean", "std", "count"}
    model = torch.nn.Sequential(fs, torch.nn.Identity())
    fresh = torch.nn.Sequential(ak.FrequencyStandardize(4), torch.nn.Identity())
    fresh.load_state_dict(model.state_dict())  # the stats travel with the model
    torch.testing.assert_close(fresh[0](x), fs(x))
    fs.reset()
    assert int(fs.count) == 0 and (fs.mean == 0).all()
    with pytest.raises(ValueError, match="not fitted"):
        fs(x)
    fresh[0].load_state_dict(fs.state_dict())  # loading unfitted stats unfits
    with pytest.raises(ValueError, match="not fitted"):
        fresh(x)


# --- LoudnessNormalize ----------------------------------------------------------------


def test_k_weighting_coefficients_are_pyloudnorms():
    for sr in RATES:
        meter = pyln.Meter(sr)
        for (b, a), name in zip(F.k_weighting(sr), ("high_shelf", "high_pass"), strict=True):
            np.testing.assert_allclose(b, meter._filters[name].b, rtol=1e-14, atol=0)
            np.testing.assert_allclose(a, meter._filters[name].a, rtol=1e-14, atol=0)


def loudness_batch(sr, channels=2, seed=0):
    """Clips from exactly one block to 1.3 s at different levels; some need the gates."""
    rng = np.random.default_rng(seed + sr)
    block = int(np.ceil(0.4 * sr))
    lengths = [block, block + 1, int(0.55 * sr), int(0.75 * sr) + 3, int(1.3 * sr)]
    x = np.zeros((len(lengths), channels, max(lengths)))
    for i, n in enumerate(lengths):
        t = np.arange(n) / sr
        tone = np.sin(2 * np.pi * (60 + 900 * i) * t)  # low tones feel the 38 Hz high pass
        # The last clip ends 15 dB down (between the two gates: only the relative
        # one drops its blocks), the one before 35 dB down.
        quiet, until = (10 ** (-15 / 20), 0.35) if i == 4 else (10 ** (-35 / 20), 0.6)
        env = np.where(t < t[-1] * until, 1.0, quiet) if i >= 3 else 1.0
        x[i, :, :n] = (0.3 * tone + 0.1 * rng.standard_normal((channels, n))) * env \
            * 10 ** (-i / 2)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(lengths)


@pytest.mark.parametrize("sr", RATES)
def test_integrated_loudness_matches_pyloudnorm(sr):
    x, lengths = loudness_batch(sr)
    got = F.integrated_loudness(x, sr, lengths)
    assert got.shape == (5,) and got.dtype == torch.float32
    meter = pyln.Meter(sr)
    ref = np.array([meter.integrated_loudness(x[i, :, :n].double().numpy().T)
                    for i, n in enumerate(lengths.tolist())])
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-3, rtol=0)  # the brief: 0.1 LU

    y = ak.LoudnessNormalize(sr, target_lufs=-18.0)(x, lengths=lengths)
    out = np.array([meter.integrated_loudness(y[i, :, :n].double().numpy().T)
                    for i, n in enumerate(lengths.tolist())])
    np.testing.assert_allclose(out, -18.0, atol=1e-3, rtol=0)  # the physical check
    assert (y[0, :, lengths[0]:] == 0).all()  # zero padding stays zero


def test_integrated_loudness_surround_channel_weights():
    sr = 16000
    x = torch.randn(2, 5, sr, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x = x * torch.tensor([0.3, 0.1, 0.02, 0.2, 0.05], dtype=torch.float64)[:, None]
    got = F.integrated_loudness(x, sr)
    assert got.dtype == torch.float64
    ref = [pyln.Meter(sr).integrated_loudness(x[i].numpy().T) for i in range(2)]
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="C <= 5"):
        F.integrated_loudness(torch.zeros(1, 6, sr), sr)


def test_short_and_silent_clips_pass_unchanged():
    sr = 16000
    x = torch.randn(4, 1, sr) * 0.1
    x[1] = 0.0  # silent: every block gated out
    x[2] *= 1e-5  # below the absolute gate
    lengths = torch.tensor([sr, sr, sr, int(0.4 * sr) - 1])  # the last: under one block
    lufs = F.integrated_loudness(x, sr, lengths)
    assert torch.isfinite(lufs[0]) and lufs[1] == lufs[2] == -np.inf and torch.isnan(lufs[3])
    y = ak.LoudnessNormalize(sr)(x, lengths=lengths)
    assert torch.equal(y[1:], x[1:]) and not torch.equal(y[0], x[0])
    short = torch.randn(2, 2, int(0.4 * sr) - 1)
    assert torch.equal(ak.LoudnessNormalize(sr)(short), short)


def test_mono_2d_input_and_argument_checks():
    x = torch.randn(2, 8000) * 0.1
    y = ak.LoudnessNormalize(8000)(x)
    torch.testing.assert_close(y, ak.LoudnessNormalize(8000)(x[:, None])[:, 0])
    with pytest.raises(ValueError, match="sample_rate"):
        ak.LoudnessNormalize(0)
    with pytest.raises(ValueError, match="eps"):
        ak.Standardize(eps=0)
    with pytest.raises(ValueError, match="n_freq"):
        ak.FrequencyStandardize(0)
    with pytest.raises(ValueError, match="expects"):
        ak.MaxNormalize()(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="lengths"):
        ak.Standardize()(torch.zeros(2, 1, 3, 4), lengths=torch.tensor([1]))


def test_loudness_gradient_matches_finite_differences():
    sr = 4000
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(1, 1, 2000, generator=g, dtype=torch.float64) * 0.1).requires_grad_()
    w = torch.randn(1, 1, 2000, generator=g, dtype=torch.float64)
    d = torch.randn(1, 1, 2000, generator=g, dtype=torch.float64)
    m = ak.LoudnessNormalize(sr)
    (m(x) * w).sum().backward()
    h = 1e-6
    with torch.no_grad():
        fd = ((m(x + h * d) * w).sum() - (m(x - h * d) * w).sum()) / (2 * h)
    torch.testing.assert_close((x.grad * d).sum(), fd, rtol=1e-5, atol=1e-8)


# --- in a Compose: lengths through the frontend -----------------------------------------


@pytest.mark.parametrize("center", [True, False])
def test_frontend_frames_matches_its_output(center):
    fe = ak.MelFrontend(16000, n_fft=400, hop_length=160, n_mels=16, center=center)
    lengths = torch.tensor([400, 401, 559, 560, 1000, 1599, 1600, 4000])
    for n, f in zip(lengths.tolist(), fe.frames(lengths).tolist(), strict=True):
        assert fe(torch.randn(1, n)).shape[-1] == f == fe.num_frames(n), n
    if not center:
        assert fe.frames(torch.tensor([0, 399])).tolist() == [0, 0]


def test_compose_carries_lengths_to_the_normalisers():
    sr, hop = 16000, 160
    x = torch.randn(3, 1, sr, generator=torch.Generator().manual_seed(7)) * 0.1
    lengths = torch.tensor([sr, 9000, 7000])
    x = torch.where(ak.functional.valid_mask(x, lengths), x, 0.0)
    fe = ak.MelFrontend(sr, n_fft=512, hop_length=hop, n_mels=32, log=None)
    steps = [ak.LoudnessNormalize(sr), fe, ak.AmplitudeToDB(), ak.MaxNormalize(),
             ak.Standardize()]
    chain = ak.Compose(steps).eval()  # the normalisers run in eval() too
    y = chain(x, lengths=lengths)
    frames = fe.frames(lengths)
    manual = steps[0](x, lengths=lengths)
    manual = steps[2](fe(manual))
    manual = steps[4](steps[3](manual, lengths=frames), lengths=frames)
    torch.testing.assert_close(y, manual)
    assert (y[1, ..., int(frames[1]):] == 0).all()  # padded frames zeroed by Standardize
    # Without lengths the padding would count: the results differ.
    assert not torch.allclose(chain(x), y)


# --- CUDA: no host sync -----------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_normalisers_have_no_host_sync_on_cuda():
    sr = 16000
    x = torch.randn(4, 2, sr, device="cuda") * 0.1
    lengths = torch.tensor([sr, 9000, 3000, 7000], device="cuda")
    fs = ak.FrequencyStandardize(32).cuda()
    chain = ak.Compose([ak.LoudnessNormalize(sr), ak.Gain(),
                        ak.MelFrontend(sr, n_fft=512, hop_length=160, n_mels=32, log=None),
                        ak.AmplitudeToDB(), ak.MaxNormalize(), ak.Standardize(), fs]).cuda()
    spec = chain.steps["max_normalize"](chain.steps["amplitude_to_db"](
        chain.steps["mel_frontend"](x)))
    fs.fit(spec)  # warm-up: lazy CUDA init may sync
    chain(x, lengths=lengths)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        fs.fit(spec, lengths=lengths // 160 + 1)
        y = chain(x, lengths=lengths)
        F.integrated_loudness(x, sr, lengths)
        chain.eval()
        chain(x, lengths=lengths)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(y).all()
