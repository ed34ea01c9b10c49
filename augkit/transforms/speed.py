"""Kaldi-style speed perturbation: pitch and tempo together, a factor per example."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ..functional.resample import resample
from ._base import Params, RandomTransform, check_range


class Speed(RandomTransform):
    """Speed perturbation: play each example ``factor`` times as fast, pitch included.

    As Kaldi's speed perturbation (``sox speed``): the waveform is resampled so
    that factor 1.1 plays 10% faster and 10% (1.65 semitones) higher. Output
    sample ``j`` is the input at position ``j * factor``, read by band-limited
    windowed-sinc interpolation (:func:`augkit.functional.resample.resample`;
    16 zero crossings, Kaiser window, cutoff ``0.9 * min(1, 1 / factor)`` of the
    input's Nyquist frequency, so speeding up does not alias). The length is
    kept: the output holds the first ``T`` samples of the perturbed signal, zero
    after its end when it is shorter (``factor > 1``); with ``factor < 1`` the
    end of the input is cut. In a training chain, put ``Speed`` before the
    random crop so the crop sees real audio.

    Factors are drawn per example **log-uniformly** in ``factor`` (a factor and
    its inverse are equally likely), one per example shared by its channels.
    Kaldi's recipe uses the three factors 0.9, 1.0 and 1.1; here any factor in
    the range. The identity is only approximate (the interpolation low-passes
    at 0.9 of Nyquist), so examples not drawn are passed through unchanged.

    Args:
        factor: Range of the speed factor, ``> 0``; a number means ``(v, v)``.
            (Default: ``(0.9, 1.1)``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One factor for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.

    Example:
        >>> t = Speed(factor=(0.9, 1.1), p=1.0)
        >>> t(torch.randn(3, 2, 1600)).shape
        torch.Size([3, 2, 1600])
    """

    ndims = (3,)
    expects = "a waveform batch (B, C, T)"
    gate = "output"  # resampling is only approximately the identity
    cases = (dict(kwargs={}, input="wave", changes="always"),
             dict(kwargs=dict(factor=(0.5, 2.0)), input="wave", changes="always"))

    def __init__(self, factor: tuple[float, float] | float = (0.9, 1.1), p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.factor = check_range("factor", factor)
        if self.factor[0] <= 0:
            raise ValueError(f"factor must be > 0, got {factor!r}")

    def sample(self, shape, n, device, generator) -> Params:
        return {"factor": F.log_uniform((n,), *self.factor, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        y = resample(x, params["factor"], x.shape[-1], max_factor=self.factor[1])
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, " + super().extra_repr()
