"""Per-example dropped chunks: 1..n stretches of the waveform zeroed or noise-filled."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_int, check_range

FILLS = ("zero", "noise")


class DropChunk(RandomTransform):
    """Zero (or fill with noise) 1..n chunks of each example's waveform.

    SpeechBrain's ``DropChunk``, batched: each example gets ``count`` chunks
    (uniform on the integers in ``n_chunks``), each ``width`` samples long
    (uniform on the integers in ``chunk_length``, at most the example's valid
    length) at a uniform position inside its valid samples (``lengths``; the
    padding after them is never touched). Chunks may overlap. ``fill="noise"``
    fills them with white noise at ``noise_factor`` times the example's RMS
    (over its channels and valid samples) instead of zeros. Channels share the
    chunks. Parameters: ``width`` ``(B, hi)`` (0 for chunks beyond ``count``),
    ``position`` ``(B, hi)`` in ``[0, 1)`` (the start as a fraction of the room
    ``length - width + 1``), ``count`` ``(B,)``.

    Args:
        n_chunks: ``(low, high)`` chunks per example, integers ``0 <= low <= high``,
            ``high >= 1``. (Default: ``(1, 5)``)
        chunk_length: ``(low, high)`` samples per chunk, integers ``>= 1``.
            (Default: ``(100, 1000)``)
        fill: ``"zero"`` or ``"noise"``. (Default: ``"zero"``)
        noise_factor: Noise RMS over the example's RMS, for ``fill="noise"``.
            (Default: ``1.0``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged; ``lengths``: ``(B,)``.

    Example:
        >>> t = DropChunk(n_chunks=(1, 1), chunk_length=(3, 3), p=1.0)
        >>> int((t(torch.ones(2, 1, 10)) == 0).sum())
        6
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    identity = {"width": 0}
    uses_lengths = True
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs=dict(fill="noise", chunk_length=(10, 50)), input="wave",
                  changes="always"))

    def __init__(self, n_chunks: tuple[int, int] = (1, 5),
                 chunk_length: tuple[int, int] = (100, 1000), fill: str = "zero",
                 noise_factor: float = 1.0, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.n_chunks = self._pair("n_chunks", n_chunks, 0, 1)
        self.chunk_length = self._pair("chunk_length", chunk_length, 1, 1)
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        self.fill = fill
        self.noise_factor = check_range("noise_factor", noise_factor, low=0.0)[0]

    @staticmethod
    def _pair(name: str, value, low: int, high_low: int) -> tuple[int, int]:
        if not (isinstance(value, (tuple, list)) and len(value) == 2):
            raise ValueError(f"{name} must be a (low, high) pair of integers, got {value!r}")
        lo, hi = check_int(name, value[0], low), check_int(name, value[1], high_low)
        if lo > hi:
            raise ValueError(f"{name} must have low <= high, got {value!r}")
        return lo, hi

    def sample(self, shape, n, device, generator) -> Params:
        (c_lo, c_hi), (w_lo, w_hi) = self.n_chunks, self.chunk_length
        count = c_lo + F.randint_below(torch.full((n,), c_hi - c_lo + 1, device=device),
                                       device, generator)
        width = w_lo + F.randint_below(torch.full((n, c_hi), w_hi - w_lo + 1, device=device),
                                       device, generator)
        params = {"count": count,
                  "width": torch.where(torch.arange(c_hi, device=device) < count[:, None],
                                       width, 0),
                  "position": torch.rand((n, c_hi), device=device, generator=generator)}
        if self.fill == "noise":
            params["noise"] = torch.randn((n, *shape[1:]), device=device, generator=generator)
        return params

    def apply(self, x: Tensor, params: Params, lengths: Tensor | None = None) -> Tensor:
        valid = (torch.full((x.shape[0],), x.shape[-1], device=x.device) if lengths is None
                 else lengths.to(x.device).clamp(0, x.shape[-1]))
        width = torch.minimum(params["width"], valid[:, None])
        room = (valid[:, None] - width + 1).clamp_min(1)
        start = torch.minimum((params["position"] * room).long(), room - 1)
        if self.fill == "zero":
            return F.mask_along_axis(x, start, width, axis=-1, value=0.0)
        pos = torch.arange(x.shape[-1], device=x.device)
        hit = ((pos >= start[..., None]) & (pos < (start + width)[..., None])).any(1)[:, None]
        rms = F.signal_rms(x, lengths) * self.noise_factor
        noise = params["noise"] * F.per_example(rms, x)
        return torch.where(hit, noise.to(x.dtype), x)

    def extra_repr(self) -> str:
        return (f"n_chunks={self.n_chunks}, chunk_length={self.chunk_length}, "
                f"fill={self.fill!r}, " + super().extra_repr())
