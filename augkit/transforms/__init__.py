"""Transform modules: thin shells over :mod:`augkit.functional`."""

from ._base import RandomTransform
from .augment import (
    FrequencyMasking,
    Gain,
    GaussianNoise,
    Mixup,
    PolarityInversion,
    RandomCrop,
    TimeMasking,
    TimeShift,
)
from .compose import Compose
from .frontend import MelFrontend

__all__ = [
    "Compose",
    "FrequencyMasking",
    "Gain",
    "GaussianNoise",
    "MelFrontend",
    "Mixup",
    "PolarityInversion",
    "RandomCrop",
    "RandomTransform",
    "TimeMasking",
    "TimeShift",
]
