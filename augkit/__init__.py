"""augkit: batched, GPU-side audio augmentation.

Transforms work on whole batches with per-example randomness drawn on the
input's device: waveforms ``(B, C, T)``, spectrograms ``(B, C, F, T)``.

The core install (torch, torchaudio, numpy, scipy) holds the transforms,
:mod:`augkit.functional` and :mod:`augkit.banks`. :mod:`augkit.backbones` needs
timm and safetensors (``pip install 'augkit[backbones]'``): it is imported on
first use (``ak.create_backbone``, ``ak.backbones``), not by ``import augkit``.
"""

from importlib import import_module
from importlib.util import find_spec

from . import banks, functional, transforms
from .transforms import *  # noqa: F403  (the names are listed once, in augkit.transforms)
from .transforms import load_compose, save_compose

__version__ = "0.2.0"

#: The public names of :mod:`augkit.backbones`, also reachable as ``augkit.<name>``.
_BACKBONE_NAMES = ("InputAdapter", "create_backbone", "list_backbones", "register_backbone")


def _has_backbone_deps() -> bool:
    try:
        return find_spec("timm") is not None and find_spec("safetensors") is not None
    except (ImportError, ValueError):
        return False


def _backbones():
    try:
        return import_module(".backbones", __name__)
    except ModuleNotFoundError as e:
        if (e.name or "").startswith(__name__ + "."):
            raise
        raise ImportError(f"augkit.backbones needs timm: pip install 'augkit[backbones]' "
                          f"(missing module: {e.name})") from None


def __getattr__(name: str):
    """``augkit.backbones`` and its names, imported on first use (they need timm)."""
    if name == "backbones":
        return _backbones()
    if name in _BACKBONE_NAMES:
        return getattr(_backbones(), name)
    raise AttributeError(f"module 'augkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "backbones", *_BACKBONE_NAMES})


# The backbone names are exported where their dependencies are installed, so that
# `from augkit import *` works on a core install too.
__all__ = [*transforms.__all__, *(_BACKBONE_NAMES if _has_backbone_deps() else ()),
           "load_compose", "save_compose", "banks", "functional", "__version__"]
