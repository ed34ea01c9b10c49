"""Shared fixtures: the device matrix and tolerance helpers.

Every test that takes ``device`` runs on CPU, and again on CUDA when a GPU is
present (CI has none; the CUDA cases are skipped there, not faked).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]


@pytest.fixture(autouse=True, scope="session")
def _runner_cache_in_a_temporary_folder(tmp_path_factory):
    """The runner's cache (decoded audio, the synthetic set) defaults to
    ``$XDG_CACHE_HOME/augkit``: point it at a temporary folder, never the user's home."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


def generator(device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
