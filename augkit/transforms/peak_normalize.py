"""Scale drawn examples to a peak of 1 over their valid samples."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform


class PeakNormalize(RandomTransform):
    """Scale each drawn example so that its peak ``max |x|`` is 1.

    The peak is taken over all of the example's channels (one factor per
    example, so the balance between channels is kept) and, with ``lengths``,
    over its valid samples only; the padding after them is left as it is (zero
    padding stays zero). A silent example stays silent (no NaN). There is
    nothing to draw besides the gate.

    Args:
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` (any ``(B, ..., T)``), unchanged; ``lengths``: ``(B,)``.

    Example:
        >>> x = torch.tensor([[[0.25, -0.5, 0.0]]])
        >>> PeakNormalize(p=1.0)(x)
        tensor([[[ 0.5000, -1.0000,  0.0000]]])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ..., T), e.g. waveforms (B, C, T)"
    gate = "output"  # deterministic given the gate: no parameter to set to an identity
    uses_lengths = True
    cases = (dict(kwargs={}, input="wave", changes="always"),)

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        return F.peak_normalize(x, lengths)
