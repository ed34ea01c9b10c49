"""Shared measurement helpers for the filter tests (not a test module)."""

from __future__ import annotations

import numpy as np
import scipy.signal as ss


def welch_db(x, y, sample_rate: int = 16000, nperseg: int = 8192):
    """Measured response in dB, ``10 log10(Pyy / Pxx)``, over the middle 80 % of
    ``(B, 1, T)`` input ``x`` and output ``y``: ``(frequencies, (B, F) dB)``."""
    n = x.shape[-1]
    sl = slice(n // 10, n - n // 10)
    f, pxx = ss.welch(x[:, 0, sl].double().numpy(), fs=sample_rate, nperseg=nperseg)
    _, pyy = ss.welch(y[:, 0, sl].double().numpy(), fs=sample_rate, nperseg=nperseg)
    return f, 10 * np.log10(pyy / pxx)
