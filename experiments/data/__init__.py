"""The data: find clips (:mod:`.scan`), decode and cache them (:mod:`.decode`) into
one device-resident :class:`AudioSet` (:mod:`.audioset`), and split them
(:mod:`.splits`); CSV manifests by group (:mod:`.manifest`, ``python -m
experiments.data.manifest``) and the embedded synthetic set (:mod:`.synthetic`)."""

from .audioset import AudioSet, float_waveforms
from .decode import CACHE_VERSION, load_dataset
from .scan import AUDIO_EXTENSIONS, GTZAN_GENRES, Scan, scan_clips, scan_dataset
from .splits import SPLIT_KINDS, make_splits

__all__ = ["AUDIO_EXTENSIONS", "CACHE_VERSION", "GTZAN_GENRES", "SPLIT_KINDS", "AudioSet",
           "Scan", "float_waveforms", "load_dataset", "make_splits", "scan_clips",
           "scan_dataset"]
