"""Per-example gain in dB or as a linear factor."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_range

DOMAINS = ("amplitude", "power", "db")


class Gain(RandomTransform):
    """Per-example gain, as a dB range or a linear factor range.

    Give at most one of ``gain_db`` or ``factor`` (neither: ``gain_db=(-12, 12)``):

    - ``gain_db=(lo, hi)``: ``U(lo, hi)`` dB, applied as the ``domain`` needs:
      ``"amplitude"`` (waveforms, magnitude spectrograms) multiplies by
      ``10 ** (g / 20)``, ``"power"`` by ``10 ** (g / 10)``, ``"db"`` adds ``g``.
    - ``factor=(lo, hi)``: multiply by ``U(lo, hi)``, e.g. ``(0.8, 1.2)`` on a
      power mel as in the tutorial.

    Args:
        gain_db: Gain range in dB. (Default: ``(-12, 12)`` when ``factor`` is not given)
        factor: Linear factor range.
        domain: What the input holds, for ``gain_db``. (Default: ``"amplitude"``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` or ``(B, C, F, T)``, unchanged.

    Example:
        >>> x = torch.ones(2, 1, 4)
        >>> Gain(gain_db=(6, 6), p=1.0)(x)[:, 0, 0]
        tensor([1.9953, 1.9953])
    """

    identity = {"gain_db": 0.0, "factor": 1.0}
    compute_drawn_only = False  # one pass over the batch: selecting would cost more
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs=dict(factor=(0.5, 1.5)), input="spec", changes="always"),
             dict(kwargs=dict(gain_db=(-6, 6), domain="power"), input="spec",
                  changes="always"),
             dict(kwargs=dict(gain_db=(-6, 6), domain="db"), input="spec", changes="always"))

    def __init__(self, gain_db: tuple[float, float] | float | None = None,
                 factor: tuple[float, float] | float | None = None, domain: str = "amplitude",
                 p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if gain_db is not None and factor is not None:
            raise ValueError("Gain takes one of gain_db or factor, not both")
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
        if gain_db is None and factor is None:
            gain_db = (-12.0, 12.0)
        self.gain_db = None if gain_db is None else check_range("gain_db", gain_db)
        self.factor = None if factor is None else check_range("factor", factor, low=0.0)
        self.domain = domain

    def sample(self, shape, n, device, generator) -> Params:
        key, (lo, hi) = ("gain_db", self.gain_db) if self.gain_db else ("factor", self.factor)
        return {key: F.uniform((n,), lo, hi, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        if "factor" in params:
            return F.gain(x, params["factor"])
        g = params["gain_db"]
        if self.domain == "db":
            return F.gain(x, g, additive=True)
        return F.gain(x, torch.pow(10.0, g / (20.0 if self.domain == "amplitude" else 10.0)))

    def extra_repr(self) -> str:
        what = (f"gain_db={self.gain_db}, domain={self.domain!r}" if self.gain_db
                else f"factor={self.factor}")
        return f"{what}, " + super().extra_repr()
