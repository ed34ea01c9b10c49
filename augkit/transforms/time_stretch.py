"""Per-example time stretch (tempo change, pitch kept) with a phase vocoder."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ..functional.phase_vocoder import time_stretch
from ._base import Params, RandomTransform, check_int, check_range


class TimeStretch(RandomTransform):
    """Change each example's tempo by ``rate`` and keep its pitch.

    ``rate > 1`` is faster and shorter, ``rate < 1`` slower and longer (the
    torchaudio convention: ``rate=1.25`` plays in 80% of the time). A phase
    vocoder (:func:`augkit.functional.phase_vocoder.time_stretch`, batched, one
    rate per example) reads the STFT at ``rate`` times the speed, interpolating
    magnitudes and accumulating phase advances locked to spectral peaks
    (identity phase locking), and resynthesises by overlap-add. The length is
    kept: the output holds the first ``T`` samples of the stretched signal
    (``T / rate`` long), zero after its end when it is shorter; with
    ``rate < 1`` the end of the input is cut. In a training chain, put
    ``TimeStretch`` before the random crop so the crop sees real audio.

    The STFT sizes are in samples, with no sample rate: the defaults
    ``n_fft=512``, ``hop_length=128`` are 32 ms / 8 ms at 16 kHz; for 44.1 or
    48 kHz audio ``n_fft=2048, hop_length=512`` keeps about the same times.
    Transients are smeared over about one window (a click lands within a hop
    of its place); artefacts grow with ``|log(rate)|``.

    Rates are drawn per example **log-uniformly** in ``rate`` (a rate and its
    inverse are equally likely), one per example shared by its channels. The
    identity is only approximate, so examples not drawn are passed through
    unchanged.

    Args:
        rate: Range of the speed-up, ``> 0``; a number means ``(v, v)``.
            (Default: ``(0.8, 1.25)``)
        n_fft: STFT size in samples. (Default: ``512``)
        hop_length: STFT hop in samples, at most ``n_fft // 2``. (Default: ``n_fft // 4``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One rate for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = TimeStretch(rate=(0.8, 1.25), p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # STFT resynthesis is only approximately the identity
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs=dict(rate=(0.5, 2.0), n_fft=256, hop_length=64), input="wave",
                  changes="always"))

    def __init__(self, rate: tuple[float, float] | float = (0.8, 1.25), n_fft: int = 512,
                 hop_length: int | None = None, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.rate = check_range("rate", rate)
        if self.rate[0] <= 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.n_fft = check_int("n_fft", n_fft, 4)
        self.hop_length = (self.n_fft // 4 if hop_length is None
                           else check_int("hop_length", hop_length, 1))
        if self.hop_length > self.n_fft // 2:
            raise ValueError(f"hop_length must be at most n_fft // 2 = {self.n_fft // 2}, "
                             f"got {hop_length}")

    def sample(self, shape, n, device, generator) -> Params:
        return {"rate": F.log_uniform((n,), *self.rate, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        y = time_stretch(x, params["rate"], x.shape[-1], self.n_fft, self.hop_length)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"rate={self.rate}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
                + super().extra_repr())
