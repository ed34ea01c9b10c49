"""Per-example aliasing: resample down with no low-pass, then back up."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_number, check_range


class Aliasing(RandomTransform):
    """Resample down to a rate drawn per example without a low-pass, and back up.

    As audiomentations' ``Aliasing``: each example is sampled at ``rate_hz``
    (drawn log-uniformly per example) by taking the input sample nearest each
    instant ``m / rate_hz`` (no anti-aliasing filter: content above
    ``rate_hz / 2`` folds back below it, a tone at ``f`` reappears at
    ``|f - k rate_hz|``), then brought back to ``sample_rate`` by linear
    interpolation (no anti-imaging filter either: images above ``rate_hz / 2``
    remain, attenuated). See :func:`augkit.functional.alias`.

    ``sample_rate`` has no default: rates are in Hz.

    Args:
        rate_hz: Range of the intermediate rate in Hz, in ``(0, sample_rate]``.
            (Default: ``(2000, 8000)``)
        sample_rate: Sample rate of the input in Hz.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One rate for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` (any ``(B, ..., T)``), unchanged.

    Example:
        >>> t = Aliasing(rate_hz=4000, sample_rate=16000, p=1.0)
        >>> t(torch.arange(8.0).view(1, 1, 8))
        tensor([[[0., 1., 2., 3., 4., 4., 4., 4.]]])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ..., T), e.g. waveforms (B, C, T)"
    gate = "output"
    cases = (dict(kwargs=dict(sample_rate=16000), input="wave", changes="always"),)

    def __init__(self, rate_hz: tuple[float, float] | float = (2000.0, 8000.0), *,
                 sample_rate: float, p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.sample_rate = check_number("sample_rate", sample_rate, 0.0, low_open=True)
        self.rate_hz = check_range("rate_hz", rate_hz)
        if not (0.0 < self.rate_hz[0] and self.rate_hz[1] <= self.sample_rate):
            raise ValueError(f"rate_hz must be > 0 and <= sample_rate = {self.sample_rate:g} "
                             f"Hz, got {rate_hz!r}")

    def sample(self, shape, n, device, generator) -> Params:
        return {"rate_hz": F.log_uniform((n,), *self.rate_hz, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.alias(x, params["rate_hz"], self.sample_rate)

    def extra_repr(self) -> str:
        return (f"rate_hz={self.rate_hz}, sample_rate={self.sample_rate:g}, "
                + super().extra_repr())
