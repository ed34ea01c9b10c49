"""The one factory: ``create_backbone``."""

from __future__ import annotations

import inspect
import numbers
import os
from collections import OrderedDict

from torch import nn

from . import _models  # noqa: F401  (registers the built-in backbones)
from ._adapter import InputAdapter
from ._registry import get_builder
from ._weights import load_state_dict_into, read_state_dict


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def create_backbone(
    name: str,
    num_classes: int,
    in_chans: int = 1,
    pretrained: bool | str | os.PathLike = False,
    input_adapter: InputAdapter | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered backbone that maps spectrograms to logits.

    Args:
        name: A name from :func:`list_backbones`, e.g. ``"resnet18"``.
        num_classes: Number of logits, ``>= 1``.
        in_chans: Channels of the input spectrogram, ``>= 1``. With an
            ``input_adapter`` this is the adapter's input (1 or its ``out_chans``).
            (Default: ``1``)
        pretrained: ``False`` for random init; ``True`` for timm's hub weights
            (timm entries only; read from the local cache, fetched only if the hub
            answers, else a ``RuntimeError``); or the path of a local
            ``.safetensors``/``.pth``/``.pt``/``.bin`` file. The first conv is
            adapted to ``in_chans`` and a classifier of another size is
            re-initialised with a warning; any other mismatch raises.
            (Default: ``False``)
        input_adapter: Optional :class:`InputAdapter` put in front of the model,
            e.g. to feed ``3 x 224 x 224`` like an ImageNet image. The model is
            then built with ``in_chans=input_adapter.out_chans`` and returned as
            ``nn.Sequential(adapter=..., model=...)``. (Default: ``None``)
        **kwargs: Passed to the builder (to ``timm.create_model`` for timm entries,
            e.g. ``drop_rate``; ``width`` for ``cnn_small``).

    Returns:
        A module mapping ``(B, in_chans, n_mels, frames)``, any size, to logits
        ``(B, num_classes)``.

    Raises:
        ValueError: Unknown ``name``, bad ``num_classes``/``in_chans``,
            ``pretrained=True`` for a backbone without hub weights, or a weights
            file with an unsupported suffix.
        FileNotFoundError: ``pretrained`` names a file that does not exist.
        RuntimeError: Hub weights cannot be fetched, or the weights file does not
            fit the model.

    Example:
        >>> import torch
        >>> model = create_backbone("cnn_small", num_classes=10, in_chans=1)
        >>> model(torch.randn(2, 1, 64, 50)).shape
        torch.Size([2, 10])
        >>> model = create_backbone("resnet18", 10, input_adapter=InputAdapter(3, 224))
        >>> model(torch.randn(2, 1, 128, 300)).shape
        torch.Size([2, 10])
    """
    builder = get_builder(name)
    num_classes = _check_count("num_classes", num_classes)
    in_chans = _check_count("in_chans", in_chans)
    model_chans = in_chans
    if input_adapter is not None:
        if not isinstance(input_adapter, InputAdapter):
            raise TypeError("input_adapter must be an InputAdapter or None, "
                            f"got {type(input_adapter).__name__}")
        if in_chans not in (1, input_adapter.out_chans):
            raise ValueError(f"in_chans must be 1 or input_adapter.out_chans="
                             f"{input_adapter.out_chans} with an input_adapter, got {in_chans}")
        model_chans = input_adapter.out_chans

    if pretrained is True:
        if "pretrained" not in inspect.signature(builder).parameters:
            raise ValueError(f"pretrained=True: backbone {name!r} has no hub weights; "
                             "pass the path of a local weights file instead")
        model = builder(num_classes, model_chans, pretrained=True, **kwargs)
    elif pretrained is False or pretrained is None:
        model = builder(num_classes, model_chans, **kwargs)
    elif isinstance(pretrained, (str, os.PathLike)):
        state_dict = read_state_dict(pretrained)  # fail fast, before a slow build
        model = builder(num_classes, model_chans, **kwargs)
        load_state_dict_into(model, state_dict, source=os.fspath(pretrained))
    else:
        raise TypeError(f"pretrained must be a bool or a path, got {type(pretrained).__name__}")

    if input_adapter is None:
        return model
    return nn.Sequential(OrderedDict(adapter=input_adapter, model=model))
