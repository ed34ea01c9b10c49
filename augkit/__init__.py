"""augkit: batched, GPU-side audio augmentation.

Transforms work on whole batches with per-example randomness drawn on the
input's device: waveforms ``(B, C, T)``, spectrograms ``(B, C, F, T)``.
"""

from . import functional
from .backbones import InputAdapter, create_backbone, list_backbones, register_backbone
from .transforms import (
    Compose,
    FrequencyMasking,
    Gain,
    GaussianNoise,
    MelFrontend,
    Mixup,
    PolarityInversion,
    RandomCrop,
    RandomTransform,
    TimeMasking,
    TimeShift,
)

__version__ = "0.1.0"

__all__ = [
    "Compose",
    "FrequencyMasking",
    "Gain",
    "GaussianNoise",
    "InputAdapter",
    "MelFrontend",
    "Mixup",
    "PolarityInversion",
    "RandomCrop",
    "RandomTransform",
    "TimeMasking",
    "TimeShift",
    "create_backbone",
    "functional",
    "list_backbones",
    "register_backbone",
    "__version__",
]
