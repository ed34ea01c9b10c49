"""Bad and unusual inputs to the library (issue 21): checked targets, lengths and
replayed params, empty batches, gradients, extreme levels, odd layouts.

Registry-wide tests take their cases from ``augkit.transforms.random_transforms()``
and each class's ``cases``, as ``tests/test_contract.py`` does. Every error is
one line naming the argument.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from test_contract import CASES, INPUTS, make

import augkit as ak
from augkit.functional.augment import signal_power, signal_rms

TARGET_CASES = [c for c in CASES if c.values[0].uses_target]
LENGTH_CASES = [c for c in CASES if c.values[0].uses_lengths]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def one_line_error(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


def batch(case, n: int) -> torch.Tensor:
    shape = INPUTS[case["input"]]
    return torch.rand((n, *shape[1:]), generator=gen(11)) + 0.5


# --- 1. targets --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [5, 3, -1])
def test_compose_refuses_a_class_index_out_of_range(bad):
    chain = ak.Compose([ak.Gain()], num_classes=3)
    x = torch.randn(4, 1, 800)
    with pytest.raises(ValueError) as e:
        chain(x, target=torch.tensor([0, 1, 2, bad]))
    text = one_line_error(e)
    assert f"class {bad}" in text and "num_classes=3" in text and "example 3" in text
    chain.eval()  # one-hot encoding happens in eval() too
    with pytest.raises(ValueError, match=f"class {bad}"):
        chain(x, target=torch.tensor([0, 1, 2, bad]))


@pytest.mark.parametrize("cls, case", TARGET_CASES)
@pytest.mark.parametrize("training", [True, False])
def test_target_steps_refuse_bad_targets(cls, case, training):
    t, x = make(cls, case)  # num_classes=10
    t.train(training)
    for bad in (10, -1):
        with pytest.raises(ValueError, match=f"{cls.__name__}: target holds class {bad} "
                                             r"\(example 1\), outside \[0, num_classes=10\)"):
            t(x, target=torch.tensor([0, bad, 2, 3]))
    with pytest.raises(ValueError) as e:  # soft targets with the wrong K: a shape check
        t(x, target=torch.full((4, 5), 0.2))
    assert "K=5" in one_line_error(e) and "num_classes=10" in str(e.value)
    with pytest.raises(ValueError, match="target has 3 rows but the batch has 4"):
        t(x, target=torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="class indices must be an integer tensor"):
        t(x, target=torch.tensor([0.0, 1.0, 2.0, 3.0]))


def test_unchecked_values_are_the_documented_escape():
    """check=False skips the value check (what CUDA does by default): an all-zero row."""
    x = torch.randn(4, 1, 80)
    _, soft = ak.Compose([ak.Gain()], num_classes=3)(x, target=torch.tensor([0, 1, 2, 5]),
                                                     check=False)
    assert soft.sum(1).tolist() == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_checks_values_only_when_asked():
    chain = ak.Compose([ak.Gain(), ak.Mixup(num_classes=3)]).cuda()
    x = torch.randn(4, 1, 800, device="cuda")
    bad = torch.tensor([0, 1, 2, 5], device="cuda")
    lengths = torch.tensor([800, -1, 800, 800], device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    chain(x, target=bad % 3, generator=g)  # warm-up: lazy CUDA init may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        chain(x, target=bad, lengths=lengths, generator=g)  # shapes only: no sync
    finally:
        torch.cuda.set_sync_debug_mode(0)
    with pytest.raises(ValueError, match="class 5"):
        chain(x, target=bad, check=True)
    with pytest.raises(ValueError, match="lengths must be >= 0"):
        chain(x, target=bad % 3, lengths=lengths, check=True)


@pytest.mark.parametrize("cls, case", CASES)
def test_check_false_reads_no_values(cls, case):
    """``check=False`` (what CUDA does by default) reads no value on the host, nested
    transforms (TrivialAugment's) included; the default reads CPU targets and lengths."""
    from test_properties import no_sync

    t, x = make(cls, case, p=0.5)
    lengths = torch.tensor([x.shape[-1], 7, 0, 3])
    target = torch.tensor([0, 1, 2, 1])
    no_sync(lambda: t(x, generator=gen(), lengths=lengths, check=False))
    no_sync(lambda: t(x, params=t.last_params, lengths=lengths, target=target, check=False))
    with pytest.raises(AssertionError, match="host sync"):
        no_sync(lambda: t(x, generator=gen(), lengths=lengths))


def test_compose_refuses_a_step_with_another_class_count():
    with pytest.raises(ValueError) as e:
        ak.Compose([ak.Mixup(num_classes=5)], num_classes=3)
    text = one_line_error(e)
    assert "num_classes=3" in text and "'mixup'" in text and "num_classes=5" in text
    with pytest.raises(ValueError, match="disagree on num_classes"):
        ak.Compose([ak.Mixup(num_classes=5), ak.CutMix(num_classes=3)])
    assert ak.Compose([ak.Mixup(num_classes=3)], num_classes=3).num_classes == 3
    assert ak.Compose([ak.Mixup(num_classes=4), ak.CutMix(num_classes=4)]).num_classes == 4


def test_targets_as_the_second_positional_argument_like_torchvision():
    """``Mixup(num_classes=K)(x, labels)`` -> ``(x, soft targets)``, as torchvision's MixUp."""
    x, labels = torch.randn(8, 1, 16, 20), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mix = ak.Mixup(num_classes=3)
    y, soft = mix(x, labels, gen())
    y2, soft2 = mix(x, target=labels, generator=gen())
    assert torch.equal(y, y2) and torch.equal(soft, soft2) and soft.shape == (8, 3)
    chain = ak.Compose([ak.Gain(), ak.Mixup(num_classes=3)])
    a, sa = chain(x, labels, gen())
    b, sb = chain(x, target=labels, generator=gen())
    assert torch.equal(a, b) and torch.equal(sa, sb)
    g, passed = ak.Gain(p=1.0)(x, labels)  # a step without targets passes them through
    assert passed is labels and g.shape == x.shape
    with pytest.raises(TypeError, match="got targets twice"):
        mix(x, labels, target=labels)
    with pytest.raises(ValueError, match="num_classes is needed"):
        ak.Mixup()(x, labels)


# --- lengths -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, case", CASES)
def test_every_transform_checks_lengths(cls, case):
    t, x = make(cls, case)
    name = cls.__name__
    with pytest.raises(ValueError) as e:
        t(x, lengths=torch.tensor([x.shape[-1], -5, 3, 3]))
    assert one_line_error(e) == f"{name}: lengths must be >= 0, got -5 for example 1"
    with pytest.raises(ValueError, match=rf"{name}: lengths must have shape \(B,\) = \(4,\)"):
        t(x, lengths=torch.full((5,), 3))
    with pytest.raises(TypeError, match=f"{name}: lengths must be an integer tensor"):
        t(x, lengths=torch.full((4,), 3.0))
    with pytest.raises(TypeError, match=f"{name}: lengths must be a"):
        t(x, lengths=[3, 3, 3, 3])
    with pytest.raises(ValueError, match=f"{name}: lengths are on meta but the input is on cpu"):
        t(x, lengths=torch.full((4,), 3, device="meta"))


@pytest.mark.parametrize("cls, case", LENGTH_CASES)
def test_lengths_above_t_count_as_t(cls, case):
    """Documented: a chain keeps clip lengths after a crop, so lengths > T mean T."""
    t, x = make(cls, case)
    a = t(x, generator=gen(), lengths=torch.full((4,), x.shape[-1]))
    b = t(x, params=t.last_params, lengths=torch.full((4,), 10 * x.shape[-1]))
    torch.testing.assert_close(a, b)


def test_compose_checks_lengths_once():
    chain = ak.Compose([ak.Gain(), ak.PeakNormalize(p=1.0)])
    with pytest.raises(ValueError, match="Compose: lengths must be >= 0, got -5 for example 0"):
        chain(torch.randn(2, 1, 80), lengths=torch.tensor([-5, 80]))


# --- 2. replayed params --------------------------------------------------------------------


@pytest.mark.parametrize("cls, case", CASES)
@pytest.mark.parametrize("drawn, replayed", [(1, 4), (4, 2)])
def test_replayed_params_must_match_the_batch_size(cls, case, drawn, replayed):
    t, _ = make(cls, case)
    t(batch(case, drawn), generator=gen())
    with pytest.raises(ValueError) as e:
        t(batch(case, replayed), params=t.last_params)
    text = one_line_error(e)
    assert text.startswith(f"{cls.__name__}: params were drawn for a batch of {drawn} ")
    assert f"the input has {replayed} examples" in text


@pytest.mark.parametrize("cls, case", CASES)
def test_replayed_params_must_hold_this_transforms_keys(cls, case):
    t, x = make(cls, case)
    t(x, generator=gen())
    params = dict(t.last_params)
    for key in params:  # "apply" too: every transform has it
        missing = {k: v for k, v in params.items() if k != key}
        with pytest.raises(ValueError, match=rf"{cls.__name__}: params do not match .*"
                                             rf"missing \['{key}'\]"):
            t(x, params=missing)
    fresh, _ = make(cls, case)  # a new instance learns the keys from a draw of its own
    with pytest.raises(ValueError, match=r"unknown \['gian_db'\]"):
        fresh(x, params={**params, "gian_db": params["apply"]})
    with pytest.raises(TypeError, match="params must be a dict"):
        t(x, params=[params])


def test_compose_refuses_params_for_an_unknown_step():
    chain = ak.Compose([ak.Gain(), ak.TimeShift()])
    x = torch.randn(2, 1, 80)
    chain(x, generator=gen())
    with pytest.raises(ValueError, match=r"Compose: params name unknown step\(s\) \['gian'\]; "
                                         r"steps are \['gain', 'time_shift'\]"):
        chain(x, params={"gian": chain.last_params["gain"]})
    with pytest.raises(ValueError, match="Gain: params do not match"):
        chain(x, params={"gain": {"apply": chain.last_params["gain"]["apply"]}})


def test_compose_step_names_are_checked():
    for bad in ("a.b", "", 3):
        with pytest.raises(ValueError, match="Compose step name .* must be a non-empty string"):
            ak.Compose([(bad, ak.Gain())])


# --- 3. empty batches -----------------------------------------------------------------------


@pytest.mark.parametrize("cls, case", CASES)
def test_empty_batch_gives_an_empty_batch(cls, case):
    t, x = make(cls, case, p=1.0)
    full = t(x, generator=gen())
    empty = x[:0]
    if cls.uses_target:
        y, soft = t(empty, target=torch.zeros(0, dtype=torch.long))
        assert soft.shape == (0, 10)
    else:
        y = t(empty)
    assert y.shape == (0, *full.shape[1:]) and y.dtype == x.dtype
    assert all(v.shape[0] == 0 for v in t.last_params.values())
    xg = empty.clone().requires_grad_(True)
    out = t(xg)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()
    assert xg.grad is not None and xg.grad.shape == empty.shape


def test_mel_frontend_gives_an_empty_batch_of_its_output_shape():
    mel = ak.MelFrontend(8000, n_fft=256, hop_length=128, n_mels=32)
    assert mel(torch.zeros(0, 2, 1000)).shape == (0, *mel(torch.zeros(1, 2, 1000)).shape[1:])
    chain = ak.Compose([ak.Gain(), mel, ak.TimeMasking(4)])
    assert chain(torch.zeros(0, 1, 1000)).shape == (0, 1, 32, 8)


def test_empty_batch_through_compose_keeps_shapes():
    chain = ak.Compose([ak.Gain(), ak.GaussianNoise(), ak.RandomCrop(400),
                        ak.PitchShift(sample_rate=8000), ak.Mixup(num_classes=3)])
    y, soft = chain(torch.zeros(0, 2, 800), target=torch.zeros(0, dtype=torch.long),
                    lengths=torch.zeros(0, dtype=torch.long), generator=gen())
    assert y.shape == (0, 2, 400) and soft.shape == (0, 3)
    assert signal_power(torch.zeros(0, 1, 8)).shape == (0,)  # the regression of 0.2


# --- 4. gradients ---------------------------------------------------------------------------

#: Transforms whose output does not depend differentiably on the input: their
#: gradient is zero almost everywhere (not an error), documented here.
ZERO_GRADIENT = {
    "BitCrush": "a quantiser: piecewise constant in x",
    "MuLaw": "a quantiser: piecewise constant in x",
}


@pytest.mark.parametrize("cls, case", CASES)
def test_every_transform_passes_gradients_to_its_input(cls, case):
    t, x = make(cls, case, p=1.0, batch=16)  # 16: some examples keep signal (DropChunk)
    x = x.double().requires_grad_(True)
    y = t(x, generator=gen())
    weights = torch.randn(y.shape, generator=gen(3), dtype=y.dtype)
    (y * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if cls.__name__ in ZERO_GRADIENT:
        assert not x.grad.any()
    else:
        assert x.grad.abs().sum() > 0
    with torch.no_grad():  # the differentiable path computes the same values
        torch.testing.assert_close(t(x.detach(), params=t.last_params), y.detach())


LINEAR = {
    "LowPassFilter": lambda: ak.LowPassFilter(sample_rate=16000, p=1.0),
    "HighPassFilter": lambda: ak.HighPassFilter(sample_rate=16000, p=1.0),
    "BandPassFilter": lambda: ak.BandPassFilter(sample_rate=16000, p=1.0),
    "BandStopFilter": lambda: ak.BandStopFilter(sample_rate=16000, p=1.0),
    "PitchShift": lambda: ak.PitchShift(sample_rate=2000, p=1.0),  # n_fft 64
    "TimeStretch": lambda: ak.TimeStretch(n_fft=32, p=1.0),
    "Speed": lambda: ak.Speed(p=1.0),
    "BandLimit": lambda: ak.BandLimit(sample_rate=16000, p=1.0),
}


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_gradcheck_with_replayed_params(name):
    """With the params fixed, these are smooth in x: autograd matches finite differences."""
    t = LINEAR[name]()
    x = torch.randn(2, 1, 40, dtype=torch.float64, generator=gen(1))
    t(x, generator=gen(2))
    params = t.last_params
    assert torch.autograd.gradcheck(lambda v: t(v, params=params), (x.requires_grad_(True),),
                                    eps=1e-6, atol=1e-5, rtol=1e-4)


# --- 5. extreme inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("make_noise", [
    lambda: ak.GaussianNoise(snr_db=(5, 15), p=1.0),
    lambda: ak.ColoredNoise(snr_db=(5, 15), p=1.0),
    lambda: ak.BackgroundNoise(torch.randn(3, 4000, generator=gen(5)), snr_db=(5, 15), p=1.0),
], ids=["gaussian", "colored", "background"])
@pytest.mark.parametrize("level, dtype", [(1e15, torch.float32), (1e30, torch.float64)])
def test_noise_at_an_snr_on_huge_inputs_stays_finite_and_at_its_snr(make_noise, level, dtype):
    """Levels are compared as RMS values, never as powers (float32 overflows at 1e19):
    finite for float32 input up to about 1e19 / sqrt(samples per example) and float64 of
    any level (documented in ``augkit.functional.signal_rms``)."""
    t = make_noise()
    x = (level * torch.randn(3, 2, 2000, generator=gen(7), dtype=torch.float64)).to(dtype)
    y = t(x, generator=gen())
    assert torch.isfinite(y).all()
    n = (y.double() - x.double())
    snr = 10 * torch.log10(x.double().square().sum((1, 2)) / n.square().sum((1, 2)))
    torch.testing.assert_close(snr, t.last_params["snr_db"].double(), atol=0.05, rtol=0)


def test_signal_rms_is_the_level_without_squaring_it():
    x = torch.randn(2, 1, 4000, generator=gen(2), dtype=torch.float64)
    lengths = torch.tensor([1000, 4000])
    keep = torch.arange(4000) < lengths.view(-1, 1, 1)
    for scale, dtype in ((1e-3, torch.float32), (1.0, torch.float32), (1e15, torch.float32),
                         (1e30, torch.float64)):
        v = (scale * x).to(dtype)
        torch.testing.assert_close(signal_rms(v).double(), (scale * x).square().mean((1, 2))
                                   .sqrt(), rtol=1e-5, atol=0)
        want = ((scale * x) * keep).square().sum((1, 2)).div(lengths).sqrt()
        torch.testing.assert_close(signal_rms(v, lengths).double(), want, rtol=1e-5, atol=0)


def test_band_edges_above_nyquist_are_refused_at_construction():
    """Like cutoffs above Nyquist (L21): the band drawn would not be the one asked for."""
    with pytest.raises(ValueError, match="sample_rate / 2"):
        ak.BandPassFilter((3000, 3900), (1.5, 1.9), sample_rate=8000)


# --- odd layouts ------------------------------------------------------------------------------


def test_channels_last_audio_gets_a_warning():
    with pytest.warns(UserWarning, match=r"TimeShift got shape \(4, 8000, 2\).*transpose"):
        ak.TimeShift(p=1.0)(torch.randn(4, 8000, 2))
    with pytest.warns(UserWarning, match="TimeMasking got shape"):
        ak.TimeMasking(2, p=1.0)(torch.randn(2, 50, 64, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ak.TimeShift(p=1.0)(torch.randn(2, 1, 1))  # a 1-sample clip is not a layout error
        ak.Gain(p=1.0)(torch.randn(2, 128, 50))  # nor a 3-D mel batch
