"""No host syncs on CUDA: every transform, the frontend and the full chain.

Each case runs once to warm up (lazy CUDA initialisation and cuFFT plans may sync),
then again under ``torch.cuda.set_sync_debug_mode("error")``, which turns a
synchronising call (``.item()``, boolean-mask indexing, ``nonzero``, a host copy) into
an error: drawing, applying, replaying given params and ``eval()``. The cases are the
GPU benchmark matrix's (``benchmarks/gpu_cases.py``, realistic settings) and every
contract case of each transform. ``make gpu-check`` runs these (``pytest -m cuda``);
without a CUDA device they skip.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

import augkit as ak
from augkit.transforms import random_transforms
from benchmarks import gpu_cases as gc

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DEVICE = "cuda"
SR = 16000
WAVE, SPEC = (4, 2, SR), (4, 2, 64, 200)  # (B, C, T), (B, C, F, T)
CASES = ([pytest.param(name, None, id=f"{name}-gpu") for name in sorted(gc.CASES)]
         + [pytest.param(name, i, id=f"{name}-{i}") for name, cls in random_transforms().items()
            for i in range(len(cls.cases))])


@contextmanager
def no_host_sync():
    """Make any synchronising CUDA call inside the block raise."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def build(name: str, case: int | None):
    """The module and its input on the device: the matrix's case, or contract case ``case``."""
    g = torch.Generator().manual_seed(0)
    if case is None:
        spec = gc.CASES[name]
        module = spec.factory(SR, gc.banks(SR))
        x = gc.matrix_input(spec, 4, 1.0, SR, "cpu")
    else:
        c = random_transforms()[name].cases[case]
        module = random_transforms()[name](**c["kwargs"], p=0.5)
        x = torch.rand(WAVE if c["input"] == "wave" else SPEC, generator=g) - 0.5
    return module.to(DEVICE), x.to(DEVICE)


def calls(module, x, target=None, lengths=None) -> None:
    """Draw (with a device generator), replay the drawn params, then run in ``eval()``."""
    g = torch.Generator(device=x.device).manual_seed(0)
    kw = {k: v for k, v in (("target", target), ("lengths", lengths)) if v is not None}
    module.train()
    module(x, generator=g, **kw)
    module(x, params=module.last_params, **kw)
    module.eval()
    module(x, **kw)
    module.train()


@pytest.mark.parametrize("name, case", CASES)
def test_transform_has_no_host_sync(name, case):
    t, x = build(name, case)
    target = (torch.randint(0, 10, (x.shape[0],), device=DEVICE)
              if getattr(t, "uses_target", False) else None)
    lengths = (torch.tensor([x.shape[-1], x.shape[-1] // 2, 7, x.shape[-1] - 1], device=DEVICE)
               if getattr(t, "uses_lengths", False) else None)
    calls(t, x, target, lengths)  # warm-up
    with no_host_sync():
        calls(t, x, target, lengths)


@pytest.mark.parametrize("log", [None, "db", "log"])
def test_frontend_and_decibels_have_no_host_sync(log):
    fe = ak.MelFrontend(SR, **gc.MATRIX_MEL, log=log).to(DEVICE)
    db = ak.AmplitudeToDB(top_db=80.0, scale=gc.DB_SCALE)
    x = torch.randn(WAVE, device=DEVICE)
    lengths = torch.tensor([SR, SR // 2, 3000, 700], device=DEVICE)
    db(fe(x))  # warm-up
    with no_host_sync():
        spec = fe(x)
        fe.frames(lengths)
        db(spec)


@pytest.mark.parametrize("name", ["LoudnessNormalize", "MaxNormalize", "Standardize",
                                  "FrequencyStandardize"])
def test_normalisers_have_no_host_sync(name):
    x = 0.1 * torch.randn(WAVE, device=DEVICE)
    lengths = torch.tensor([SR, SR // 2, 3000, 700], device=DEVICE)
    if name == "LoudnessNormalize":  # on waveforms; the others on dB mel features
        module = ak.LoudnessNormalize(SR).to(DEVICE)
    else:
        fe = ak.MelFrontend(SR, **gc.MATRIX_MEL).to(DEVICE)
        x, lengths = fe(x), fe.frames(lengths)
        module = (ak.FrequencyStandardize(x.shape[-2]).to(DEVICE).fit(x)
                  if name == "FrequencyStandardize" else getattr(ak, name)())
    module(x, lengths=lengths)  # warm-up
    with no_host_sync():
        module(x, lengths=lengths)
        module(x)


def test_full_chain_has_no_host_sync():
    chain = gc.full_chain(22050, gc.banks(22050, DEVICE)).to(DEVICE)
    x = 0.1 * torch.randn(4, 1, 3 * 22050, device=DEVICE)
    y = torch.randint(0, 10, (4,), device=DEVICE)
    lengths = torch.tensor([3 * 22050, 40000, 30000, 22050], device=DEVICE)
    calls(chain, x, y, lengths)  # warm-up
    with no_host_sync():
        calls(chain, x, y, lengths)
        calls(chain, x)
