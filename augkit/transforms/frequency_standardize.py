"""Per-frequency standardisation with statistics fitted once on training data."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import check_int, check_number
from ._normalizer import Normalizer


class FrequencyStandardize(Normalizer):
    """``(x - mean[f]) / max(std[f], eps)`` with per-frequency statistics fitted on data.

    AST / PANNs style dataset normalisation: the mean and the population
    standard deviation of every frequency bin over all frames of the training
    set, fitted once with :meth:`fit` (streaming, batch by batch, float64
    Chan et al. updates) and then fixed. The reference is numpy's
    ``mean``/``std`` over the concatenated frames. Fit on the training split
    only. The statistics are buffers, in the ``state_dict``, so they are saved
    with a model or a run and move with ``.to(device)``. Deterministic, the same
    in ``train()`` and ``eval()``; with ``lengths`` the padded frames are set to
    0 afterwards.

    Args:
        n_freq: Number of frequency bins ``F`` (e.g. ``n_mels``); ``n_freq`` has no
            default.
        eps: Floor on the standard deviation. (Default: ``1e-5``)

    Attributes:
        mean: ``(F,)`` float64 buffer, the fitted mean per bin.
        std: ``(F,)`` float64 buffer, the fitted standard deviation (``ddof=0``).
        count: int64 scalar buffer, frames seen by :meth:`fit`; 0 means unfitted.

    Raises:
        ValueError: In ``forward``, before any :meth:`fit` (or a loaded
            ``state_dict`` with ``count > 0``), or when ``x.shape[-2] != n_freq``.

    Shape:
        ``(B, C, F, T)`` or ``(B, F, T)`` -> same, same dtype; ``lengths``: ``(B,)``
        valid frames.

    Example:
        >>> fs = FrequencyStandardize(2).fit(torch.tensor([[[[0.0, 2.0], [10.0, 30.0]]]]))
        >>> fs.mean.tolist(), fs.std.tolist(), int(fs.count)
        ([1.0, 20.0], [1.0, 10.0], 2)
        >>> fs(torch.tensor([[[[1.0], [40.0]]]]))
        tensor([[[[0.],
                  [2.]]]])
    """

    def __init__(self, n_freq: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_freq = check_int("n_freq", n_freq, 1)
        self.eps = check_number("eps", eps, 0.0, low_open=True)
        self.register_buffer("mean", torch.zeros(self.n_freq, dtype=torch.float64))
        self.register_buffer("std", torch.zeros(self.n_freq, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))
        self._fitted = False
        self.register_load_state_dict_post_hook(_after_load)

    def _check_freq(self, x: Tensor, lengths: Tensor | None) -> None:
        self.check(x, lengths)
        if x.shape[-2] != self.n_freq:
            raise ValueError(f"FrequencyStandardize(n_freq={self.n_freq}) got {x.shape[-2]} "
                             f"frequency bins (shape {tuple(x.shape)}, F is dim -2)")

    @torch.no_grad()
    def fit(self, x: Tensor, lengths: Tensor | None = None) -> FrequencyStandardize:
        """Add a batch's frames to the statistics; returns ``self``.

        Args:
            x: Training features ``(B, C, F, T)`` or ``(B, F, T)``; every ``(b, c, t)``
                is one frame.
            lengths: Valid frames per example ``(B,)``; only those count.
        """
        self._check_freq(x, lengths)
        n_b, mean_b, m2_b = F.frame_moments(x, lengths)
        f64 = torch.float64
        n_a, mean_a = self.count.to(f64), self.mean.to(f64)
        m2_a = self.std.to(f64).square() * n_a
        n = n_a + n_b
        w = n_b / n.clamp_min(1)
        delta = mean_b - mean_a
        m2 = m2_a + m2_b + delta.square() * n_a * w
        self.mean.copy_(mean_a + delta * w)
        self.std.copy_((m2 / n.clamp_min(1)).sqrt())
        self.count.copy_(n.round())
        self._fitted = True
        return self

    def reset(self) -> FrequencyStandardize:
        """Forget the statistics (back to unfitted); returns ``self``."""
        self.mean.zero_()
        self.std.zero_()
        self.count.zero_()
        self._fitted = False
        return self

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C, F, T)`` -> ``(B, C, F, T)``; ``lengths`` ``(B,)`` valid frames."""
        self._check_freq(x, lengths)
        if not self._fitted:
            raise ValueError("FrequencyStandardize is not fitted: call .fit(features) on the "
                             "training split first (or load a state_dict that has the stats)")
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        mean = self.mean.to(dtype)[:, None]
        std = self.std.to(dtype).clamp_min(self.eps)[:, None]
        y = (x.to(dtype) - mean) / std
        mask = F.valid_mask(x, lengths)
        if mask is not None:
            y = torch.where(mask, y, 0.0)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"n_freq={self.n_freq}, eps={self.eps}"


def _after_load(module: FrequencyStandardize, incompatible_keys) -> None:
    """A loaded ``state_dict`` with frames counted makes the module fitted (a sync, once)."""
    module._fitted = bool(module.count.item() > 0)
