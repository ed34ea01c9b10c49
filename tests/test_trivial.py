"""TrivialAugment / RandAugment for audio: the choice of ops, and the ``trivial`` arm.

The contract (replay, gating, no host syncs, ...) is checked for it with every
other transform from its ``cases`` (test_contract.py, test_properties.py); here:
that each example gets exactly its ops, chosen uniformly and independently.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import generator

import augkit as ak
from experiments import config as C
from experiments.arms import build_arm, expand_arms
from experiments.augmentations import TRIVIAL_OPS

# Deterministic ops whose products identify the subset an example got: the sign
# says polarity, the magnitude 2^a 3^b 5^c the three gains.
FACTORS = (-1.0, 2.0, 3.0, 5.0)


def exact_ops():
    return [ak.PolarityInversion(), ak.Gain(factor=2.0), ak.Gain(factor=3.0),
            ak.Gain(factor=5.0)]


def decode(y: torch.Tensor) -> torch.Tensor:
    """(B, 4) bool: which of the four ops changed each example (input all ones)."""
    v = y[:, 0, 0]
    combos = {math.prod(f for f, on in zip(FACTORS, bits, strict=True) if on): bits
              for bits in itertools.product([False, True], repeat=4)}
    assert len(combos) == 16
    rows = []
    for value in v.tolist():
        (bits,) = [b for c, b in combos.items() if math.isclose(value, c, rel_tol=1e-6)]
        rows.append(bits)
    return torch.tensor(rows)


@pytest.mark.parametrize("num_ops", [1, 2, 3, 4])
def test_each_example_gets_exactly_num_ops_ops(num_ops):
    aug = ak.TrivialAugment(exact_ops(), num_ops=num_ops)
    x = torch.ones(256, 1, 8)
    y = aug(x, generator=generator("cpu"))
    got = decode(y)
    assert (got.sum(1) == num_ops).all()
    assert torch.equal(got, aug.last_params["ops"])  # the params say what happened
    assert torch.equal(y, y[..., :1].expand_as(y))  # an example's samples move together
    assert aug.names == ["polarity_inversion", "gain", "gain_2", "gain_3"]


def test_a_num_ops_range_draws_the_count_per_example():
    aug = ak.TrivialAugment(exact_ops(), num_ops=(0, 2))
    y = aug(torch.ones(3000, 1, 4), generator=generator("cpu", 1))
    counts = decode(y).sum(1)
    assert torch.equal(counts, aug.last_params["ops"].sum(1))
    freq = torch.bincount(counts, minlength=5).float() / 3000
    tol = 4 * math.sqrt(1 / 3 * 2 / 3 / 3000)  # 4 sigma of a binomial proportion
    assert freq[3:].sum() == 0
    assert ((freq[:3] - 1 / 3).abs() < tol).all(), freq
    # no op leaves the example exactly as it was (its gate, not an approximate identity)
    x = torch.randn(3000, 1, 4)
    y = aug(x, generator=generator("cpu", 1))
    assert torch.equal(y[counts == 0], x[counts == 0])


@pytest.mark.parametrize("num_ops", [1, 2])
def test_choices_are_uniform_over_ops_and_subsets(num_ops):
    """Each op in num_ops / K of the examples, each subset in 1 / C(K, num_ops): 4 sigma."""
    n = 6000
    aug = ak.TrivialAugment(exact_ops(), num_ops=num_ops)
    ops = aug.generate_params((n, 1, 4), "cpu", generator("cpu", 2))["ops"]
    rate, p = ops.float().mean(0), num_ops / 4
    assert ((rate - p).abs() < 4 * math.sqrt(p * (1 - p) / n)).all(), rate
    codes = (ops.long() * torch.tensor([1, 2, 4, 8])).sum(1)
    subsets = torch.bincount(codes, minlength=16)[codes.unique()].float() / n
    q = 1 / math.comb(4, num_ops)
    assert len(subsets) == math.comb(4, num_ops)
    assert ((subsets - q).abs() < 4 * math.sqrt(q * (1 - q) / n)).all(), subsets


def test_examples_choose_independently():
    """Identical inputs: choices and magnitudes differ; neighbours agree at chance rate."""
    n = 4000
    aug = ak.TrivialAugment([ak.Gain(), ak.GaussianNoise(), ak.PolarityInversion()])
    x = torch.ones(1, 1, 16).expand(n, 1, 16).contiguous()
    y = aug(x, generator=generator("cpu", 3))
    params = aug.last_params
    which = params["ops"].long().argmax(1)
    same = (which[1:] == which[:-1]).float().mean()
    assert abs(same - 1 / 3) < 4 * math.sqrt(2 / 9 / n)
    assert params["gain.gain_db"].unique().numel() == n
    drawn = ~params["ops"][:, 2]  # gain or noise: every output its own (polarity: all -1)
    assert len({tuple(r) for r in y[drawn, 0].tolist()}) == int(drawn.sum()) > n / 2
    # the choice does not depend on a magnitude drawn for the same example
    gain_chosen = params["ops"][:, 0]
    assert abs(params["gain.gain_db"][gain_chosen].mean()) < 1.0


def test_sub_transforms_own_p_is_not_used_and_they_are_submodules():
    gain = ak.Gain(factor=2.0, p=0.0)
    aug = ak.TrivialAugment({"g": gain, "pol": ak.PolarityInversion(p=0.0)}, num_ops=2)
    assert torch.equal(aug(torch.ones(3, 1, 2)), -2 * torch.ones(3, 1, 2))
    assert aug["g"] is gain and dict(aug.named_children())["transforms"]["g"] is gain
    aug.eval()
    assert not gain.training
    aug.train()
    assert gain.training


def test_replay_seeding_and_eval(device):
    aug = ak.TrivialAugment([ak.Gain(), ak.GaussianNoise(), ak.TimeShift(), ak.PolarityInversion()],
                            num_ops=(1, 3), p=0.8).to(device)
    x = torch.randn(16, 2, 100, device=device)
    y = aug(x, generator=generator(device, 7))
    params = aug.last_params
    assert all(v.shape[0] == 16 and v.device.type == device.type for v in params.values())
    assert torch.equal(aug(x, params=params), y)
    assert torch.equal(aug(x, generator=generator(device, 7)), y)
    assert not torch.equal(aug(x, generator=generator(device, 8)), y)
    # replay through a Compose too
    chain = ak.Compose([("aug", aug)])
    z = chain(x, generator=generator(device, 9))
    assert torch.equal(chain(x, params=chain.last_params), z)
    aug.eval()
    assert aug(x) is x


def test_p_gates_the_whole_choice_and_same_on_batch_shares_it():
    aug = ak.TrivialAugment(exact_ops(), num_ops=2, p=0.5)
    x = torch.ones(64, 1, 4)
    y = aug(x, generator=generator("cpu", 4))
    drawn = aug.last_params["apply"]
    assert drawn.any() and (~drawn).any()
    assert torch.equal(decode(y).sum(1), 2 * drawn.long())
    aug.same_on_batch, aug.p = True, 1.0
    y = aug(x, generator=generator("cpu", 5))
    assert torch.equal(y, y[:1].expand_as(y)) and decode(y)[0].sum() == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_kept(dtype):
    aug = ak.TrivialAugment([ak.Gain(), ak.ColoredNoise(), ak.LowPassFilter(sample_rate=16000)],
                            num_ops=2)
    x = torch.randn(8, 1, 400, dtype=dtype)
    y = aug(x, generator=generator("cpu"))
    assert y.dtype == dtype
    y32 = aug(x.float(), params=aug.last_params)
    torch.testing.assert_close(y.float(), y32, rtol=1e-4, atol=1e-5)


def test_spectrogram_steps():
    aug = ak.TrivialAugment([ak.TimeMasking(10), ak.FrequencyMasking(5), ak.Gain(domain="db")])
    assert aug.ndims == (3, 4) and "spectrogram" in aug.expects
    assert aug(torch.rand(4, 1, 32, 50)).shape == (4, 1, 32, 50)
    with pytest.raises(ValueError, match="expects"):
        ak.TrivialAugment([ak.LowPassFilter(sample_rate=16000)])(torch.rand(4, 1, 32, 50))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(transforms=[]), ValueError, "transforms must hold at least one"),
    (dict(transforms=ak.Gain()), TypeError, "transforms must be a list"),
    (dict(transforms=[ak.Gain(), torch.nn.Identity()]), TypeError,
     r"transforms\[1\] must be an augkit RandomTransform, got Identity"),
    (dict(transforms=[ak.Gain(), ak.Mixup()]), ValueError, r"transforms\[1\] \(Mixup\)"),
    (dict(transforms=[ak.LowPassFilter(sample_rate=16000), ak.TimeMasking(5)]), ValueError,
     "transforms mixes waveform steps"),
    (dict(transforms=[("a.b", ak.Gain())]), ValueError, "without '.'"),
    (dict(transforms=[("g", ak.Gain()), ("g", ak.Gain())]), ValueError, "used twice"),
    (dict(transforms=[ak.Gain()], num_ops=2), ValueError, r"num_ops .* = 1, got 2"),
    (dict(transforms=[ak.Gain()], num_ops=(1, 0)), ValueError, "num_ops"),
    (dict(transforms=[ak.Gain()], num_ops=1.0), ValueError, "num_ops"),
    (dict(transforms=[ak.Gain()], num_ops=-1), ValueError, "num_ops"),
    (dict(transforms=[ak.Gain()], p=2.0), ValueError, "p must be a probability"),
])
def test_bad_arguments_are_one_line_errors(kwargs, error, message):
    with pytest.raises(error, match=message) as e:
        ak.TrivialAugment(**kwargs)
    assert "\n" not in str(e.value)


# --- the `trivial` ablation arm ------------------------------------------------------------

@pytest.mark.parametrize("sample_rate", [8000, 16000])
def test_trivial_arm_builds_and_runs(sample_rate):
    frontend = C.FrontendConfig(sample_rate=sample_rate, n_fft=512, hop_length=160, n_mels=64)
    chain = build_arm("trivial", frontend, C.AblationConfig(), 3).chain
    assert chain.names == ["trivial", "mel", "scale"]
    aug = chain["trivial"]
    assert isinstance(aug, ak.TrivialAugment) and aug.names == list(TRIVIAL_OPS)
    assert aug.num_ops == (1, 1) and aug.p == 1.0
    assert all(t.p == 1.0 for t in aug.transforms.values())
    assert max(aug["lowpass"].cutoff_hz) <= 0.45 * sample_rate  # capped below Nyquist
    assert aug["reverb"].irs.shape[0] == 32  # the generated bank
    x = chain(torch.randn(4, 1, 8000), generator=generator("cpu"))
    assert x.shape == (4, 1, 64, 51) and torch.isfinite(x).all()
    assert (chain.last_params["trivial"]["ops"].sum(1) == 1).all()


def test_trivial_arm_settings_through_the_config():
    cfg = C.resolve("quick", overrides={"augment.trivial.num_ops": "2",
                                        "augment.trivial.ops": "gain,noise,reverb"})
    assert cfg.ablation.augment["trivial"] == {"num_ops": 2, "ops": "gain,noise,reverb"}
    aug = build_arm("trivial", cfg.frontend, cfg.ablation, 3).chain["trivial"]
    assert aug.num_ops == (2, 2) and aug.names == ["gain", "noise", "reverb"]
    cfg = C.resolve("quick", overrides={"augment.trivial.num_ops": "[1, 3]",
                                        "augment.trivial.ops": '["gain", "speed", "shift"]'})
    aug = build_arm("trivial", cfg.frontend, cfg.ablation, 3).chain["trivial"]
    assert aug.num_ops == (1, 3) and aug.names == ["gain", "speed", "shift"]
    with pytest.raises(ValueError, match=r"augment.trivial: ops \['time_mask'\]"):
        C.resolve("quick", overrides={"augment.trivial.ops": "gain,time_mask"})
    with pytest.raises(ValueError, match="augment.trivial: num_ops"):
        C.resolve("quick", overrides={"augment.trivial.num_ops": "11"})


def test_trivial_ops_take_the_runs_settings():
    """``augment.gain.gain_db`` sets the gain arm and trivial's gain op alike (``p`` stays 1)."""
    cfg = C.resolve("quick", overrides={"augment.gain.gain_db": "[-30, 6]",
                                        "augment.gain.p": "0.2",
                                        "augment.trivial.ops": "gain,reverb"})
    chain = build_arm("gain+trivial", cfg.frontend, cfg.ablation, 3).chain
    assert chain["gain"].gain_db == (-30.0, 6.0) and chain["gain"].p == 0.2
    assert chain["trivial"]["gain"].gain_db == (-30.0, 6.0) and chain["trivial"]["gain"].p == 1.0


def test_default_arms_include_trivial_once_after_all():
    augs = ["time_mask", "noise", "gain"]
    arms = expand_arms(["default"], augs)
    assert arms.count("trivial") == 1 and arms.index("trivial") == arms.index("all") + 1
    assert arms == ["baseline", *augs, "all", "trivial", *[f"all-minus-{a}" for a in augs]]
    assert expand_arms(["trivial", "default"], augs).count("trivial") == 1
