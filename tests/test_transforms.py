"""Each transform's maths (the shared contract is in test_contract.py)."""

from __future__ import annotations

import pytest
import torch
from conftest import generator

import augkit as ak
from augkit import functional as F

# --- each transform's maths -------------------------------------------------------------


def test_masks_are_bands_within_max_width():
    t = ak.TimeMasking(7, num_masks=1)
    x = torch.ones(200, 1, 5, 40)
    y = t(x, generator=generator("cpu"))
    masked = (y == 0).all(dim=2).squeeze(1)  # (B, T): whole columns zeroed
    assert torch.equal(masked, (y == 0).any(dim=2).squeeze(1))
    widths = masked.sum(1)
    assert widths.max() == 7 and widths.min() == 0
    starts, w = t.last_params["start"][:, 0], t.last_params["width"][:, 0]
    assert torch.equal(widths, w)
    pos = torch.arange(40)
    assert torch.equal(masked, (pos >= starts[:, None]) & (pos < (starts + w)[:, None]))
    assert (starts + w <= 40).all()
    f = ak.FrequencyMasking(3, value="mean")
    x = torch.rand(8, 1, 20, 30)
    y = f(x, generator=generator("cpu"))
    rows = (y != x).any(dim=-1).squeeze(1)  # (B, F)
    assert torch.equal(rows.sum(1), f.last_params["width"][:, 0])


def test_noise_reaches_the_requested_snr():
    t = ak.GaussianNoise(snr_db=(10, 10), p=1.0)
    x = torch.sin(torch.linspace(0, 2000, 16000)).repeat(32, 1, 1) * torch.rand(32, 1, 1)
    y = t(x, generator=generator("cpu"))
    noise = y - x
    snr = 10 * torch.log10(x.square().mean((1, 2)) / noise.square().mean((1, 2)))
    assert (snr - 10).abs().max() < 0.3
    silent = t(torch.zeros(2, 1, 100), generator=generator("cpu"))
    assert torch.equal(silent, torch.zeros(2, 1, 100))


def test_gain_domains():
    x = torch.full((3, 1, 4), 2.0)
    g = torch.tensor([6.0, -6.0, 0.0])
    params = {"apply": torch.tensor([True, True, False]), "gain_db": g}
    amp = ak.Gain(gain_db=(-6, 6))(x, params=params)
    torch.testing.assert_close(amp[:, 0, 0], 2 * torch.tensor([10 ** 0.3, 10 ** -0.3, 1.0]))
    pw = ak.Gain(gain_db=(-6, 6), domain="power")(x, params=params)
    torch.testing.assert_close(pw[:, 0, 0], 2 * torch.tensor([10 ** 0.6, 10 ** -0.6, 1.0]))
    db = ak.Gain(gain_db=(-6, 6), domain="db")(x, params=params)
    torch.testing.assert_close(db[:, 0, 0], torch.tensor([8.0, -4.0, 2.0]))


def test_crop_takes_the_drawn_window_and_pads_short_clips():
    x = torch.arange(100.0).repeat(6, 2, 1)
    t = ak.RandomCrop(30)
    y = t(x, generator=generator("cpu"))
    off = F.offsets_at(t.last_params["position"], 70)
    assert len(set(off.tolist())) > 1
    for i in range(6):
        torch.testing.assert_close(y[i], x[i, :, off[i] : off[i] + 30])
    short = t(torch.ones(2, 1, 10), generator=generator("cpu"))
    assert short.shape == (2, 1, 30) and short[..., :10].eq(1).all() and short[..., 10:].eq(0).all()
    spec = t(torch.rand(2, 1, 8, 64), generator=generator("cpu"))
    assert spec.shape == (2, 1, 8, 30)


def test_shift_is_a_per_example_roll():
    x = torch.randn(5, 2, 50)
    t = ak.TimeShift(20, p=1.0)
    y = t(x, generator=generator("cpu"))
    for i, s in enumerate(t.last_params["shift"].tolist()):
        torch.testing.assert_close(y[i], torch.roll(x[i], s, dims=-1))
    z = ak.TimeShift(20, rollover=False, p=1.0)(x, params=t.last_params)
    for i, s in enumerate(t.last_params["shift"].tolist()):
        ref = torch.roll(x[i], s, dims=-1)
        if s > 0:
            ref[:, :s] = 0
        elif s < 0:
            ref[:, s:] = 0
        torch.testing.assert_close(z[i], ref)


def test_polarity():
    x = torch.randn(4, 1, 10)
    params = {"apply": torch.tensor([True, False, True, False])}
    y = ak.PolarityInversion()(x, params=params)
    torch.testing.assert_close(y, x * torch.tensor([-1.0, 1, -1, 1]).view(4, 1, 1))


def test_mixup():
    t = ak.Mixup(alpha=0.4, num_classes=3)
    x = torch.randn(6, 1, 8, 8)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    y, soft = t(x, target=target, generator=generator("cpu"))
    lam, perm = t.last_params["lam"], t.last_params["perm"]
    onehot = torch.nn.functional.one_hot(target, 3).float()
    lv = lam.view(6, 1, 1, 1)
    torch.testing.assert_close(y, lv * x + (1 - lv) * x[perm])
    torch.testing.assert_close(soft, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm])
    torch.testing.assert_close(soft.sum(1), torch.ones(6))
    assert sorted(perm.tolist()) == list(range(6))
    t.eval()
    x2, soft2 = t(x, target=target)
    assert x2 is x and torch.equal(soft2, onehot)
    with pytest.raises(ValueError, match="num_classes"):
        ak.Mixup()(x, target=target)
    t.train()
    alone = t(x, params=t.last_params)  # no targets: the inputs alone are mixed
    torch.testing.assert_close(alone, y)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.5])
def test_beta_sampler_moments(alpha):
    s = F.beta(alpha, (200_000,), "cpu", generator("cpu"))
    assert 0 <= s.min() and s.max() <= 1
    assert abs(s.mean().item() - 0.5) < 0.01
    assert abs(s.var().item() - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_tutorial_recipe_is_expressible():
    """Noise std 0.01 and gain U(0.8, 1.2) on the power mel with p=0.5, masks up to 20."""
    recipe = ak.Compose([
        ak.MelFrontend(22050, n_fft=2048, hop_length=640, n_mels=128, log=None),
        ("noise", ak.GaussianNoise(std=0.01, p=0.5)),
        ("gain", ak.Gain(factor=(0.8, 1.2), p=0.5)),
        ("time_mask", ak.TimeMasking(20)),
        ("freq_mask", ak.FrequencyMasking(20)),
    ])
    y = recipe(torch.randn(8, 1, 22050), generator=generator("cpu"))
    assert y.shape == (8, 1, 128, 35)
    assert recipe.last_params["noise"]["std"].eq(0.01).all()
    f = recipe.last_params["gain"]["factor"]
    assert ((f >= 0.8) & (f <= 1.2)).all()


@pytest.mark.parametrize("factory, name", [
    (lambda: ak.TimeMasking(-1), "max_width"),
    (lambda: ak.TimeMasking(5, num_masks=0), "num_masks"),
    (lambda: ak.TimeMasking(5, value="median"), "value"),
    (lambda: ak.FrequencyMasking(5, p=1.5), "p"),
    (lambda: ak.GaussianNoise(snr_db=10, std=0.1), "one of snr_db or std"),
    (lambda: ak.GaussianNoise(snr_db=(30, 10)), "snr_db"),
    (lambda: ak.GaussianNoise(std=-0.1), "std"),
    (lambda: ak.Gain(gain_db=3, factor=2), "one of gain_db or factor"),
    (lambda: ak.Gain(gain_db=(True, 3)), "gain_db"),
    (lambda: ak.AmplitudeToDB(stype="energy"), "stype"),
    (lambda: ak.AmplitudeToDB(top_db=-1), "top_db"),
    (lambda: ak.Gain(factor=(-1, 1)), "factor"),
    (lambda: ak.Gain(gain_db=3, domain="loud"), "domain"),
    (lambda: ak.RandomCrop(0), "length"),
    (lambda: ak.TimeShift(1.5), "max_shift"),
    (lambda: ak.TimeShift(-3), "max_shift"),
    (lambda: ak.PolarityInversion(p=-0.1), "p"),
    (lambda: ak.Mixup(alpha=0), "alpha"),
    (lambda: ak.Mixup(num_classes=0), "num_classes"),
])
def test_invalid_arguments(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_wrong_input_rank_is_an_error():
    with pytest.raises(ValueError, match=r"TimeMasking expects .*\(B, C, F, T\)"):
        ak.TimeMasking(5)(torch.randn(10))


def test_amplitude_to_db_is_the_frontends_log_and_matches_torchaudio_per_example():
    import torchaudio

    x = torch.randn(3, 1, 8000, generator=torch.Generator().manual_seed(0))
    x[1] *= 1e-3  # a quiet clip keeps its own floor
    mel = ak.MelFrontend(8000, n_fft=256, hop_length=80, n_mels=40, log=None)(x)
    db = ak.AmplitudeToDB(top_db=80.0)(mel)
    short = ak.MelFrontend(8000, n_fft=256, hop_length=80, n_mels=40, log="db")(x)
    assert torch.equal(db, short)
    ref = torch.stack([torchaudio.transforms.AmplitudeToDB("power", top_db=80.0)(m)
                       for m in mel])
    torch.testing.assert_close(db, ref, rtol=0, atol=1e-4)
    scaled = ak.AmplitudeToDB(top_db=80.0, scale=1 / 20)(mel)
    torch.testing.assert_close(scaled, db / 20)
    mag = ak.AmplitudeToDB("magnitude", top_db=None)(torch.full((1, 1, 1, 1), 10.0))
    assert mag.item() == pytest.approx(20.0)


def test_crop_pads_past_each_valid_length_and_never_reads_the_next_row():
    x = torch.arange(2 * 3 * 10.0).view(2, 3, 10) + 1  # no zeros in the data
    off = torch.tensor([2, 7])
    y = F.crop(x, off, 6, lengths=torch.tensor([10, 8]))
    assert y.shape == (2, 3, 6)
    torch.testing.assert_close(y[0], x[0, :, 2:8])
    torch.testing.assert_close(y[1, :, :1], x[1, :, 7:8])  # sample 7 only: length 8
    assert (y[1, :, 1:] == 0).all()
    torch.testing.assert_close(F.crop(x, off, 6)[1, :, :3], x[1, :, 7:10])  # end of the row
    assert (F.crop(x, off, 6)[1, :, 3:] == 0).all()
    assert F.offsets_at(torch.tensor([0.0, 0.5, 1.0]), 10).tolist() == [0, 5, 10]
