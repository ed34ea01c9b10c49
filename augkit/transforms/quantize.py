"""Per-example quantisation: uniform (bit depth) and mu-law."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int


def _int_range(name: str, value, low: int) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)):
        value = (value, value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an integer or a (low, high) pair, got {value!r}")
    lo, hi = check_int(name, value[0], low), check_int(name, value[1], low)
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return lo, hi


class BitCrush(RandomTransform):
    """Quantise each example to a bit depth drawn per example (uniform PCM grid).

    Samples are rounded to the nearest multiple of ``2 ** (1 - bits)`` (the step
    of ``bits``-bit PCM with full scale ``[-1, 1)``; 0 stays 0) and kept inside
    ``[-1, 1 - step]``. The rounding error is close to uniform, with power
    ``step^2 / 12`` for signals much larger than a step. The bit depth is an
    integer drawn uniformly in ``bit_depth``. No dither.

    Args:
        bit_depth: ``(low, high)`` bits, integers ``>= 1``; a number means
            ``(v, v)``. (Default: ``(4, 12)``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One bit depth for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` (any ``(B, ..., T)``), unchanged (float32 maths).

    Example:
        >>> BitCrush(bit_depth=3, p=1.0)(torch.tensor([[[0.1, 0.2, -0.9]]]))
        tensor([[[ 0.0000,  0.2500, -1.0000]]])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ..., T), e.g. waveforms (B, C, T)"
    gate = "output"
    cases = (dict(kwargs={}, input="wave", changes="always"),)

    def __init__(self, bit_depth: tuple[int, int] | int = (4, 12), p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.bit_depth = _int_range("bit_depth", bit_depth, 1)

    def sample(self, shape, n, device, generator) -> Params:
        lo, hi = self.bit_depth
        span = torch.full((n,), hi - lo + 1, device=device)
        return {"bit_depth": lo + F.randint_below(span, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.bit_crush(x, params["bit_depth"])

    def extra_repr(self) -> str:
        return f"bit_depth={self.bit_depth}, " + super().extra_repr()


class MuLaw(RandomTransform):
    """mu-law encode and decode each example with its own number of levels.

    The companding of ``torchaudio.functional.mu_law_encoding`` then
    ``mu_law_decoding`` (``mu = quantization_channels - 1``): fine steps near 0,
    coarse ones near full scale, as in 8-bit telephone audio. The number of
    channels is drawn per example log-uniformly in ``quantization_channels`` and
    rounded to an integer. Input is clamped to ``[-1, 1]`` first.

    Args:
        quantization_channels: ``(low, high)`` levels, integers ``>= 2``; a number
            means ``(v, v)``. (Default: ``(16, 256)``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One setting for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` (any ``(B, ..., T)``), unchanged (float32 maths).

    Example:
        >>> y = MuLaw(quantization_channels=256, p=1.0)(torch.tensor([[[0.5, -0.25]]]))
        >>> y.round(decimals=4)
        tensor([[[ 0.4967, -0.2457]]])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ..., T), e.g. waveforms (B, C, T)"
    gate = "output"
    cases = (dict(kwargs={}, input="wave", changes="always"),)

    def __init__(self, quantization_channels: tuple[int, int] | int = (16, 256),
                 p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.quantization_channels = _int_range("quantization_channels",
                                                quantization_channels, 2)

    def sample(self, shape, n, device, generator) -> Params:
        lo, hi = self.quantization_channels
        levels = F.log_uniform((n,), lo, hi, device, generator).round().clamp(lo, hi)
        return {"quantization_channels": levels.long()}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.mu_law(x, params["quantization_channels"])

    def extra_repr(self) -> str:
        return f"quantization_channels={self.quantization_channels}, " + super().extra_repr()
