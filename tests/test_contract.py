"""The random-transform contract, checked for every exported transform.

The cases come from the registry (``augkit.transforms.random_transforms()``) and
each class's ``cases`` (data beside the transform), so a new transform is
tested here without editing this file.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from conftest import generator

import augkit as ak
from augkit.transforms import RandomTransform, random_transforms

INPUTS = {"wave": (4, 2, 400), "spec": (4, 2, 32, 50)}  # (B, C, T), (B, C, F, T)
CASES = [pytest.param(cls, case, id=f"{name}-{i}")
         for name, cls in random_transforms().items() for i, case in enumerate(cls.cases)]


def make(cls, case, p=1.0, device="cpu", batch=None):
    shape = INPUTS[case["input"]]
    if batch is not None:
        shape = (batch, *shape[1:])
    x = torch.rand(shape, generator=torch.Generator().manual_seed(11)) + 0.5
    return cls(**case["kwargs"], p=p).to(device), x.to(device)


def out_shape(case, x):
    return (*x.shape[: x.ndim - len(case.get("shape", ()))], *case.get("shape", ())
            ) if "shape" in case else x.shape


def per_example_equal(a, b):
    return (a == b).flatten(1).all(1)


def at_identity(t, params):
    """(B,) bool: every identity-gated parameter of the example is at its identity value."""
    out = torch.ones(params["apply"].shape, dtype=torch.bool, device=params["apply"].device)
    for k, v in t.identity.items():
        if k in params:
            out &= (params[k] == v).flatten(1).all(1) if params[k].ndim > 1 else params[k] == v
    return out


def test_every_transform_has_cases():
    assert set(random_transforms()) >= {"Gain", "GaussianNoise", "Mixup", "TimeMasking"}
    for name, cls in random_transforms().items():
        assert cls.cases, f"{name} declares no contract-test cases"


@pytest.mark.parametrize("name", sorted(random_transforms()))
def test_builds_with_no_arguments_or_says_why(name):
    cls = random_transforms()[name]
    required = [n for n, p in inspect.signature(cls).parameters.items()
                if p.default is inspect.Parameter.empty]
    for n in required:
        assert f"``{n}`` has no default" in (cls.__doc__ or ""), (name, n)
    if not required:
        assert isinstance(cls(), RandomTransform)


@pytest.mark.parametrize("cls, case", CASES)
def test_shape_dtype_device(cls, case, device):
    t, x = make(cls, case, device=device)
    y = t(x, generator=generator(device))
    assert y.device == x.device and y.dtype == x.dtype
    assert y.shape == out_shape(case, x)
    assert all(v.device.type == device.type for v in t.last_params.values())


@pytest.mark.parametrize("cls, case", CASES)
def test_batch_consistency(cls, case, device):
    """A batched call equals per-item calls given each item's slice of the params."""
    if cls.batch_params:
        pytest.skip(f"{cls.__name__} draws {cls.batch_params} for the batch as a whole")
    t, x = make(cls, case, p=0.5, device=device, batch=8)
    batched = t(x, generator=generator(device))
    params = t.last_params
    items = [t(x[i : i + 1], params={k: v[i : i + 1] for k, v in params.items()})
             for i in range(x.shape[0])]
    torch.testing.assert_close(batched, torch.cat(items), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls, case", CASES)
def test_per_example_independence(cls, case, device):
    """Identical inputs in one batch: parameters and outputs differ between examples."""
    t, x = make(cls, case, p=0.5, device=device)
    x = x[:1].expand(32, *x.shape[1:]).contiguous()
    y = t(x, generator=generator(device))
    for k, v in t.last_params.items():
        if k not in cls.batch_params:
            assert not (v == v[:1]).all(), f"{k} is the same for every example"
    if case.get("partner_only"):  # identical partners: nothing to see in the outputs
        return
    distinct = {tuple(y[i].flatten()[:2048].tolist()) for i in range(32)}
    assert len(distinct) > 1


@pytest.mark.parametrize("cls, case", CASES)
def test_same_on_batch_shares_every_per_example_parameter(cls, case):
    t, x = make(cls, case, p=0.5)
    t.same_on_batch = True
    x = x[:1].expand(8, *x.shape[1:]).contiguous()
    params = t.generate_params(x.shape, x.device, generator("cpu"))
    assert all(v.shape[0] == 8 for v in params.values())
    for k, v in params.items():
        if k not in cls.batch_params:
            assert (v == v[:1]).all(), k
    y = t(x, params=params)
    assert torch.equal(y, y[:1].expand_as(y))


@pytest.mark.parametrize("cls, case", CASES)
def test_examples_not_drawn_are_returned_exactly(cls, case, device):
    t, x = make(cls, case, p=0.5, device=device, batch=32)
    y = t(x, generator=generator(device))
    skipped = ~t.last_params["apply"]
    assert skipped.any() and (~skipped).any()
    expected = x
    if "shape" in case:  # a crop: examples not drawn get the centre crop
        length = case["shape"][-1]
        start = (x.shape[-1] - length + 1) // 2
        expected = x[..., start : start + length]
    assert per_example_equal(y, expected)[skipped].all()
    t.p = 0.0
    assert torch.equal(t(x, generator=generator(device)), expected)


@pytest.mark.parametrize("cls, case", CASES)
def test_p1_changes_what_it_should(cls, case):
    t, x = make(cls, case, p=1.0, batch=64)
    y = t(x, generator=generator("cpu"))
    assert bool(t.last_params["apply"].all())
    changes = case.get("changes", "unless_identity")
    if changes == "maybe":
        return
    changed = ~per_example_equal(y, x)
    if changes == "always":
        assert changed.all()
    else:  # exactly the examples whose drawn parameters are not all identity values
        assert torch.equal(changed, ~at_identity(t, t.last_params))
        assert changed.any()


@pytest.mark.parametrize("cls, case", CASES)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_empirical_rate_matches_p(cls, case, p):
    t, _ = make(cls, case, p=p)
    n = 4000
    shape = (n, *INPUTS[case["input"]][1:])
    rate = t.generate_params(shape, "cpu", generator("cpu", 3))["apply"].float().mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("cls, case", CASES)
def test_generator_reproducibility_and_replay(cls, case, device):
    t, x = make(cls, case, p=0.5, device=device, batch=16)
    a = t(x, generator=generator(device, 5))
    params = t.last_params
    assert torch.equal(t(x, generator=generator(device, 5)), a)
    assert not torch.equal(t(x, generator=generator(device, 6)), a)
    assert torch.equal(t(x, params=params), a)


@pytest.mark.parametrize("cls, case", CASES)
def test_eval_is_identity_and_targets_pass(cls, case):
    t, x = make(cls, case)
    t.eval()
    assert t(x) is x
    target = torch.arange(x.shape[0]) % 3
    y, soft = t(x, target=target)
    assert y is x
    if cls.uses_target:
        assert torch.equal(soft, torch.nn.functional.one_hot(target, 10).float())
    else:
        assert soft is target


@pytest.mark.parametrize("cls, case", CASES)
def test_targets_travel_with_the_batch(cls, case):
    t, x = make(cls, case)
    target = torch.arange(x.shape[0]) % 3
    y, out = t(x, target=target, generator=generator("cpu"))
    assert torch.equal(y, t(x, params=t.last_params))
    if cls.uses_target:
        assert out.shape == (x.shape[0], 10) and out.dtype == torch.float32
        torch.testing.assert_close(out.sum(1), torch.ones(x.shape[0]))
    else:
        assert out is target


@pytest.mark.parametrize("cls, case", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtype_is_kept(cls, case, dtype):
    t, x = make(cls, case)
    x = x.to(dtype)
    y = t(x, generator=generator("cpu"))
    assert y.dtype == dtype
    y32 = t(x.float(), params=t.last_params)
    tol = 1e-6 if dtype == torch.float64 else 5e-2
    torch.testing.assert_close(y.float(), y32, rtol=tol, atol=tol)


def test_generator_on_wrong_device_is_an_error():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    with pytest.raises(ValueError, match="generator"):
        ak.Gain()(torch.ones(2, 1, 8, device="cuda"), generator=torch.Generator())


def test_a_params_gated_transform_must_declare_identity_values():
    with pytest.raises(TypeError, match="identity"):
        type("Bad", (RandomTransform,), {"apply": lambda self, x, params: x})
    ok = type("Ok", (RandomTransform,), {"apply": lambda self, x, params: -x, "gate": "output"})
    assert torch.equal(ok(p=1.0)(torch.ones(1, 1, 2)), -torch.ones(1, 1, 2))


def test_the_readme_recipe_for_a_new_transform_works():
    """The README's one-file DCOffset example runs as written and follows the contract."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("# augkit/transforms/dc_offset.py")
    namespace = {"__name__": "augkit.transforms.dc_offset", "__package__": "augkit.transforms"}
    exec(compile(readme[start : readme.index("```", start)], "dc_offset.py", "exec"), namespace)
    cls = namespace["DCOffset"]
    (case,) = cls.cases
    t, x = make(cls, case, p=0.5, batch=32)
    y = t(x, generator=generator("cpu"))
    drawn = t.last_params["apply"]
    assert per_example_equal(y, x).tolist() == (~drawn).tolist()
    torch.testing.assert_close(y - x, t.last_params["offset"].view(-1, 1, 1).expand_as(x)
                               * drawn.view(-1, 1, 1))
