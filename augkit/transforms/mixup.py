"""Mixup: blend examples and their targets with partners from the batch."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_number


class Mixup(RandomTransform):
    """Mixup: blend each example (and its target) with a partner from the batch.

    ``lam ~ Beta(alpha, alpha)`` per example, partners from one random
    permutation of the batch (``params["perm"]``, drawn for the batch as a
    whole, so ``same_on_batch`` shares ``lam`` only); examples not drawn by ``p``
    keep ``lam = 1``. ``Mixup(...)(x, target=y)``, or ``Mixup(...)(x, y)`` as with
    torchvision's ``MixUp``, returns ``(x, soft targets)``, in ``eval()`` too
    (then unmixed); without targets it mixes ``x`` alone. Class indices must lie
    in ``[0, num_classes)`` and soft targets have ``K = num_classes`` columns:
    a ``ValueError`` otherwise (the values are read for CPU targets, and on
    CUDA with ``check=True``; see :meth:`RandomTransform.forward`).

    Args:
        alpha: Beta concentration. (Default: ``0.4``)
        num_classes: Needed when targets are class indices. (Default: ``None``)
        p: Chance per example. (Default: ``1.0``)
        same_on_batch: One ``lam`` for the whole batch. (Default: ``False``)

    Shape:
        - ``x``: ``(B, ...)``; ``target``: ``(B,)`` int64 or ``(B, K)`` soft targets.
        - Returns ``x_mixed (B, ...)``, or ``(x_mixed, target_soft (B, K))``.

    Example:
        >>> mix = Mixup(alpha=0.4, num_classes=10)
        >>> x, y = mix(torch.randn(8, 1, 64, 100), target=torch.randint(0, 10, (8,)))
        >>> y.shape
        torch.Size([8, 10])
        >>> x, y = mix(torch.randn(8, 1, 64, 100), torch.randint(0, 10, (8,)))  # torchvision
        >>> y.shape
        torch.Size([8, 10])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ...)"
    identity = {"lam": 1.0}
    batch_params = ("perm",)
    uses_target = True
    cases = (dict(kwargs=dict(num_classes=10), input="spec", changes="maybe"),)

    def __init__(self, alpha: float = 0.4, num_classes: int | None = None, p: float = 1.0,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.alpha = check_number("alpha", alpha, 0.0, low_open=True)
        self.num_classes = None if num_classes is None else check_int("num_classes",
                                                                      num_classes, 1)

    def sample(self, shape, n, device, generator) -> Params:
        return {"lam": F.beta(self.alpha, (n,), device, generator),
                "perm": torch.randperm(shape[0], device=device, generator=generator)}

    def apply(self, x: Tensor, params: Params, target: Tensor | None = None):
        return F.mix(x, target, params["lam"], params["perm"])

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, num_classes={self.num_classes}, " + super().extra_repr()
