"""The registered backbones: thin timm entries and a small CPU-friendly CNN.

Every backbone maps ``(B, in_chans, n_mels, frames)`` of any size to logits
``(B, num_classes)``: timm's CNNs end in global average pooling, so no resize is
needed.
"""

from __future__ import annotations

import warnings

import timm
from timm.models import get_pretrained_cfg
from torch import Tensor, nn

from ._registry import register_backbone
from ._weights import hub_weights_file


def create_timm(model_name: str, num_classes: int, in_chans: int, pretrained: bool = False,
                **kwargs) -> nn.Module:
    """Build a timm model; with ``pretrained=True`` load timm's default weights.

    The weights file is located (or fetched) by :func:`hub_weights_file`, which
    fails fast offline, then handed to timm, which adapts the input conv to
    ``in_chans`` and drops the classifier when ``num_classes`` differs.
    """
    if not pretrained:
        return timm.create_model(model_name, pretrained=False, num_classes=num_classes,
                                 in_chans=in_chans, **kwargs)
    weights = hub_weights_file(model_name)
    model = timm.create_model(model_name, pretrained=True, num_classes=num_classes,
                              in_chans=in_chans, pretrained_cfg_overlay={"file": str(weights)},
                              **kwargs)
    if num_classes != get_pretrained_cfg(model_name).num_classes:
        warnings.warn(f"{model_name}: pretrained classifier does not match "
                      f"num_classes={num_classes}; the head was re-initialised", stacklevel=4)
    return model


@register_backbone
def resnet18(num_classes: int, in_chans: int, pretrained: bool = False, **kwargs) -> nn.Module:
    """ResNet-18 from timm (11.2M parameters at 1000 classes)."""
    return create_timm("resnet18", num_classes, in_chans, pretrained, **kwargs)


@register_backbone
def resnext101_32x8d(num_classes: int, in_chans: int, pretrained: bool = False, **kwargs
                     ) -> nn.Module:
    """ResNeXt-101 32x8d from timm (88.8M parameters at 1000 classes)."""
    return create_timm("resnext101_32x8d", num_classes, in_chans, pretrained, **kwargs)


class CNNSmall(nn.Module):
    """Four conv-BN-ReLU-max-pool blocks, global average pooling and a linear head.

    Channels grow ``width, 2*width, 4*width, 4*width``; with ``width=32`` that is
    about 240k parameters. Pooling uses ``ceil_mode`` so inputs of any size, even
    ``1 x 1``, work.

    Args:
        num_classes: Number of logits.
        in_chans: Channels of the input.
        width: Channels of the first block. (Default: ``32``)

    Shape:
        - Input: ``(B, in_chans, F, T)``.
        - Output: ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, in_chans: int = 1, width: int = 32) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {width!r}")
        chans = [in_chans, width, 2 * width, 4 * width, 4 * width]
        self.features = nn.Sequential(*(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                          nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                          nn.MaxPool2d(2, ceil_mode=True))
            for c_in, c_out in zip(chans[:-1], chans[1:], strict=True)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chans[-1], num_classes)
        self.num_features = chans[-1]

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, F, T)`` -> pooled features ``(B, num_features)``."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


@register_backbone
def cnn_small(num_classes: int, in_chans: int, width: int = 32) -> nn.Module:
    """A ~240k-parameter CNN for quick experiments and tests (no pretrained weights)."""
    return CNNSmall(num_classes, in_chans, width=width)
