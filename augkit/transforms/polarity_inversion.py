"""Multiply drawn examples by -1."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform


class PolarityInversion(RandomTransform):
    """Multiply each drawn example by -1.

    Args:
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> PolarityInversion(p=1.0)(torch.ones(1, 1, 3))
        tensor([[[-1., -1., -1.]]])
    """

    # One pass, x * (+1 or -1): the draw itself is the parameter, and an example not
    # drawn is multiplied by +1, which leaves it bit-identical (signed zeros and NaNs too).
    identity = {"apply": False}
    compute_drawn_only = False  # one pass over the batch: selecting would cost more
    cases = (dict(kwargs={}, input="wave", changes="always"),)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.gain(x, 1.0 - 2.0 * params["apply"].to(x.dtype))
