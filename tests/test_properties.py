"""Property-based checks (hypothesis) over every exported transform, and no host syncs on CPU.

Shapes, batch sizes (1 included), float dtypes and ``p`` are drawn at random for
each registered transform and each of its ``cases``; the properties are the
library contract: finite output, shape and dtype kept (crops: the last axis is
the crop length), replay exact, ``p=0`` and ``eval()`` return the input, a
batched call equals per-item calls. The sync check runs every forward under a
dispatch mode that raises on the ATen ops that copy a value to the host
(``item``/``bool``/``int``/``float``, ``nonzero``, boolean-mask indexing,
``masked_select``), so CI without a GPU catches what
``torch.cuda.set_sync_debug_mode("error")`` would.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import augkit as ak
from augkit.transforms import _base, random_transforms

CASES = [pytest.param(cls, case, id=f"{name}-{i}")
         for name, cls in random_transforms().items() for i, case in enumerate(cls.cases)]
TOL = {torch.float32: 1e-5, torch.float64: 1e-9, torch.bfloat16: 2e-2}
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def draw_input(data, cls, case):
    batch = data.draw(st.integers(1, 4), label="batch")
    chans = data.draw(st.integers(1, 2), label="channels")
    lo = max(cls.min_length, case.get("shape", (1,))[-1] if "shape" in case else 1)
    if case["input"] == "wave":
        shape = (batch, chans, data.draw(st.integers(max(lo, 64), max(lo, 64) + 600), label="T"))
    else:
        shape = (batch, chans, data.draw(st.integers(4, 40), label="F"),
                 data.draw(st.integers(max(lo, 4), max(lo, 4) + 60), label="frames"))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
                      label="dtype")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) + 0.25).to(dtype)
    return x, seed


def expected_shape(case, x):
    if "shape" not in case:
        return x.shape
    return (*x.shape[: x.ndim - len(case["shape"])], *case["shape"])


@pytest.mark.parametrize("cls, case", CASES)
@SETTINGS
@given(data=st.data())
def test_contract_properties(cls, case, data):
    x, seed = draw_input(data, cls, case)
    p = data.draw(st.sampled_from([0.0, 0.3, 1.0]), label="p")
    t = cls(**case["kwargs"], p=p)
    g = torch.Generator().manual_seed(seed)
    y = t(x, generator=g)
    assert y.dtype == x.dtype and y.shape == expected_shape(case, x)
    assert torch.isfinite(y.float()).all()
    params = t.last_params
    assert torch.equal(t(x, params=params), y)  # replay is exact
    if p == 0.0 and "shape" not in case:
        assert torch.equal(y, x)
    if not cls.batch_params:  # per-item calls with each item's params
        items = torch.cat([t(x[i : i + 1], params={k: v[i : i + 1] for k, v in params.items()})
                           for i in range(x.shape[0])])
        tol = TOL[x.dtype]
        torch.testing.assert_close(items.float(), y.float(), rtol=tol, atol=tol)
    t.eval()
    assert t(x) is x



DRAWN_ONLY = [c for c in CASES if c.values[0].compute_drawn_only
              and not (c.values[0].uses_target or c.values[0].batch_params)]


@pytest.mark.parametrize("cls, case", DRAWN_ONLY)
def test_drawn_only_on_cpu_equals_the_whole_batch(cls, case, monkeypatch):
    """The CPU shortcut (compute the drawn examples only) gives what the GPU path gives:
    the whole batch computed with the gate (identity parameters, or the output
    selected); lengths and gradients included."""
    shape = (6, 2, 600) if case["input"] == "wave" else (6, 2, 32, 50)
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) + 0.25)
    t = cls(**case["kwargs"], p=0.5)
    lengths = (torch.tensor([600, 450, 31, 600, 0, 599])
               if t.uses_lengths and case["input"] == "wave" else None)
    params = t.generate_params(x.shape, x.device, torch.Generator().manual_seed(3))
    params["apply"] = torch.tensor([True, False, True, True, False, True])
    outs, grads = [], []
    for drawn_only in (True, False):
        monkeypatch.setattr(_base, "COMPUTE_DRAWN_ONLY", drawn_only)
        xx = x.clone().requires_grad_(True)
        y = t(xx, params=params, lengths=lengths)
        (y.float() * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
        outs.append(y.detach())
        grads.append(xx.grad)
    assert outs[0].dtype == outs[1].dtype == x.dtype
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-4)
    kept = ~params["apply"]
    assert torch.equal(outs[0][kept], x[kept])  # the examples not drawn: the input, exactly
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    monkeypatch.setattr(_base, "COMPUTE_DRAWN_ONLY", True)
    y, target = t(x, params=params, lengths=lengths, target=labels)  # targets pass through
    assert target is labels
    torch.testing.assert_close(y, outs[0], rtol=1e-5, atol=1e-5)


def test_drawn_only_computes_only_the_drawn_examples(monkeypatch):
    """The shortcut is taken: ``apply`` sees the drawn examples alone (CPU)."""
    seen = []
    t = ak.BitCrush(bit_depth=4, p=1.0)
    apply = t.apply
    monkeypatch.setattr(t, "apply", lambda x, params: seen.append(x.shape[0]) or apply(x, params))
    x = torch.rand(5, 1, 100)
    params = t.generate_params(x.shape)
    params["apply"] = torch.tensor([False, True, False, False, True])
    t(x, params=params)
    params["apply"][:] = True
    t(x, params=params)
    monkeypatch.setattr(_base, "COMPUTE_DRAWN_ONLY", False)
    t(x, params=params | {"apply": torch.tensor([False, True, False, False, True])})
    assert seen == [2, 5, 5]

class NoHostSync(TorchDispatchMode):
    """Raise on the ATen ops that copy a tensor's value to the host."""

    BANNED = {"_local_scalar_dense", "nonzero", "masked_select", "_assert_async"}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self.BANNED:
            raise AssertionError(f"host sync in a forward: aten.{name}")
        if name == "index" and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                                   for i in (args[1] if len(args) > 1 else [])):
            raise AssertionError("host sync in a forward: boolean-mask indexing")
        return func(*args, **(kwargs or {}))


def no_sync(fn):
    originals = {m: getattr(torch.Tensor, m) for m in ("tolist", "numpy")}

    def banned(*_a, **_k):
        raise AssertionError("host sync in a forward: tolist/numpy")

    for m in originals:
        setattr(torch.Tensor, m, banned)
    # the CPU-only shortcut reads the draws (free on the CPU): check the path a GPU takes
    drawn_only, _base.COMPUTE_DRAWN_ONLY = _base.COMPUTE_DRAWN_ONLY, False
    try:
        with NoHostSync():
            return fn()
    finally:
        _base.COMPUTE_DRAWN_ONLY = drawn_only
        for m, f in originals.items():
            setattr(torch.Tensor, m, f)


def test_the_sync_detector_catches_syncs():
    x = torch.randn(4, 3)
    for fn in (lambda: x.sum().item(), lambda: bool(x.sum() > 0), lambda: x[x > 0],
               lambda: x.nonzero(), lambda: float(x[0, 0]), lambda: x.tolist()):
        with pytest.raises(AssertionError, match="host sync"):
            no_sync(fn)
    no_sync(lambda: torch.where(x > 0, x, 0.0).sum())  # device-side selection is fine


@pytest.mark.parametrize("cls, case", CASES)
def test_forward_has_no_host_sync(cls, case):
    shape = (4, 2, 400) if case["input"] == "wave" else (4, 2, 32, 50)
    x = torch.rand(shape) + 0.25
    t = cls(**case["kwargs"], p=0.5)
    g = torch.Generator().manual_seed(0)
    no_sync(lambda: t(x, generator=g, lengths=torch.tensor([400, 300, 17, 400])
                      if t.uses_lengths and case["input"] == "wave" else None, check=False))
    no_sync(lambda: t(x, params=t.last_params, check=False))
    target = torch.tensor([0, 1, 2, 1])
    if t.uses_target:
        no_sync(lambda: t(x, generator=g, target=target, check=False))


def test_a_whole_chain_has_no_host_sync():
    chain = ak.Compose([ak.Gain(), ak.GaussianNoise(), ak.TimeShift(), ak.RandomCrop(12000),
                        ak.MelFrontend(16000, n_fft=512, hop_length=160, n_mels=64, log=None),
                        ak.AmplitudeToDB(), ak.TimeMasking(20), ak.FrequencyMasking(10),
                        ak.Mixup(num_classes=3)])
    x, y = torch.randn(4, 1, 16000), torch.tensor([0, 1, 2, 0])
    g = torch.Generator().manual_seed(0)
    no_sync(lambda: chain(x, target=y, generator=g, check=False))
    no_sync(lambda: chain(x, params=chain.last_params, target=y, check=False))


# --- the deterministic normalisers (plain modules, not random transforms) --------------

SR = 8000  # LoudnessNormalize: one 400 ms block is 3200 samples


def _fitted_frequency_standardize(n_freq):
    x = torch.randn(3, 1, n_freq, 30, generator=torch.Generator().manual_seed(5)) * 4 - 30
    return ak.FrequencyStandardize(n_freq).fit(x)


#: name -> (factory given F, input kind); "spec" is (B, C, F, T) in dB, "wave" (B, C, T).
NORMALIZERS = {
    "MaxNormalize": (lambda f: ak.MaxNormalize(), "spec"),
    "Standardize": (lambda f: ak.Standardize(), "spec"),
    "FrequencyStandardize": (_fitted_frequency_standardize, "spec"),
    "LoudnessNormalize": (lambda f: ak.LoudnessNormalize(SR, target_lufs=-20.0), "wave"),
}
NORM_TOL = {torch.float32: 1e-5, torch.float64: 1e-9}


def draw_norm_input(data, kind, dtype=None):
    batch = data.draw(st.integers(1, 4), label="batch")
    chans = data.draw(st.integers(1, 2), label="channels")
    if kind == "wave":  # 0.3 s (too short: unchanged) up to 0.7 s
        shape = (batch, chans, data.draw(st.integers(2400, 5600), label="T"))
    else:
        shape = (batch, chans, data.draw(st.integers(2, 24), label="F"),
                 data.draw(st.integers(2, 40), label="frames"))
    dtype = dtype or data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    level = torch.rand(batch, 1, *([1] * (len(shape) - 2)), generator=g)
    if kind == "wave":
        x = torch.randn(shape, generator=g) * (0.5 * level + 1e-3)
    else:
        x = torch.randn(shape, generator=g) * (10 * level + 1) - 40 * level
    return x.to(dtype)


def draw_lengths(data, x):
    lo = 1 if x.ndim == 4 else 2000
    return torch.tensor([data.draw(st.integers(lo, x.shape[-1]), label=f"len{i}")
                         for i in range(x.shape[0])])


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
@SETTINGS
@given(data=st.data())
def test_normalizer_properties(name, data):
    """Batch consistency, train() == eval(), dtype kept, finite; with and without lengths."""
    make, kind = NORMALIZERS[name]
    x = draw_norm_input(data, kind)
    m = make(x.shape[-2])
    lengths = draw_lengths(data, x) if data.draw(st.booleans(), label="lengths") else None
    y = m(x, lengths=lengths)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert torch.isfinite(y).all()
    m.eval()
    assert torch.equal(m(x, lengths=lengths), y)  # not an identity in eval()
    m.train()
    tol = NORM_TOL[x.dtype]
    for i in range(x.shape[0]):  # an example's output ignores the rest of the batch
        li = None if lengths is None else lengths[i : i + 1]
        torch.testing.assert_close(m(x[i : i + 1], lengths=li), y[i : i + 1],
                                   rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
@SETTINGS
@given(data=st.data())
def test_normalizer_padding_does_not_leak(name, data):
    """Whatever is beyond ``lengths`` never changes the valid part's result."""
    make, kind = NORMALIZERS[name]
    x = draw_norm_input(data, kind, torch.float64)
    m = make(x.shape[-2])
    lengths = draw_lengths(data, x)
    valid = ak.functional.valid_mask(x, lengths)
    junk = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype) * 50
    other = torch.where(valid, x, junk)
    y, y2 = m(x, lengths=lengths), m(other, lengths=lengths)
    torch.testing.assert_close(torch.where(valid, y, 0.0), torch.where(valid, y2, 0.0),
                               rtol=1e-9, atol=1e-9)
    for i in range(x.shape[0]):  # and equals the example cut to its valid part
        n = int(lengths[i])
        torch.testing.assert_close(m(x[i : i + 1, ..., :n]), y[i : i + 1, ..., :n],
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_examples_are_independent_and_differentiable(name):
    make, kind = NORMALIZERS[name]
    shape = (4, 2, SR // 2) if kind == "wave" else (4, 2, 12, 30)
    g = torch.Generator().manual_seed(3)
    scale = torch.tensor([1.0, 0.5, 0.1, 0.02]).reshape(4, *([1] * (len(shape) - 1)))
    x = (torch.randn(shape, generator=g) * scale).requires_grad_()
    m = make(shape[-2])
    y = m(x)
    stats = y.detach().flatten(1)
    # The examples differ in level; each is normalised on its own: same scale after.
    if name == "LoudnessNormalize":
        got = ak.functional.integrated_loudness(y.detach(), SR)
        torch.testing.assert_close(got, torch.full((4,), -20.0), atol=1e-3, rtol=0)
    elif name == "MaxNormalize":
        torch.testing.assert_close(stats.amax(1), torch.zeros(4))
    elif name == "Standardize":
        torch.testing.assert_close(stats.std(1, correction=0), torch.ones(4), atol=1e-4, rtol=0)
    else:  # fitted once: examples keep their different levels
        assert len({round(float(s), 3) for s in stats.std(1)}) == 4
    (y * torch.randn(shape, generator=g)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizer_has_no_host_sync(name):
    make, kind = NORMALIZERS[name]
    shape = (4, 2, SR // 2) if kind == "wave" else (4, 2, 12, 30)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    m = make(shape[-2])
    lengths = torch.tensor([shape[-1], shape[-1] - 1, 2, shape[-1] // 2])
    no_sync(lambda: m(x))
    no_sync(lambda: m(x, lengths=lengths))
    if name == "FrequencyStandardize":  # fitting is sync-free too
        no_sync(lambda: m.fit(x, lengths=lengths))


def test_a_normalising_chain_has_no_host_sync():
    chain = ak.Compose([ak.LoudnessNormalize(16000), ak.Gain(),
                        ak.MelFrontend(16000, n_fft=512, hop_length=160, n_mels=32, log=None),
                        ak.AmplitudeToDB(), ak.MaxNormalize(), ak.TimeMasking(20),
                        ak.Standardize()])
    x, lengths = torch.randn(4, 1, 8000), torch.tensor([8000, 7000, 1000, 6400])
    g = torch.Generator().manual_seed(0)
    no_sync(lambda: chain(x, generator=g, lengths=lengths, check=False))
