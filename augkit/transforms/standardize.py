"""Per-example standardisation to zero mean and unit variance."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import check_number
from ._normalizer import Normalizer


class Standardize(Normalizer):
    """Per-example standardisation: ``(x - mean) / max(std, eps)`` over ``(C, F, T)``.

    Each example's own mean and population standard deviation (``ddof=0``, as
    ``numpy.std``); the reference is that formula applied to each example alone.
    Deterministic, the same in ``train()`` and ``eval()``. With ``lengths`` the
    statistics use the valid frames only, and the padded frames are set to 0
    afterwards. A constant example becomes all zeros. Statistics are computed
    in float32 (float64 for float64 input).

    Args:
        eps: Floor on the standard deviation. (Default: ``1e-5``)

    Shape:
        ``(B, C, F, T)`` -> ``(B, C, F, T)``, same dtype; ``lengths``: ``(B,)``
        valid frames.

    Example:
        >>> Standardize()(torch.tensor([[[[1.0, 3.0], [1.0, 3.0]]]]))
        tensor([[[[-1.,  1.],
                  [-1.,  1.]]]])
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = check_number("eps", eps, 0.0, low_open=True)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C, F, T)`` -> ``(B, C, F, T)``; ``lengths`` ``(B,)`` valid frames."""
        self.check(x, lengths)
        return F.standardize(x, lengths, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
