"""Per-example shifts in time, rolled over or zero-filled."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int


class TimeShift(RandomTransform):
    """Shift each example in time by up to ``max_shift``.

    Args:
        max_shift: Largest shift, a fraction of the length if a float in
            ``(0, 1]``, else samples (int). Shifts are uniform in ``[-max, max]``.
            (Default: ``0.5``)
        rollover: Wrap samples around (``True``) or fill with zeros. (Default: ``True``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One shift for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` or ``(B, C, F, T)``, unchanged.

    Example:
        >>> x = torch.arange(5.0).view(1, 1, 5)
        >>> TimeShift(2)(x, params={"apply": torch.tensor([True]), "shift": torch.tensor([1])})
        tensor([[[4., 0., 1., 2., 3.]]])
    """

    identity = {"shift": 0}
    compute_drawn_only = False  # one pass over the batch: selecting would cost more
    cases = (dict(kwargs={}, input="wave"),
             dict(kwargs=dict(max_shift=100, rollover=False), input="wave"),
             dict(kwargs=dict(max_shift=0.2), input="spec"))

    def __init__(self, max_shift: float | int = 0.5, rollover: bool = True, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if isinstance(max_shift, float):
            if not 0.0 < max_shift <= 1.0:
                raise ValueError(f"max_shift as a fraction must be in (0, 1], got {max_shift}")
        else:
            check_int("max_shift", max_shift, 0)
        self.max_shift, self.rollover = max_shift, bool(rollover)

    def sample(self, shape, n, device, generator) -> Params:
        m = (int(self.max_shift * shape[-1]) if isinstance(self.max_shift, float)
             else self.max_shift)
        m = min(m, shape[-1])
        high = torch.full((n,), 2 * m + 1, device=device, dtype=torch.long)
        return {"shift": F.randint_below(high, device, generator) - m}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.shift(x, params["shift"], self.rollover)

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, rollover={self.rollover}, " + super().extra_repr()
