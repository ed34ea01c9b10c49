"""Backbones for spectrogram classifiers: a registry of builders and one factory.

A backbone maps ``(B, in_chans, n_mels, frames)`` of any size to logits
``(B, num_classes)``::

    from augkit.backbones import create_backbone, list_backbones

    list_backbones()                                   # ['cnn_small', 'resnet18', ...]
    model = create_backbone("resnet18", num_classes=50, in_chans=1)
    model = create_backbone("resnet18", 50, pretrained="resnet18.safetensors")
"""

from ._adapter import InputAdapter
from ._factory import create_backbone
from ._registry import list_backbones, register_backbone

__all__ = ["InputAdapter", "create_backbone", "list_backbones", "register_backbone"]
