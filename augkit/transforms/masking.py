"""SpecAugment time and frequency masks: one transform along two axes."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int


class _AxisMasking(RandomTransform):
    axis = -1
    ndims = (3, 4)
    expects = "a spectrogram (B, C, F, T) (or (B, F, T))"
    identity = {"width": 0}

    def __init__(self, max_width: int, num_masks: int = 1, value: float | str = 0.0,
                 p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.max_width = check_int("max_width", max_width, 0)
        self.num_masks = check_int("num_masks", num_masks, 1)
        if not (value == "mean" or (isinstance(value, (int, float))
                                    and not isinstance(value, bool))):
            raise ValueError(f"value must be a number or 'mean', got {value!r}")
        self.value = value

    def sample(self, shape, n, device, generator) -> Params:
        size = shape[self.axis]
        m = (n, self.num_masks)
        # Width ~ U{0..max_width} (capped at the axis size), start ~ U{0..size - width}.
        cap = min(self.max_width, size)
        width = (torch.rand(m, device=device, generator=generator) * (cap + 1)).long()
        width = width.clamp_max(cap)
        start = F.randint_below(size - width + 1, device, generator)
        return {"start": start, "width": width}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.mask_along_axis(x, params["start"], params["width"], self.axis, self.value)

    def extra_repr(self) -> str:
        return (f"max_width={self.max_width}, num_masks={self.num_masks}, "
                f"value={self.value!r}, " + super().extra_repr())


class TimeMasking(_AxisMasking):
    """SpecAugment time masks, drawn per example.

    Each applied example gets ``num_masks`` masks of width ``U{0..max_width}``
    frames at uniform positions, filled with ``value`` (a number, or ``"mean"``
    for the example's mean: use it on log-mels, where 0 is not silence). Masks
    are shared across channels.

    Args:
        max_width: Largest mask width in frames. (Default: ``40``, 0.4 s at a
            10 ms hop, as SpecAugment's LibriSpeech policies)
        num_masks: Masks per example. (Default: ``1``, as torchaudio)
        value: Fill value or ``"mean"``. (Default: ``0.0``)
        p: Chance per example. (Default: ``1.0``, as in SpecAugment)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, F, T)`` -> ``(B, C, F, T)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> TimeMasking(20)(torch.ones(2, 1, 64, 100), generator=g).shape
        torch.Size([2, 1, 64, 100])
    """

    axis = -1
    cases = (dict(kwargs=dict(max_width=10), input="spec"),
             dict(kwargs=dict(max_width=6, num_masks=1, value="mean"), input="spec"))

    def __init__(self, max_width: int = 40, num_masks: int = 1, value: float | str = 0.0,
                 p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(max_width, num_masks, value, p, same_on_batch)


class FrequencyMasking(_AxisMasking):
    """SpecAugment frequency masks; as :class:`TimeMasking` along the mel axis ``F``.

    Args:
        max_width: Largest mask width in mel bins. (Default: ``15``)
        num_masks: Masks per example. (Default: ``1``, as torchaudio)
        value: Fill value or ``"mean"``. (Default: ``0.0``)
        p: Chance per example. (Default: ``1.0``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, F, T)`` -> ``(B, C, F, T)``.
    """

    axis = -2
    cases = (dict(kwargs=dict(max_width=8), input="spec"),)

    def __init__(self, max_width: int = 15, num_masks: int = 1, value: float | str = 0.0,
                 p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(max_width, num_masks, value, p, same_on_batch)
