"""Compose: naming, switching steps off, replay, torch.compile, and no host syncs."""

from __future__ import annotations

import pytest
import torch
from conftest import generator

import augkit as ak


def chain(sample_rate=16000):
    return ak.Compose([
        ak.Gain(gain_db=(-6, 6)),
        ak.GaussianNoise(snr_db=(10, 30)),
        ak.TimeShift(0.1),
        ak.PolarityInversion(),
        ak.RandomCrop(12000),
        ak.MelFrontend(sample_rate, n_fft=512, hop_length=160, n_mels=64, log=None),
        ak.GaussianNoise(std=(0.0, 0.01)),
        ak.AmplitudeToDB(top_db=80.0, scale=1 / 20),
        ak.TimeMasking(20, num_masks=2, value="mean"),
        ak.FrequencyMasking(10),
        ("spec_gain", ak.Gain(gain_db=(-3, 3), domain="db")),
        ak.Mixup(num_classes=10),
    ])


def test_names_and_lookup():
    c = chain()
    assert c.names == ["gain", "gaussian_noise", "time_shift", "polarity_inversion",
                       "random_crop", "mel_frontend", "gaussian_noise_2", "amplitude_to_db",
                       "time_masking", "frequency_masking", "spec_gain", "mixup"]
    assert c.num_classes == 10  # from the Mixup step
    assert isinstance(c["time_masking"], ak.TimeMasking)
    auto = ak.Compose([ak.Gain(factor=1.0), ak.Gain(factor=2.0)])
    assert auto.names == ["gain", "gain_2"]
    named = ak.Compose({"a": ak.PolarityInversion(), "b": ak.TimeShift(3)})
    assert named.names == ["a", "b"]


def test_disable_and_enable_by_name():
    c = ak.Compose([("flip", ak.PolarityInversion(p=1.0)), ("gain", ak.Gain(factor=2.0, p=1.0))])
    x = torch.ones(2, 1, 4)
    assert torch.equal(c(x), -2 * x)
    c.disable("flip")
    assert torch.equal(c(x), 2 * x)
    assert list(c.last_params) == ["gain"]
    c.enable("flip").disable("gain")
    assert torch.equal(c(x), -x)
    assert torch.equal(ak.Compose(c.steps.items(), disabled=["flip", "gain"])(x), x)
    with pytest.raises(ValueError, match="unknown Compose step.*'nosie'"):
        c.disable("nosie")


def test_bad_steps():
    with pytest.raises(ValueError, match="nn.Modules"):
        ak.Compose([lambda x: x])
    with pytest.raises(ValueError, match="used twice"):
        ak.Compose([("a", ak.PolarityInversion()), ("a", ak.PolarityInversion())])


def test_replay_and_eval(device):
    c = chain().to(device)
    x = torch.randn(4, 1, 16000, generator=torch.Generator().manual_seed(0)).to(device)
    y = torch.tensor([0, 1, 2, 3], device=device)
    a, soft = c(x, target=y, generator=generator(device))
    params = c.last_params
    assert set(params) == set(c.names) - {"mel_frontend", "amplitude_to_db"}
    assert soft.shape == (4, 10) and soft.dtype == torch.float32
    torch.testing.assert_close(soft.sum(1), torch.ones(4, device=device))
    a2, soft2 = c(x, params=params, target=y)
    assert torch.equal(a2, a) and torch.equal(soft2, soft)
    assert torch.equal(c(x, params=params), a)  # without targets: the same inputs
    c.eval()
    plain = c["amplitude_to_db"](c["mel_frontend"](x))
    assert torch.equal(c(x), plain)  # only the deterministic steps run
    e, hard = c(x, target=y)
    assert torch.equal(e, plain)
    assert torch.equal(hard, torch.nn.functional.one_hot(y, 10).float())


def test_targets_need_a_class_count():
    c = ak.Compose([ak.Gain()])
    with pytest.raises(ValueError, match="num_classes"):
        c(torch.ones(2, 1, 8), target=torch.tensor([0, 1]))
    x, soft = c(torch.ones(2, 1, 8), target=torch.tensor([[0.25, 0.75], [1.0, 0.0]]))
    assert soft.tolist() == [[0.25, 0.75], [1.0, 0.0]]
    _, onehot = ak.Compose([ak.Gain()], num_classes=3)(torch.ones(2, 1, 8),
                                                        target=torch.tensor([2, 0]))
    assert onehot.tolist() == [[0, 0, 1], [1, 0, 0]]


@pytest.mark.slow
def test_compile_fullgraph_matches_eager():
    """Replaying given params compiles as one graph, Mixup's permutation included."""
    c = chain()
    x = torch.randn(4, 1, 16000, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3])
    eager, soft = c(x, target=y, generator=generator("cpu"))
    params = c.last_params
    compiled = torch.compile(c, fullgraph=True)
    got, got_soft = compiled(x, params=params, target=y)
    torch.testing.assert_close(got, eager, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got_soft, soft)
    fresh, _ = compiled(x, target=y)  # draws its own parameters inside the graph
    assert fresh.shape == eager.shape and torch.isfinite(fresh).all()
    assert set(c.last_params) == set(params)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_whole_chain_has_no_host_sync_on_cuda():
    c = chain().cuda()
    x = torch.randn(8, 1, 16000, device="cuda")
    y = torch.randint(0, 10, (8,), device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    c(x, target=y, generator=g)  # warm-up: lazy CUDA init may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        c(x, target=y, generator=g)
        c(x, params=c.last_params, target=y)
        c.eval()
        c(x, target=y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
