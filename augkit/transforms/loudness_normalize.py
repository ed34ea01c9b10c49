"""Scale waveforms to a target integrated loudness (ITU-R BS.1770-4)."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import check_int, check_number
from ._normalizer import Normalizer


class LoudnessNormalize(Normalizer):
    """Scale each example to ``target_lufs`` integrated loudness (ITU-R BS.1770-4).

    Measures every example's integrated loudness with
    :func:`augkit.functional.integrated_loudness` (K-weighting with pyloudnorm's
    biquads for any sample rate, 400 ms blocks with 75 % overlap, absolute gate
    -70 LUFS, relative gate -10 LU, channel weights 1.0 for L/R/C and 1.41 for
    Ls/Rs), then applies the gain ``10 ** ((target_lufs - L) / 20)``, one per
    example, shared by its channels: ``pyloudnorm.Meter(sample_rate)`` and
    ``pyloudnorm.normalize.loudness`` on each example alone. Deterministic, the
    same in ``train()`` and ``eval()``; no clipping is applied (the output may
    exceed 1).

    Clips shorter than one 400 ms block (``lengths < 0.4 * sample_rate``) and
    silent clips (every block gated out) pass unchanged. With ``lengths`` only
    the valid samples are measured and scaled; the padding stays as it is.

    Args:
        sample_rate: Sample rate in Hz; ``sample_rate`` has no default.
        target_lufs: Loudness to reach, in LUFS. (Default: ``-23.0``, EBU R 128)

    Shape:
        ``(B, C, T)`` with ``C <= 5`` (or ``(B, T)``) -> same, same dtype;
        ``lengths``: ``(B,)`` valid samples.

    Example:
        >>> x = 0.05 * torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(0))
        >>> y = LoudnessNormalize(16000, target_lufs=-20.0)(x)
        >>> ak.functional.integrated_loudness(y, 16000).round(decimals=2)
        tensor([-20., -20.])
    """

    ndims = (2, 3)
    expects = "waveforms (B, C, T) with C <= 5, or (B, T)"

    def __init__(self, sample_rate: int, target_lufs: float = -23.0) -> None:
        super().__init__()
        self.sample_rate = check_int("sample_rate", sample_rate, 1)
        self.target_lufs = check_number("target_lufs", target_lufs)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C, T)`` -> ``(B, C, T)``; ``lengths`` ``(B,)`` valid samples."""
        self.check(x, lengths)
        return F.loudness_normalize(x, self.sample_rate, self.target_lufs, lengths)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, target_lufs={self.target_lufs}"
