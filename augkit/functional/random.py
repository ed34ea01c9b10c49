"""Device-side samplers that take an optional ``torch.Generator``.

Everything here draws on ``device`` with no host sync, so a whole batch of
parameters comes from a few kernel launches and is reproducible from a
generator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["uniform", "log_uniform", "bernoulli", "randint_below", "random_phases", "beta"]


def uniform(shape, low, high, device, generator=None) -> Tensor:
    """``U(low, high)`` of ``shape``, float32. ``low``/``high`` may be tensors."""
    u = torch.rand(shape, device=device, generator=generator)
    return low + (high - low) * u


def log_uniform(shape, low: float, high: float, device, generator=None) -> Tensor:
    """``low * (high / low) ** U(0, 1)`` of ``shape``: log-uniform on ``[low, high]``
    (``0 < low <= high``; equal chances per octave), float32; exactly ``low`` when equal."""
    u = torch.rand(shape, device=device, generator=generator)
    return low * torch.exp(u * math.log(high / low))


def bernoulli(shape, p: float, device, generator=None) -> Tensor:
    """Boolean tensor of ``shape``, each element true with probability ``p``."""
    return torch.rand(shape, device=device, generator=generator) < p


def randint_below(high: Tensor, device, generator=None) -> Tensor:
    """Integers uniform on ``[0, high)``, elementwise for an int tensor ``high >= 1``."""
    u = torch.rand(high.shape, device=device, generator=generator)
    return torch.minimum((u * high).long(), high - 1)


def random_phases(shape, device, generator=None, levels: int = 4096) -> Tensor:
    """Integers uniform on ``[0, levels)`` (``levels`` a power of two <= 4096), int32.

    Two per 24-bit draw (its low and high 12 bits, of which ``log2(levels)``
    each are kept): half the generator calls of ``torch.randint``. Meant for
    phases ``2 pi m / levels`` (:func:`augkit.functional.random_phase_noise`).
    """
    if levels < 1 or levels > 4096 or levels & (levels - 1):
        raise ValueError(f"levels must be a power of two in [1, 4096], got {levels}")
    shape = torch.Size(shape)
    n = shape.numel()
    half = (n + 1) // 2
    out = torch.empty(2 * half, device=device, dtype=torch.int32)
    low, high = out[:half], out[half:]
    torch.randint(0, 1 << 24, (half,), generator=generator, out=low)
    torch.bitwise_right_shift(low, 12, out=high).bitwise_and_(levels - 1)
    low.bitwise_and_(levels - 1)
    return out[:n].view(shape)


def _standard_gamma(alpha: float, shape, device, generator=None, tries: int = 12) -> Tensor:
    """Gamma(alpha, 1) by Marsaglia-Tsang, vectorised with a fixed number of tries.

    Each try accepts with probability > 0.95, so ``tries`` candidates fail
    together with probability < 1e-15; then the mean is returned. For
    ``alpha < 1`` the boost ``G(alpha) = G(alpha + 1) * U ** (1 / alpha)`` is used.
    """
    a = alpha + 1.0 if alpha < 1.0 else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    z = torch.randn((tries, *shape), device=device, generator=generator)
    u = torch.rand((tries, *shape), device=device, generator=generator)
    v = (1.0 + c * z) ** 3
    ok = (v > 0) & (torch.log(u.clamp_min(1e-30)) < 0.5 * z * z + d - d * v + d * torch.log(
        v.clamp_min(1e-30)))
    first = torch.argmax(ok.to(torch.int8), dim=0, keepdim=True)  # first accepted try
    g = torch.gather(d * v, 0, first).squeeze(0)
    g = torch.where(ok.any(0), g, torch.full_like(g, d))
    if alpha < 1.0:
        u2 = torch.rand(shape, device=device, generator=generator)
        g = g * u2.clamp_min(1e-30) ** (1.0 / alpha)
    return g


def beta(alpha: float, shape, device, generator=None) -> Tensor:
    """``Beta(alpha, alpha)`` samples of ``shape`` (used by Mixup), float32."""
    x = _standard_gamma(alpha, shape, device, generator)
    y = _standard_gamma(alpha, shape, device, generator)
    return x / (x + y).clamp_min(1e-30)
