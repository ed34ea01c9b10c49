"""Play drawn examples backwards (their valid part, padding kept at the end)."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform


class TimeReversal(RandomTransform):
    """Reverse each drawn example along time.

    Without ``lengths`` this is ``torch.flip(x, (-1,))``. With ``lengths`` only
    each example's valid samples are reversed and its padding stays at the end
    (flipping the whole buffer would move the padding to the front), by one
    gather. Works on spectrograms too (time is the last axis, ``lengths`` in
    frames).

    Args:
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` (any ``(B, ..., T)``), unchanged; ``lengths``: ``(B,)``.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0, 3.0, 0.0]]])
        >>> TimeReversal(p=1.0)(x, lengths=torch.tensor([3]))
        tensor([[[3., 2., 1., 0.]]])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ..., T), e.g. waveforms (B, C, T)"
    gate = "output"  # exact, but with no parameter to set to an identity
    uses_lengths = True
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs={}, input="spec", changes="always"))

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        return F.reverse(x, lengths)
