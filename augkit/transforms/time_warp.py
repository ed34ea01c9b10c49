"""SpecAugment's time warp, per example, by one batched interpolation along time."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int


class TimeWarp(RandomTransform):
    """SpecAugment time warp (Park et al., 2019), drawn per example.

    The frame at a warp point ``w0`` moves by ``d`` frames; the frames before it
    are stretched (or squeezed) onto ``[0, w0 + d)`` and those after it onto
    ``[w0 + d, T)``, a piecewise-linear time map that keeps the first and last
    frames in place. Output frames interpolate linearly between their two
    neighbouring source frames, all examples in one gather and lerp.

    With ``W = min(max_warp, (T - 3) // 2)`` (at least 0), ``w0`` is uniform on
    the integers of SpecAugment's open interval ``(W, T - 1 - W)``, i.e.
    ``[W + 1, T - W - 2]``, and ``d`` uniform on ``[-W, W]``, so both warped
    segments keep at least one frame. Inputs of 4 frames or fewer have ``W = 0``
    and are returned as they are. Examples not drawn get ``d = 0``, which gives
    the input back bit-identical.

    Args:
        max_warp: ``W``, the largest move of the warp point in frames. (Default:
            ``5``, ESPnet's SpecAugment window; the paper's LibriSpeech policies
            use ``W = 80`` on 10 ms frames, its Switchboard ones ``W = 40``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One warp for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, F, T)`` (or ``(B, F, T)``), unchanged.

    Example:
        >>> x = torch.arange(6.0).expand(1, 1, 2, 6)
        >>> p = {"apply": torch.tensor([True]), "point": torch.tensor([2]),
        ...      "distance": torch.tensor([1])}
        >>> TimeWarp(max_warp=1)(x, params=p)[0, 0, 0]
        tensor([0.0000, 0.6667, 1.3333, 2.0000, 3.5000, 5.0000])
    """

    ndims = (3, 4)
    expects = "a spectrogram (B, C, F, T) (or (B, F, T))"
    identity = {"distance": 0}
    cases = (dict(kwargs={}, input="spec"),
             dict(kwargs=dict(max_warp=20), input="spec"))

    def __init__(self, max_warp: int = 5, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.max_warp = check_int("max_warp", max_warp, 0)

    def sample(self, shape, n, device, generator) -> Params:
        t = shape[-1]
        w = max(min(self.max_warp, (t - 3) // 2), 0)
        low = min(w + 1, max(t - 2, 0))  # T < 3: point 0, and d = 0 below
        count = max(t - 2 * w - 2, 1)  # points in [W + 1, T - W - 2]
        point = low + F.randint_below(torch.full((n,), count, dtype=torch.long,
                                                 device=device), device, generator)
        distance = F.randint_below(torch.full((n,), 2 * w + 1, dtype=torch.long,
                                              device=device), device, generator) - w
        return {"point": point, "distance": distance}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.time_warp(x, params["point"], params["distance"])

    def extra_repr(self) -> str:
        return f"max_warp={self.max_warp}, " + super().extra_repr()
