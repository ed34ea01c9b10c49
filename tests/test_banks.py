"""Noise and impulse-response banks: nothing unusable gets in, and nothing is skipped silently.

A folder (``load_audio_folder``, ``--noise-dir``/``--ir-dir``, ``BackgroundNoise("dir/")``)
skips files with NaN/inf samples and silent files, naming them in one grouped
warning, and refuses a folder with nothing usable left. A tensor bank given to
``BackgroundNoise``/``ImpulseResponse`` with NaN/inf samples, or a silent one, is
refused at construction.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

import augkit as ak
from augkit.banks import SkippedFilesWarning, load_audio_folder

SR = 8000


def tone(seconds=0.25, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def write(folder, name, data, subtype="FLOAT"):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, SR, subtype=subtype)
    return path


def with_sample(value):
    data = tone()
    data[100] = value
    return data


def loaded(folder, **kwargs):
    """``load_audio_folder`` plus the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = load_audio_folder(folder, SR, **kwargs)
    return out, [w.message for w in caught]


# --------------------------------------------------------------------------- folders


def test_folder_skips_non_finite_and_silent_files_with_one_grouped_warning(tmp_path):
    write(tmp_path, "good.wav", tone())
    write(tmp_path, "nan.wav", with_sample(np.nan))
    write(tmp_path, "sub/inf.wav", with_sample(np.inf))
    write(tmp_path, "zeros.wav", np.zeros(800, np.float32))
    write(tmp_path, "hiss.wav", np.full(800, 1e-9, np.float32))  # peak below 1e-8
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wave file")
    (clips, names), messages = loaded(tmp_path, return_names=True)
    assert names == ["good.wav"] and len(clips) == 1 and torch.isfinite(clips[0]).all()
    (w,) = messages  # one warning for all of them
    assert isinstance(w, SkippedFilesWarning) and "\n" not in str(w)
    text = str(w)
    assert text.startswith(f"skipped 5 of 6 audio files in {tmp_path}: ")
    assert "2 with NaN/inf samples (nan.wav, sub/inf.wav)" in text
    assert "2 silent, peak < 1e-08 (hiss.wav, zeros.wav)" in text
    assert "1 unreadable (bad.wav: " in text
    assert w.skipped["with NaN/inf samples"] == ["nan.wav", "sub/inf.wav"]


def test_grouped_warning_names_a_few_and_holds_them_all(tmp_path):
    write(tmp_path, "good.wav", tone())
    for i in range(7):
        write(tmp_path, f"quiet{i}.wav", np.zeros(400, np.float32))
    _, (w,) = loaded(tmp_path)
    assert "7 silent, peak < 1e-08 (quiet0.wav, quiet1.wav, quiet2.wav, and 4 more)" in str(w)
    assert "quiet6" not in str(w)
    assert w.skipped == {"silent, peak < 1e-08": [f"quiet{i}.wav" for i in range(7)]}
    assert w.folder == tmp_path


def test_a_folder_with_nothing_usable_is_one_error_naming_it(tmp_path):
    write(tmp_path, "zeros.wav", np.zeros(800, np.float32))
    write(tmp_path, "nan.wav", with_sample(np.nan))
    with pytest.raises(ValueError) as err:
        load_audio_folder(tmp_path, SR)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{tmp_path}: none of its 2 audio files")
    assert "1 with NaN/inf samples (nan.wav)" in message and "1 silent" in message


def test_a_quiet_recording_is_kept(tmp_path):
    # a 24-bit file a few steps above digital silence (one step: 2 ** -23 = 1.2e-7)
    quiet = np.tile(np.array([0, 4, 0, -4], np.float32) * 2.0 ** -23, 200)
    write(tmp_path, "quiet.wav", quiet, subtype="PCM_24")
    clips, messages = loaded(tmp_path)
    assert len(clips) == 1 and messages == []


def test_background_noise_from_a_folder_never_draws_the_inf_file(tmp_path):
    # Before: the inf sample was nan_to_num-ed to 3.4e38, its power overflowed and the
    # noise was scaled to nothing: every example that drew it came back unchanged.
    inf = tone(0.05)  # shorter than the input: it loops, so every read holds the inf
    inf[100] = np.inf
    write(tmp_path, "a_inf.wav", inf)
    write(tmp_path, "b_good.wav", tone())
    with pytest.warns(SkippedFilesWarning, match="a_inf.wav"):
        t = ak.BackgroundNoise(tmp_path, snr_db=0.0, sample_rate=SR, p=1.0)
    assert t.num_noises == 1
    x = torch.randn(64, 1, 1000, generator=torch.Generator().manual_seed(0))
    y = t(x, generator=torch.Generator().manual_seed(1))
    assert ((y - x).flatten(1).abs().amax(1) > 0.1).all()


def test_impulse_response_folder_names_the_silent_file(tmp_path):
    ir = np.zeros(400, np.float32)
    ir[0] = 1.0
    write(tmp_path, "room.wav", ir)
    write(tmp_path, "dead_room.wav", np.zeros(400, np.float32))
    with pytest.warns(SkippedFilesWarning, match=r"1 silent, peak < 1e-08 \(dead_room.wav\)"):
        t = ak.ImpulseResponse(tmp_path, sample_rate=SR)
    assert t.num_irs == 1


# --------------------------------------------------------------------------- tensor banks


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("cls, what", [(ak.BackgroundNoise, "noises"),
                                       (ak.ImpulseResponse, "irs")])
def test_a_tensor_bank_with_nan_or_inf_is_refused(cls, what, bad):
    bank = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    bank[1, 7] = bad
    with pytest.raises(ValueError) as err:
        cls(bank)
    assert str(err.value) == (f"{cls.__name__}: {what} hold NaN or inf samples: {what}[1]; "
                              "drop or fix those clips")
    with pytest.raises(ValueError, match=rf"NaN or inf samples: {what}\[1\]"):
        cls(list(bank))  # a list of clips, the same check


@pytest.mark.parametrize("cls, what", [(ak.BackgroundNoise, "noises"),
                                       (ak.ImpulseResponse, "irs")])
def test_a_silent_tensor_bank_is_refused(cls, what):
    with pytest.raises(ValueError) as err:
        cls(torch.zeros(2, 100))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{cls.__name__}: every clip of {what} is silent")
    assert message.endswith(f"{what}[0], {what}[1]")


def test_some_silent_noises_are_named_in_a_warning_and_silent_irs_are_refused():
    bank = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    bank[2] = 0.0
    with pytest.warns(UserWarning, match=r"1 of the 3 clips of noises are silent .*noises\[2\]"):
        ak.BackgroundNoise(bank)
    with pytest.raises(ValueError, match=r"ImpulseResponse: irs holds silent clips .*irs\[2\]"):
        ak.ImpulseResponse(bank)


def test_good_banks_build_without_a_word():
    bank = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ak.BackgroundNoise(bank)
        ak.ImpulseResponse(bank)
