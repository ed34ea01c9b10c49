"""Per-example random crops of a fixed length."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int


class RandomCrop(RandomTransform):
    """Per-example random crops of a fixed length along the last axis.

    Each example draws a position ``U(0, 1)``, turned into an offset
    ``0..T - length`` by :func:`augkit.functional.offsets_at`; inputs shorter than
    ``length`` are zero-padded at the end, so the output always has ``length``
    samples. Examples not drawn by ``p`` get the centre crop (position ``0.5``).
    In ``eval()`` mode the input passes unchanged (full length), as for every
    transform; take evaluation crops with :func:`augkit.functional.crop`.

    ``length`` has no default: it is the model's input size, the user's choice.

    Args:
        length: Output length in samples (or frames, for spectrograms).
        p: Chance per example of a random (rather than centre) crop. (Default: ``1.0``)
        same_on_batch: One position for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` -> ``(B, C, length)``; ``(B, C, F, T)`` -> ``(B, C, F, length)``.

    Example:
        >>> RandomCrop(100)(torch.randn(4, 1, 400)).shape
        torch.Size([4, 1, 100])
    """

    identity = {"position": 0.5}
    compute_drawn_only = False  # the output is shorter than the input
    cases = (dict(kwargs=dict(length=300), input="wave", shape=(300,), changes="maybe"),
             dict(kwargs=dict(length=20), input="spec", shape=(20,), changes="maybe"))

    def __init__(self, length: int, p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.length = check_int("length", length, 1)

    def sample(self, shape, n, device, generator) -> Params:
        return {"position": torch.rand((n,), device=device, generator=generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        offset = F.offsets_at(params["position"], max(x.shape[-1] - self.length, 0))
        return F.crop(x, offset, self.length)

    def extra_repr(self) -> str:
        return f"length={self.length}, " + super().extra_repr()
