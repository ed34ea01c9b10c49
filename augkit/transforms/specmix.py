"""SpecMix: paste time bands and frequency bands of a partner example."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_number


class SpecMix(RandomTransform):
    """SpecMix (Kim et al. 2021): paste several time and frequency bands of a partner.

    Per example, ``n_t`` time bands and ``n_f`` frequency bands, each count
    uniform on ``{0, ..., max_bands}``, each band ``floor(gamma * T)`` frames
    (or ``floor(gamma * F)`` bins) wide at a uniform position inside the
    spectrogram; bands may overlap. The partner fills the union of the bands:
    a time band over every bin, a frequency band over every frame, as in the
    paper. The soft targets are weighted by the exact area of the union,
    ``target * (1 - a) + target[perm] * a``.

    Partners come from one random permutation of the batch (``params["perm"]``,
    as :class:`Mixup`); the bands are drawn per example on the device:
    ``t_start``/``t_width`` and ``f_start``/``f_width``, int64
    ``(B, max_bands)``, unused bands with width 0. Examples not drawn by ``p``
    get width 0 everywhere: nothing pasted. ``SpecMix(...)(x, target=y)`` (or
    ``(x, y)``) returns ``(x, soft targets)``, in ``eval()`` too (then unmixed).

    Args:
        gamma: Width of each band as a fraction of its axis, in ``(0, 1]`` (the
            paper's γ). (Default: ``0.1``)
        max_bands: Most bands per axis; each count is uniform on
            ``{0, ..., max_bands}``. (Default: ``3``)
        num_classes: Needed when targets are class indices. (Default: ``None``)
        p: Chance per example. (Default: ``1.0``)
        same_on_batch: One set of bands for the whole batch. (Default: ``False``)

    Shape:
        - ``x``: ``(B, C, F, T)``, one set of bands per example shared by its
          channels; ``target``: ``(B,)`` int64 or ``(B, K)`` soft targets.
        - Returns ``x_mixed (B, C, F, T)``, or ``(x_mixed, target_soft (B, K))``.

    Example:
        >>> mix = SpecMix(gamma=0.1, max_bands=3, num_classes=10)
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = mix(torch.randn(8, 1, 64, 100), target=torch.randint(0, 10, (8,)),
        ...            generator=g)
        >>> mix.last_params["t_width"].shape, y.shape
        (torch.Size([8, 3]), torch.Size([8, 10]))
    """

    ndims = (4,)
    expects = "spectrograms (B, C, F, T)"
    identity = {"t_width": 0, "f_width": 0}
    batch_params = ("perm",)
    uses_target = True
    cases = (dict(kwargs=dict(gamma=0.15, num_classes=10), input="spec", changes="maybe",
                  partner_only=True),)

    def __init__(self, gamma: float = 0.1, max_bands: int = 3, num_classes: int | None = None,
                 p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, low_open=True)
        self.max_bands = check_int("max_bands", max_bands, 1)
        self.num_classes = None if num_classes is None else check_int("num_classes",
                                                                      num_classes, 1)

    def sample(self, shape, n, device, generator) -> Params:
        m = self.max_bands
        params: Params = {}
        for axis, length in (("t", shape[-1]), ("f", shape[-2])):
            width = int(self.gamma * length)
            count = F.randint_below(torch.full((n, 1), m + 1, device=device), device, generator)
            used = torch.arange(m, device=device) < count  # (n, m)
            room = torch.full((n, m), length - width + 1, device=device)
            params[f"{axis}_start"] = F.randint_below(room, device, generator)
            params[f"{axis}_width"] = torch.where(used, width, 0)
        params["perm"] = torch.randperm(shape[0], device=device, generator=generator)
        return params

    def apply(self, x: Tensor, params: Params, target: Tensor | None = None):
        time_hit = F.band_mask(params["t_start"], params["t_width"], x.shape[-1])
        freq_hit = F.band_mask(params["f_start"], params["f_width"], x.shape[-2])
        return F.cut_mix(x, target, params["perm"], time_hit, freq_hit, union=True)

    def extra_repr(self) -> str:
        return (f"gamma={self.gamma}, max_bands={self.max_bands}, "
                f"num_classes={self.num_classes}, " + super().extra_repr())
