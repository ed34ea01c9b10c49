"""Batched random augmentations for waveforms and spectrograms."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F
from ._base import (
    Params,
    RandomTransform,
    check_int,
    check_ndim,
    check_range,
    where_applied,
)

__all__ = [
    "TimeMasking",
    "FrequencyMasking",
    "GaussianNoise",
    "Gain",
    "RandomCrop",
    "TimeShift",
    "PolarityInversion",
    "Mixup",
]


class _AxisMasking(RandomTransform):
    axis = -1
    ndims = (3, 4)
    expects = "a spectrogram (B, C, F, T) (or (B, F, T))"

    def __init__(self, max_width: int, num_masks: int = 1, value: float | str = 0.0,
                 p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.max_width = check_int("max_width", max_width, 0)
        self.num_masks = check_int("num_masks", num_masks, 1)
        if not (value == "mean" or isinstance(value, (int, float))):
            raise ValueError(f"value must be a number or 'mean', got {value!r}")
        self.value = value

    def sample(self, shape, n, device, generator) -> Params:
        size = shape[self.axis]
        m = (n, self.num_masks)
        # Width ~ U{0..max_width} (capped at the axis size), start ~ U{0..size - width}.
        cap = min(self.max_width, size)
        width = (torch.rand(m, device=device, generator=generator) * (cap + 1)).long()
        width = width.clamp_max(cap)
        start = F.randint_below(size - width + 1, device, generator)
        return {"start": start, "width": width}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        width = params["width"] * params["apply"].unsqueeze(-1)
        return F.mask_along_axis(x, params["start"], width, self.axis, self.value)

    def extra_repr(self) -> str:
        return (f"max_width={self.max_width}, num_masks={self.num_masks}, "
                f"value={self.value!r}, " + super().extra_repr())


class TimeMasking(_AxisMasking):
    """SpecAugment time masks, drawn per example.

    Each applied example gets ``num_masks`` masks of width ``U{0..max_width}`` frames
    at uniform positions, filled with ``value`` (a number, or ``"mean"`` for the
    example's mean). Masks are shared across channels.

    Args:
        max_width: Largest mask width in frames.
        num_masks: Masks per example. (Default: ``1``)
        value: Fill value or ``"mean"``. (Default: ``0.0``)
        p: Chance per example. (Default: ``1.0``, as in SpecAugment)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, F, T)`` -> ``(B, C, F, T)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> TimeMasking(20)(torch.ones(2, 1, 64, 100), generator=g).shape
        torch.Size([2, 1, 64, 100])
    """

    axis = -1


class FrequencyMasking(_AxisMasking):
    """SpecAugment frequency masks; as :class:`TimeMasking` along the mel axis ``F``."""

    axis = -2


class GaussianNoise(RandomTransform):
    """Additive Gaussian noise at a per-example SNR (waveforms) or std (spectrograms).

    Give exactly one of ``snr_db`` or ``std``:

    - ``snr_db=(lo, hi)``: for waveforms; each example's noise is scaled so
      the signal-to-noise ratio is ``U(lo, hi)`` dB of that example's power.
    - ``std=s`` or ``std=(lo, hi)``: noise of a fixed (or per-example uniform)
      standard deviation, e.g. ``std=0.01`` on a power mel as in the tutorial.

    The noise itself is part of the parameters, so a replay is exact.

    Args:
        snr_db: SNR range in dB.
        std: Noise standard deviation, a number or a range.
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw of the scale for the whole batch (the noise
            itself is always independent). (Default: ``False``)

    Shape:
        ``(B, C, T)`` or ``(B, C, F, T)``, unchanged.
    """

    def __init__(self, snr_db: tuple[float, float] | float | None = None,
                 std: tuple[float, float] | float | None = None, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if (snr_db is None) == (std is None):
            raise ValueError("GaussianNoise needs exactly one of snr_db (waveforms) or std")
        self.snr_db = None if snr_db is None else check_range("snr_db", snr_db)
        self.std = None if std is None else check_range("std", std, low=0.0)

    def generate_params(self, shape, device="cpu", generator=None) -> Params:
        params = super().generate_params(shape, device, generator)
        params["noise"] = torch.randn(shape, device=device, generator=generator)
        return params

    def sample(self, shape, n, device, generator) -> Params:
        key, (lo, hi) = ("snr_db", self.snr_db) if self.snr_db else ("std", self.std)
        return {key: F.uniform((n,), lo, hi, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        if "snr_db" in params:
            snr = where_applied(params, params["snr_db"], float("inf"))
            return F.add_noise_snr(x, params["noise"], snr)
        return F.add_noise(x, params["noise"], where_applied(params, params["std"], 0.0))

    def extra_repr(self) -> str:
        what = f"snr_db={self.snr_db}" if self.snr_db else f"std={self.std}"
        return f"{what}, " + super().extra_repr()


GAIN_DOMAINS = ("amplitude", "power", "db")


class Gain(RandomTransform):
    """Per-example gain, as a dB range or a linear factor range.

    Give exactly one of ``gain_db`` or ``factor``:

    - ``gain_db=(lo, hi)``: ``U(lo, hi)`` dB, applied as the ``domain`` needs:
      ``"amplitude"`` (waveforms, magnitude spectrograms) multiplies by
      ``10 ** (g / 20)``, ``"power"`` by ``10 ** (g / 10)``, ``"db"`` adds ``g``.
    - ``factor=(lo, hi)``: multiply by ``U(lo, hi)``, e.g. ``(0.8, 1.2)`` on a
      power mel as in the tutorial.

    Args:
        gain_db: Gain range in dB.
        factor: Linear factor range.
        domain: What the input holds, for ``gain_db``. (Default: ``"amplitude"``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` or ``(B, C, F, T)``, unchanged.
    """

    def __init__(self, gain_db: tuple[float, float] | float | None = None,
                 factor: tuple[float, float] | float | None = None, domain: str = "amplitude",
                 p: float = 0.5, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if (gain_db is None) == (factor is None):
            raise ValueError("Gain needs exactly one of gain_db or factor")
        if domain not in GAIN_DOMAINS:
            raise ValueError(f"domain must be one of {GAIN_DOMAINS}, got {domain!r}")
        self.gain_db = None if gain_db is None else check_range("gain_db", gain_db)
        self.factor = None if factor is None else check_range("factor", factor, low=0.0)
        self.domain = domain

    def sample(self, shape, n, device, generator) -> Params:
        key, (lo, hi) = ("gain_db", self.gain_db) if self.gain_db else ("factor", self.factor)
        return {key: F.uniform((n,), lo, hi, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        if "factor" in params:
            return F.gain(x, where_applied(params, params["factor"], 1.0))
        g = where_applied(params, params["gain_db"], 0.0)
        if self.domain == "db":
            return F.gain(x, g, additive=True)
        return F.gain(x, torch.pow(10.0, g / (20.0 if self.domain == "amplitude" else 10.0)))

    def extra_repr(self) -> str:
        what = (f"gain_db={self.gain_db}, domain={self.domain!r}" if self.gain_db
                else f"factor={self.factor}")
        return f"{what}, " + super().extra_repr()


class RandomCrop(RandomTransform):
    """Per-example random crops of a fixed length along the last axis.

    Inputs shorter than ``length`` are zero-padded at the end first, so the
    output always has ``length`` samples. Examples not drawn by ``p`` get the
    centre crop. In ``eval()`` mode the input passes unchanged (full length),
    as for every transform; take crops for evaluation explicitly.

    Args:
        length: Output length in samples (or frames, for spectrograms).
        p: Chance per example of a random (rather than centre) crop. (Default: ``1.0``)
        same_on_batch: One offset for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` -> ``(B, C, length)``; ``(B, C, F, T)`` -> ``(B, C, F, length)``.
    """

    def __init__(self, length: int, p: float = 1.0, same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        self.length = check_int("length", length, 1)

    def sample(self, shape, n, device, generator) -> Params:
        room = max(shape[-1] - self.length, 0)
        high = torch.full((n,), room + 1, device=device, dtype=torch.long)
        return {"offset": F.randint_below(high, device, generator)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        if x.shape[-1] < self.length:
            x = torch.nn.functional.pad(x, (0, self.length - x.shape[-1]))
        centre = torch.full_like(params["offset"], (x.shape[-1] - self.length) // 2)
        offset = torch.where(params["apply"], params["offset"], centre)
        return F.crop(x, offset, self.length)

    def extra_repr(self) -> str:
        return f"length={self.length}, " + super().extra_repr()


class TimeShift(RandomTransform):
    """Shift each example in time by up to ``max_shift``.

    Args:
        max_shift: Largest shift, a fraction of the length if a float in
            ``(0, 1]``, else samples (int). Shifts are uniform in ``[-max, max]``.
        rollover: Wrap samples around (``True``) or fill with zeros. (Default: ``True``)
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One shift for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)`` or ``(B, C, F, T)``, unchanged.
    """

    def __init__(self, max_shift: float | int = 0.5, rollover: bool = True, p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if isinstance(max_shift, float):
            if not 0.0 < max_shift <= 1.0:
                raise ValueError(f"max_shift as a fraction must be in (0, 1], got {max_shift}")
        else:
            check_int("max_shift", max_shift, 0)
        self.max_shift, self.rollover = max_shift, bool(rollover)

    def sample(self, shape, n, device, generator) -> Params:
        m = (int(self.max_shift * shape[-1]) if isinstance(self.max_shift, float)
             else self.max_shift)
        m = min(m, shape[-1])
        high = torch.full((n,), 2 * m + 1, device=device, dtype=torch.long)
        return {"shift": F.randint_below(high, device, generator) - m}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        amount = params["shift"] * params["apply"]
        return F.shift(x, amount, self.rollover)

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, rollover={self.rollover}, " + super().extra_repr()


class PolarityInversion(RandomTransform):
    """Multiply each drawn example by -1.

    Args:
        p: Chance per example. (Default: ``0.5``)
        same_on_batch: One draw for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, T)``, unchanged.
    """

    def apply(self, x: Tensor, params: Params) -> Tensor:
        sign = where_applied(params, torch.full(params["apply"].shape, -1.0,
                                                device=x.device), 1.0)
        return F.gain(x, sign)


class Mixup(RandomTransform):
    """Mixup: blend each example (and its target) with a partner from the batch.

    ``lam ~ Beta(alpha, alpha)`` per example, partners from a random
    permutation of the batch; examples not drawn by ``p`` keep ``lam = 1``.

    Args:
        alpha: Beta concentration. (Default: ``0.4``)
        num_classes: Needed when targets are class indices.
        p: Chance per example. (Default: ``1.0``)
        same_on_batch: One ``lam`` for the whole batch. (Default: ``False``)

    Shape:
        - ``x``: ``(B, ...)``; ``target``: ``(B,)`` int64 or ``(B, K)`` soft targets.
        - Returns ``(x_mixed (B, ...), target_soft (B, K))``.

    Example:
        >>> mix = Mixup(alpha=0.4, num_classes=10)
        >>> x, y = mix(torch.randn(8, 1, 64, 100), torch.randint(0, 10, (8,)))
        >>> y.shape
        torch.Size([8, 10])
    """

    ndims = tuple(range(2, 8))
    expects = "a batch (B, ...)"

    def __init__(self, alpha: float = 0.4, num_classes: int | None = None, p: float = 1.0,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.num_classes = None if num_classes is None else check_int("num_classes",
                                                                      num_classes, 1)

    def generate_params(self, shape, device="cpu", generator=None) -> Params:
        params = super().generate_params(shape, device, generator)
        params["perm"] = torch.randperm(shape[0], device=device, generator=generator)
        return params

    def sample(self, shape, n, device, generator) -> Params:
        return {"lam": F.beta(self.alpha, (n,), device, generator)}

    def soft_targets(self, target: Tensor) -> Tensor:
        """``(B,)`` class indices or ``(B, K)`` soft targets -> ``(B, K)`` float."""
        if target.ndim == 2:
            return target.float()
        if self.num_classes is None:
            raise ValueError("Mixup needs num_classes when targets are class indices")
        return torch.nn.functional.one_hot(target.long(), self.num_classes).float()

    def apply(self, x: Tensor, params: Params, target: Tensor | None = None):
        lam = where_applied(params, params["lam"], 1.0)
        return F.mix(x, target, lam, params["perm"])

    def forward(self, x: Tensor, target: Tensor, params: Params | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Mix a batch; in ``eval()`` mode returns ``(x, soft targets)`` unchanged."""
        check_ndim("Mixup", x, self.ndims, self.expects)
        soft = self.soft_targets(target)
        if not self.training:
            return x, soft
        params = self.resolve_params(x, params, generator)
        return self.apply(x, params, soft)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, num_classes={self.num_classes}, " + super().extra_repr()

