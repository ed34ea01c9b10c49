"""Backbones for spectrogram classifiers: a registry of builders and one factory.

A backbone maps ``(B, in_chans, n_mels, frames)`` of any size to logits
``(B, num_classes)``::

    from augkit.backbones import create_backbone, list_backbones

    list_backbones()                                   # ['cnn_small', 'resnet18', ...]
    model = create_backbone("resnet18", num_classes=50, in_chans=1)
    model = create_backbone("resnet18", 50, pretrained="resnet18.safetensors")
"""

from importlib.util import find_spec

for _dep in ("timm", "safetensors"):  # an extra, not the core install: say so in one line
    if find_spec(_dep) is None:
        raise ImportError(f"augkit.backbones needs {_dep}: pip install 'augkit[backbones]'")

from ._adapter import InputAdapter  # noqa: E402
from ._factory import create_backbone  # noqa: E402
from ._registry import list_backbones, register_backbone  # noqa: E402

__all__ = ["InputAdapter", "create_backbone", "list_backbones", "register_backbone"]
