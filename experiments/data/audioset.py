"""A decoded dataset on one device: every clip end to end in one flat int16 tensor.

Following airbench, the data lives where the model trains: :class:`AudioSet` holds
every clip packed end to end (per-clip start offsets and lengths, no padding, so
its size is the total number of samples, not clips x the longest clip), moves to
the device whole (:meth:`AudioSet.to`), and hands out fixed-length crops gathered
on the device (:meth:`AudioSet.crop`, via :func:`augkit.functional.crop_segments`):
there is no DataLoader and no per-step decoding. :func:`experiments.data.decode.load_dataset`
makes one from files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor

from augkit.functional import crop_segments, offsets_at

#: int16 full scale: samples are stored as ``round(x * INT16_SCALE)``.
INT16_SCALE = 32768.0


@dataclass
class AudioSet:
    """A decoded dataset: every clip end to end in one flat int16 tensor.

    Clip ``i`` is ``samples[starts[i] : starts[i] + lengths[i]]``; nothing is padded,
    so memory is the total number of samples.

    Attributes:
        samples: All mono clips end to end, shape ``(S,)``, int16, ``S = lengths.sum()``
            for a loaded dataset.
        starts: Index into :attr:`samples` of each clip's first sample, shape ``(N,)``,
            int64.
        lengths: Samples per clip, shape ``(N,)``, int64.
        labels: Class index per clip into :attr:`classes`, shape ``(N,)``, int64.
        ids: Relative clip ids ``"<class>/<file name>"`` (for a manifest: the path as
            relative to the CSV's folder, or absolute), length ``N``.
        classes: Sorted class names; the one label map shared by all splits.
        sample_rate: Sample rate of :attr:`samples` in Hz.
        skipped: Ids of files not in the set: unreadable, truncated, or holding
            NaN/inf samples (each named, with why, in :func:`load_dataset`'s warning).
        manifest_splits: Per-clip ``split`` value from a CSV manifest, else ``None``.
        digests: Per-clip hash of the decoded int16 samples (what the runner's resume
            check compares), or ``None``.
        notes: Clip id -> what was changed while decoding (clipped above full scale,
            NaN/inf repaired, truncated but kept).
        ignored: Entries the scan did not take, each ``"path (why)"``.
        problems: Every file skipped, changed or ignored, by reason (the grouped
            warning's words, e.g. ``"skipped 3 unreadable"``), each ``"path (why)"``:
            the full list the warning counts and names a few of.
    """

    samples: Tensor
    starts: Tensor
    lengths: Tensor
    labels: Tensor
    ids: list[str]
    classes: list[str]
    sample_rate: int
    skipped: list[str]
    manifest_splits: list[str] | None = None
    digests: list[str] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Shapes, dtypes and devices only: no host sync on device tensors.
        if self.samples.dim() != 1 or self.samples.dtype != torch.int16:
            raise ValueError(f"AudioSet.samples must be a 1-D int16 tensor, got shape "
                             f"{tuple(self.samples.shape)} {self.samples.dtype}")
        n = len(self.ids)
        for name in ("starts", "lengths", "labels"):
            t = getattr(self, name)
            if t.shape != (n,) or t.dtype != torch.int64:
                raise ValueError(f"AudioSet.{name} must be int64 of shape ({n},) (one per "
                                 f"id), got shape {tuple(t.shape)} {t.dtype}")
            if t.device != self.samples.device:
                raise ValueError(f"AudioSet.{name} is on {t.device} but samples are on "
                                 f"{self.samples.device}")
        if self.manifest_splits is not None and len(self.manifest_splits) != n:
            raise ValueError(f"AudioSet.manifest_splits has {len(self.manifest_splits)} "
                             f"entries for {n} ids")
        if self.digests is not None and len(self.digests) != n:
            raise ValueError(f"AudioSet.digests has {len(self.digests)} entries for {n} ids")

    def to(self, device: torch.device | str) -> AudioSet:
        """Return a copy whose tensors live on ``device`` (metadata is shared)."""
        return dataclasses.replace(self, samples=self.samples.to(device),
                                   starts=self.starts.to(device),
                                   lengths=self.lengths.to(device),
                                   labels=self.labels.to(device))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def clip(self, i: int) -> Tensor:
        """Clip ``i``'s valid samples as float32 in ``[-1, 1)``, shape ``(lengths[i],)``.

        For tests and inspection (it syncs with the host); batches use :meth:`crop`.
        """
        start, n = int(self.starts[i]), int(self.lengths[i])
        return float_waveforms(self.samples[start:start + n])

    def crop(self, idx: Tensor, length: int, position: Tensor) -> Tensor:
        """Fixed-length crops of clips ``idx``, on the dataset's device, no host sync.

        Each crop starts at ``offsets_at(position, (lengths[idx] - length).clamp_min(0))``
        within its clip; clips shorter than ``length`` are zero-padded at the end, and a
        crop never reads into the next clip.

        Args:
            idx: Clip indices, int64 ``(B,)``, on the dataset's device.
            length: Samples per crop.
            position: Where to crop, float ``(B,)`` in ``[0, 1]``: ``0`` the start,
                ``1`` the end, ``0.5`` the centre; uniform positions give uniform
                offsets (see :func:`augkit.functional.offsets_at`).

        Returns:
            float32 tensor of shape ``(B, 1, length)`` in ``[-1, 1)``.
        """
        n = self.lengths[idx]
        offset = offsets_at(position, (n - length).clamp_min(0))
        x = crop_segments(self.samples, self.starts[idx] + offset, n - offset, length)
        return float_waveforms(x).unsqueeze(1)


def float_waveforms(int16: Tensor) -> Tensor:
    """Convert int16 samples to float32 in ``[-1, 1)``.

    Args:
        int16: Tensor of any shape, e.g. ``(B, T)``, dtype int16 (a floating tensor
            is returned as float32 unchanged in value).

    Returns:
        float32 tensor of the same shape and device, ``int16 / 32768``.
    """
    if int16.is_floating_point():
        return int16.float()
    if int16.dtype != torch.int16:
        raise ValueError(f"expected an int16 tensor, got {int16.dtype}")
    return int16.float() / INT16_SCALE
