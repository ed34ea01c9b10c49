"""augkit: batched, GPU-side audio augmentation.

Transforms work on whole batches with per-example randomness drawn on the
input's device: waveforms ``(B, C, T)``, spectrograms ``(B, C, F, T)``.
"""

from . import backbones, functional, transforms
from .backbones import *  # noqa: F403  (the names are listed once, in each subpackage)
from .transforms import *  # noqa: F403

__version__ = "0.2.0"

__all__ = [*transforms.__all__, *backbones.__all__, "functional", "__version__"]
