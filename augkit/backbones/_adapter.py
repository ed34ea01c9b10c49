"""Resize a spectrogram batch to the fixed RGB-like input an ImageNet model was trained on."""

from __future__ import annotations

import numbers

from torch import Tensor, nn


def _pair(value) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
                       for v in value)):
        raise ValueError(f"size must be a positive int or an (height, width) pair, got {value!r}")
    return int(value[0]), int(value[1])


class InputAdapter(nn.Module):
    """Repeat a spectrogram to ``out_chans`` channels and average-pool it to ``size``.

    Reproduces the usual "spectrogram as an image" input: a 1-channel mel
    spectrogram becomes a 3-channel ``224 x 224`` picture via
    ``nn.AdaptiveAvgPool2d``. The pooling downsamples larger inputs by averaging
    and upsamples smaller ones by repetition. Usually you do not need it: timm
    backbones take 1-channel inputs of any size directly.

    Args:
        out_chans: Channels of the output. (Default: ``3``)
        size: Output ``(height, width)``, or one int for a square. (Default: ``224``)

    Shape:
        - Input: ``(B, C, F, T)`` with ``C`` equal to 1 or ``out_chans``.
        - Output: ``(B, out_chans, size[0], size[1])``.

    Example:
        >>> import torch
        >>> adapter = InputAdapter(out_chans=3, size=224)
        >>> adapter(torch.randn(2, 1, 128, 300)).shape
        torch.Size([2, 3, 224, 224])
    """

    def __init__(self, out_chans: int = 3, size: int | tuple[int, int] = 224) -> None:
        super().__init__()
        if isinstance(out_chans, bool) or not isinstance(out_chans, numbers.Integral) \
                or out_chans < 1:
            raise ValueError(f"out_chans must be an integer >= 1, got {out_chans!r}")
        self.out_chans = int(out_chans)
        self.size = _pair(size)
        self.pool = nn.AdaptiveAvgPool2d(self.size)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, C, F, T)`` to ``(B, out_chans, size[0], size[1])``."""
        if x.ndim != 4:
            raise ValueError(f"InputAdapter expects (B, C, F, T), got shape {tuple(x.shape)}")
        channels = x.shape[1]
        if channels not in (1, self.out_chans):
            raise ValueError(
                f"InputAdapter expects 1 or {self.out_chans} channels, got shape {tuple(x.shape)}")
        x = self.pool(x)  # pooling is per channel, so pool once before repeating
        if channels != self.out_chans:
            x = x.repeat(1, self.out_chans, 1, 1)
        return x

    def extra_repr(self) -> str:
        return f"out_chans={self.out_chans}, size={self.size}"
