"""BYOL-A's random resize crop of spectrograms, one batched grid_sample."""

from __future__ import annotations

from torch import Tensor

from .. import functional as F
from ._base import Params, RandomTransform, check_number, check_range


class RandomResizedCrop(RandomTransform):
    """BYOL-A's random resize crop (Niizumi et al., 2021), drawn per example.

    Each example's ``(F, T)`` spectrogram is put in the centre of a *virtual*
    canvas ``virtual_scale`` times its size, zeros around it: the canvas is
    never built, the zeros are what the sampler reads outside the input. A box
    of ``int(U(freq_scale) * F)`` bins by ``int(U(time_scale) * T)`` frames
    (clamped to ``[1, canvas]``) is placed uniformly at random in the canvas
    and resized back to ``(F, T)``: a box larger than the input zooms out (the
    content shrinks, zeros come in at the edges), a smaller one zooms in
    (stretches) along that axis. All examples go through one
    ``torch.nn.functional.grid_sample`` call with per-example affine grids.

    The defaults are BYOL-A's: ``virtual_crop_scale=(1.0, 1.5)`` (the canvas is
    as tall as the input and 1.5 times as long), ``freq_scale=(0.6, 1.5)`` and
    ``time_scale=(0.6, 1.5)``. BYOL-A applies it to normalised log-mels, where
    the zeros of the canvas are the mean level; on dB features (not
    normalised) the zeros are 0 dB. BYOL-A resizes the crop with bicubic
    interpolation; this uses bilinear (``align_corners=True`` as BYOL-A), which
    ``grid_sample`` does from the canvas directly and which does not overshoot.

    Args:
        virtual_scale: Canvas size per axis ``(freq ratio, time ratio)``, each
            ``>= 1``, or one ratio for both. Not a range. (Default: ``(1.0, 1.5)``)
        freq_scale: Range of the box height as a fraction of ``F``. (Default:
            ``(0.6, 1.5)``)
        time_scale: Range of the box length as a fraction of ``T``. (Default:
            ``(0.6, 1.5)``)
        p: Chance per example. (Default: ``0.5``; BYOL-A applies it always)
        same_on_batch: One box for the whole batch. (Default: ``False``)

    Shape:
        ``(B, C, F, T)`` (or ``(B, F, T)``), unchanged.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> RandomResizedCrop(p=1.0)(torch.randn(2, 1, 64, 96), generator=g).shape
        torch.Size([2, 1, 64, 96])
    """

    ndims = (3, 4)
    expects = "a spectrogram (B, C, F, T) (or (B, F, T))"
    gate = "output"  # bilinear resampling is an identity only up to rounding
    cases = (dict(kwargs={}, input="spec", changes="always"),
             dict(kwargs=dict(virtual_scale=1.2, freq_scale=(0.8, 1.0), time_scale=(0.5, 1.0)),
                  input="spec", changes="always"))

    def __init__(self, virtual_scale: tuple[float, float] | float = (1.0, 1.5),
                 freq_scale: tuple[float, float] | float = (0.6, 1.5),
                 time_scale: tuple[float, float] | float = (0.6, 1.5), p: float = 0.5,
                 same_on_batch: bool = False) -> None:
        super().__init__(p, same_on_batch)
        if not isinstance(virtual_scale, (tuple, list)):
            virtual_scale = (virtual_scale, virtual_scale)
        if len(virtual_scale) != 2:
            raise ValueError(f"virtual_scale must be a number or a (freq, time) pair, got "
                             f"{virtual_scale!r}")
        self.virtual_scale = tuple(check_number("virtual_scale", v, 1.0) for v in virtual_scale)
        self.freq_scale = check_range("freq_scale", freq_scale, low=0.0)
        self.time_scale = check_range("time_scale", time_scale, low=0.0)

    def canvas(self, shape) -> tuple[int, int]:
        """``(Fc, Tc)``: the virtual canvas for an input of ``shape`` (BYOL-A's ``int(s * r)``)."""
        return (max(int(shape[-2] * self.virtual_scale[0]), shape[-2]),
                max(int(shape[-1] * self.virtual_scale[1]), shape[-1]))

    def sample(self, shape, n, device, generator) -> Params:
        fc, tc = self.canvas(shape)
        u = F.uniform((n,), *self.freq_scale, device, generator)
        height = (u * shape[-2]).long().clamp(1, fc)
        u = F.uniform((n,), *self.time_scale, device, generator)
        width = (u * shape[-1]).long().clamp(1, tc)
        return {"top": F.randint_below(fc - height + 1, device, generator),
                "left": F.randint_below(tc - width + 1, device, generator),
                "height": height, "width": width}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        return F.resized_crop(x, params["top"], params["left"], params["height"],
                              params["width"], self.canvas(x.shape))

    def extra_repr(self) -> str:
        return (f"virtual_scale={self.virtual_scale}, freq_scale={self.freq_scale}, "
                f"time_scale={self.time_scale}, " + super().extra_repr())
