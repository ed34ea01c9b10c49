"""Additive Gaussian noise at a per-example SNR or standard deviation."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_range


class GaussianNoise(RandomTransform):
    """Additive Gaussian noise at a per-example SNR (waveforms) or std (spectrograms).

    Give at most one of ``snr_db`` or ``std`` (neither: ``snr_db=(10, 40)``):

    - ``snr_db=(lo, hi)``: each example's noise is scaled so that the
      signal-to-noise ratio is ``U(lo, hi)`` dB of that example's power (mean
      square over its channels and samples; with ``lengths``, its valid samples
      only, and the padding stays silent); a silent example stays silent.
    - ``std=s`` or ``std=(lo, hi)``: noise of a fixed (or per-example uniform)
      standard deviation, e.g. ``std=0.01`` on a power mel as in the tutorial.

    The noise itself is a parameter (``params["noise"]``), so a replay is exact
    and ``same_on_batch`` shares it too.

    Args:
        snr_db: SNR range in dB. (Default: ``(10, 40)`` when ``std`` is not given)
        std: Noise standard deviation, a number or a range.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw (scale and noise) for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` or ``(B, C, F, T)``, unchanged.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> GaussianNoise(snr_db=(20, 20), p=1.0)(torch.ones(2, 1, 8), generator=g).shape
        torch.Size([2, 1, 8])
    """

    identity = {"snr_db": float("inf"), "std": 0.0}
    compute_drawn_only = False  # one pass over the batch: selecting would cost more
    uses_lengths = True
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs=dict(snr_db=(0, 20)), input="wave", changes="always"),
             dict(kwargs=dict(std=(0.01, 0.1)), input="spec", changes="always"))

    def __init__(self, snr_db: tuple[float, float] | float | None = None,
                 std: tuple[float, float] | float | None = None, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if snr_db is not None and std is not None:
            raise ValueError("GaussianNoise takes one of snr_db or std, not both")
        if snr_db is None and std is None:
            snr_db = (10.0, 40.0)
        self.snr_db = None if snr_db is None else check_range("snr_db", snr_db)
        self.std = None if std is None else check_range("std", std, low=0.0)

    def sample(self, shape, n, device, generator) -> Params:
        key, (lo, hi) = ("snr_db", self.snr_db) if self.snr_db else ("std", self.std)
        return {key: F.uniform((n,), lo, hi, device, generator),
                "noise": torch.randn((n, *shape[1:]), device=device, generator=generator)}

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        if "snr_db" in params:
            return F.add_noise_snr(x, params["noise"], params["snr_db"], lengths)
        return F.add_noise(x, params["noise"], params["std"])

    def extra_repr(self) -> str:
        what = f"snr_db={self.snr_db}" if self.snr_db else f"std={self.std}"
        return f"{what}, " + super().extra_repr()
