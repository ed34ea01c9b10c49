"""CutMix for spectrograms: paste a time segment or a box from a partner example."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_number


class CutMix(RandomTransform):
    """CutMix on spectrograms: paste a region of a partner example; targets by its area.

    Per example, ``lam ~ Beta(alpha, alpha)`` sets the region's nominal size and
    a centre is drawn uniformly (Yun et al. 2019); the region is clipped to the
    spectrogram, and the soft targets are weighted by the exact area of what
    was pasted: ``target * (1 - a) + target[perm] * a`` with ``a`` the pasted
    fraction of the ``F x T`` plane after clipping (not the nominal ``1 - lam``).

    - ``mode="time"``: a segment of ``floor((1 - lam) * T)`` frames over every
      frequency bin (the partner's sound during that time);
    - ``mode="box"``: ``floor(sqrt(1 - lam) * F)`` bins by
      ``floor(sqrt(1 - lam) * T)`` frames, as CutMix does on images.

    Partners come from one random permutation of the batch (``params["perm"]``,
    drawn for the batch as a whole, as :class:`Mixup` does); the regions are
    drawn per example on the device and stored as ``t_start``/``t_width``
    (and ``f_start``/``f_width`` in box mode), int64 ``(B,)``. Examples not
    drawn by ``p`` get width 0: nothing pasted, target unchanged.
    ``CutMix(...)(x, target=y)`` (or ``(x, y)``) returns ``(x, soft targets)``,
    in ``eval()`` too (then unmixed); without ``target`` it mixes ``x`` alone.

    Args:
        mode: ``"time"`` or ``"box"``. (Default: ``"time"``)
        alpha: Beta concentration of ``lam``; 1 draws it uniformly. (Default: ``1.0``)
        num_classes: Needed when targets are class indices. (Default: ``None``)
        p: Chance per example. (Default: ``1.0``)
        same_on_batch: One region for the whole batch. (Default: ``False``)

    Shape:
        - ``x``: ``(B, C, F, T)``, one region per example shared by its channels;
          ``target``: ``(B,)`` int64 or ``(B, K)`` soft targets.
        - Returns ``x_mixed (B, C, F, T)``, or ``(x_mixed, target_soft (B, K))``.

    Example:
        >>> cut = CutMix(mode="box", num_classes=10)
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = cut(torch.randn(8, 1, 64, 100), target=torch.randint(0, 10, (8,)),
        ...            generator=g)
        >>> y.shape, bool(torch.allclose(y.sum(1), torch.ones(8)))
        (torch.Size([8, 10]), True)
    """

    ndims = (4,)
    expects = "spectrograms (B, C, F, T)"
    identity = {"t_width": 0, "f_width": 0}
    batch_params = ("perm",)
    uses_target = True
    cases = (dict(kwargs=dict(num_classes=10), input="spec", changes="maybe",
                  partner_only=True),
             dict(kwargs=dict(mode="box", num_classes=10), input="spec", changes="maybe",
                  partner_only=True))

    def __init__(self, mode: str = "time", alpha: float = 1.0, num_classes: int | None = None,
                 p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if mode not in ("time", "box"):
            raise ValueError(f"mode must be 'time' or 'box', got {mode!r}")
        self.mode = mode
        self.alpha = check_number("alpha", alpha, 0.0, low_open=True)
        self.num_classes = None if num_classes is None else check_int("num_classes",
                                                                      num_classes, 1)

    def sample(self, shape, n, device, generator) -> Params:
        lam = F.beta(self.alpha, (n,), device, generator)
        box = self.mode == "box"
        ratio = torch.sqrt(1 - lam) if box else 1 - lam
        params: Params = {}
        for axis, length in (("t", shape[-1]), ("f", shape[-2]))[: 2 if box else 1]:
            width = (ratio.double() * length).long()
            centre = F.randint_below(torch.full((n,), length, device=device), device, generator)
            start = (centre - width // 2).clamp(0, length)
            end = (centre - width // 2 + width).clamp(0, length)
            params[f"{axis}_start"], params[f"{axis}_width"] = start, end - start
        params["perm"] = torch.randperm(shape[0], device=device, generator=generator)
        return params

    def apply(self, x: Tensor, params: Params, target: Tensor | None = None):
        time_hit = F.band_mask(params["t_start"], params["t_width"], x.shape[-1])
        freq_hit = (F.band_mask(params["f_start"], params["f_width"], x.shape[-2])
                    if self.mode == "box" else None)
        return F.cut_mix(x, target, params["perm"], time_hit, freq_hit)

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, alpha={self.alpha}, num_classes={self.num_classes}, "
                + super().extra_repr())
