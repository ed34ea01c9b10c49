"""The backbone registry: a module-level dict of builders and the decorator that fills it."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

#: A builder takes ``(num_classes, in_chans, **kwargs)`` and returns a module mapping
#: ``(B, in_chans, n_mels, frames)`` to logits ``(B, num_classes)``.
Builder = Callable[..., nn.Module]

_backbones: dict[str, Builder] = {}


def register_backbone(fn_or_name: Builder | str, /) -> Builder | Callable[[Builder], Builder]:
    """Register a backbone builder, under its function name or an explicit one.

    A builder is called as ``fn(num_classes, in_chans, **kwargs)`` and returns an
    ``nn.Module`` mapping ``(B, in_chans, n_mels, frames)`` of any size to logits
    ``(B, num_classes)``. A builder that can load hub weights declares a
    ``pretrained: bool = False`` keyword; :func:`create_backbone` passes
    ``pretrained=True`` only to such builders.

    Args:
        fn_or_name: The builder (``@register_backbone``) or the name to register it
            under (``@register_backbone("name")``).

    Returns:
        The builder, unchanged (or a decorator that returns it).

    Raises:
        ValueError: If the name is already registered.

    Example:
        >>> from torch import nn
        >>> @register_backbone("linear_probe_demo")
        ... def _linear(num_classes, in_chans, **kwargs):
        ...     return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        ...                          nn.Linear(in_chans, num_classes))
        >>> "linear_probe_demo" in list_backbones()
        True
    """
    if isinstance(fn_or_name, str):
        name = fn_or_name
        if not name:
            raise ValueError("register_backbone name must be a non-empty string")
        return lambda fn: _register(name, fn)
    if not callable(fn_or_name):
        raise TypeError(
            f"register_backbone expects a builder function or a name, got {fn_or_name!r}")
    return _register(fn_or_name.__name__, fn_or_name)


def _register(name: str, fn: Builder) -> Builder:
    if not callable(fn):
        raise TypeError(f"backbone builder for {name!r} must be callable, got {fn!r}")
    if name in _backbones:
        raise ValueError(f"backbone {name!r} is already registered")
    _backbones[name] = fn
    return fn


def list_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(_backbones)


def get_builder(name: str) -> Builder:
    """The builder registered under ``name``.

    Raises:
        ValueError: If ``name`` is unknown; the message lists close matches and the
            known names.
    """
    if name not in _backbones:
        known = list_backbones()
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown backbone name {name!r}.{hint} Known backbones: {', '.join(known)}")
    return _backbones[name]
