"""FilterAugment: random per-band gains along frequency on log-mel features."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_range

MODES = ("linear", "step")


class FilterAugment(RandomTransform):
    """FilterAugment (Nam et al., ICASSP 2022), drawn per example.

    Imitates a random acoustic filter: the mel axis is cut into
    ``U{n_bands[0]..n_bands[1]}`` bands (both ends inclusive) of at least
    ``min_bandwidth`` bins at random edges, and a gain ``U(db_range)`` dB is added
    to every bin, constant over time:

    - ``"linear"`` (the ICASSP 2022 version, the default): a gain is drawn at
      every band edge and each band ramps linearly from the gain at its first
      bin to the next one at its last bin (``torch.linspace`` over the band,
      as the reference code does);
    - ``"step"`` (the DCASE 2021 version): one gain per band, piecewise constant.

    **The input is a log-mel in dB** (e.g. after :class:`AmplitudeToDB`), so the
    gain is added. On a power mel, put this step after ``AmplitudeToDB`` (the
    reference code multiplies a linear mel by ``10 ** (gain / 20)`` instead). On
    dB features scaled by ``s`` (``AmplitudeToDB(scale=s)``), give ``db_range``
    in those units, ``s`` times the dB range. Examples not drawn get all gains
    0, and come back bit-identical.

    Unlike the reference code, which draws one band count and one set of edges
    per batch, every example draws its own; the unused slots of the
    ``n_bands[1]`` possible bands are empty bands at the top (edge ``F``, gain 0).

    Args:
        db_range: Gain range in dB (the input's units). (Default: ``(-6, 6)``)
        n_bands: Fewest and most bands, inclusive. (Default: ``(3, 6)``; the
            reference code's ``n_band=[3, 6]`` draws 3 to 5, ``torch.randint``
            excluding the high end)
        mode: ``"linear"`` or ``"step"``. (Default: ``"linear"``)
        min_bandwidth: Fewest bins per band, lowered to ``F // bands`` when it does
            not fit. (Default: ``None``: 6 for ``"linear"``, 4 for ``"step"``, the
            reference code's values)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One filter for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, F, T)`` (or ``(B, F, T)``), unchanged.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> FilterAugment(p=1.0)(torch.zeros(2, 1, 64, 100), generator=g).shape
        torch.Size([2, 1, 64, 100])
    """

    ndims = (3, 4)
    expects = "a log-mel spectrogram (B, C, F, T) (or (B, F, T))"
    identity = {"gain_db": 0.0}
    cases = (dict(kwargs={}, input="spec"),
             dict(kwargs=dict(mode="step", n_bands=(2, 4)), input="spec"),
             dict(kwargs=dict(db_range=(-0.3, 0.3), n_bands=(1, 8), min_bandwidth=1),
                  input="spec"))

    def __init__(self, db_range: tuple[float, float] | float = (-6.0, 6.0),
                 n_bands: tuple[int, int] | int = (3, 6), mode: str = "linear",
                 min_bandwidth: int | None = None, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.db_range = check_range("db_range", db_range)
        if not isinstance(n_bands, (tuple, list)):
            n_bands = (n_bands, n_bands)
        if len(n_bands) != 2:
            raise ValueError(f"n_bands must be an int or a (low, high) pair, got {n_bands!r}")
        lo, hi = check_int("n_bands", n_bands[0], 1), check_int("n_bands", n_bands[1], 1)
        if lo > hi:
            raise ValueError(f"n_bands must have low <= high, got {n_bands!r}")
        self.n_bands = (lo, hi)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        if min_bandwidth is None:
            min_bandwidth = 6 if mode == "linear" else 4
        self.min_bandwidth = check_int("min_bandwidth", min_bandwidth, 1)

    def sample(self, shape, n, device, generator) -> Params:
        f = shape[-2]
        lo, hi = self.n_bands
        count = lo + F.randint_below(torch.full((n,), hi - lo + 1, dtype=torch.long,
                                                device=device), device, generator)
        width = torch.minimum(torch.div(f, count, rounding_mode="floor"),
                              torch.full((), self.min_bandwidth, device=device))
        room = (f - count * width).unsqueeze(1)  # (n, 1), >= 0
        k = torch.arange(1, hi, device=device)  # inner edge slots 1..hi-1
        used = k < count.unsqueeze(1)
        # Unused slots draw the largest value, so sorting puts the used ones first.
        raw = F.randint_below((room + 1).expand(n, hi - 1), device, generator)
        raw = torch.where(used, raw, room).sort(dim=1).values
        inner = torch.where(used, raw + k * width.unsqueeze(1), f)
        edges = torch.cat([torch.zeros((n, 1), dtype=torch.long, device=device), inner,
                           torch.full((n, 1), f, dtype=torch.long, device=device)], 1)
        n_gains = hi + 1 if self.mode == "linear" else hi
        gains = F.uniform((n, n_gains), *self.db_range, device, generator)
        slot = torch.arange(n_gains, device=device)
        last = count if self.mode == "linear" else count - 1
        gains = torch.where(slot <= last.unsqueeze(1), gains, 0.0)
        return {"edges": edges, "gain_db": gains}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.filter_augment(x, params["edges"], params["gain_db"], self.mode == "linear")

    def extra_repr(self) -> str:
        return (f"db_range={self.db_range}, n_bands={self.n_bands}, mode={self.mode!r}, "
                f"min_bandwidth={self.min_bandwidth}, " + super().extra_repr())
