"""A chain as JSON: Compose.to_config / from_config, save_compose / load_compose.

Every module built by a public augkit class keeps its constructor arguments
(``augkit.transforms._base.ARGS_ATTR``); the round trip is checked for every contract
case of the registry, for a realistic chain, for the containers, and for what JSON
cannot hold (one-line errors).
"""

from __future__ import annotations

import copy
import io
import json
import pickle

import pytest
import torch
from conftest import generator
from torch import nn

import augkit as ak
from augkit.transforms import RandomTransform, random_transforms
from augkit.transforms._base import ARGS_ATTR, Unsaved

INPUTS = {"wave": (3, 2, 400), "spec": (3, 2, 32, 50)}  # (B, C, T), (B, C, F, T)


def _holds(value, kind: type) -> bool:
    """Whether ``value``, or anything in its lists, tuples and dicts, is a ``kind``."""
    if isinstance(value, kind):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds(v, kind) for v in value)
    return isinstance(value, dict) and any(_holds(v, kind) for v in value.values())


CASES = [pytest.param(cls, case, id=f"{name}-{i}")
         for name, cls in random_transforms().items() for i, case in enumerate(cls.cases)]
JSON_CASES = [c for c in CASES if not _holds(c.values[1]["kwargs"], torch.Tensor)]
TENSOR_CASES = [c for c in CASES if _holds(c.values[1]["kwargs"], torch.Tensor)]


def through_json(config: dict) -> dict:
    return json.loads(json.dumps(config, allow_nan=False))


def record(module: nn.Module) -> dict:
    return module.__dict__[ARGS_ATTR]


# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize("cls, case", JSON_CASES)
def test_every_registry_case_round_trips(cls, case, device):
    t = cls(**case["kwargs"], p=1.0)
    chain = ak.Compose([t])
    config = through_json(chain.to_config())
    (step,) = config["steps"]
    assert step["transform"] == cls.__name__
    if not _holds(case["kwargs"], nn.Module):  # the captured arguments are the ones given
        assert step["args"] == through_json({**case["kwargs"], "p": 1.0})
    again = ak.Compose.from_config(config)
    rebuilt = again[step["name"]]
    assert type(rebuilt) is cls
    assert through_json(again.to_config()) == config
    assert repr(rebuilt) == repr(t)
    x = torch.rand(INPUTS[case["input"]], generator=torch.Generator().manual_seed(3)) + 0.5
    x = x.to(device)
    chain, again = chain.to(device), again.to(device)
    y = chain(x, generator=generator(device, 7))
    z = again(x, generator=generator(device, 7))
    assert torch.equal(y, z)
    for name, params in chain.last_params[step["name"]].items():
        assert torch.equal(params, again.last_params[step["name"]][name]), name


@pytest.mark.parametrize("cls, case", TENSOR_CASES)
def test_a_tensor_argument_is_refused_by_name(cls, case):
    chain = ak.Compose([cls(**case["kwargs"])])
    name = chain.names[0]
    (arg,) = [k for k, v in case["kwargs"].items() if _holds(v, torch.Tensor)]
    with pytest.raises(ValueError) as e:
        chain.to_config()
    assert str(e.value) == (f"Compose.to_config: step {name!r} ({cls.__name__}) argument "
                            f"{arg!r} is a Tensor, which JSON cannot hold; build that step "
                            "in code")


#: Every public class that is not a random transform, built with its required arguments.
PLAIN = {
    "AmplitudeToDB": lambda: ak.AmplitudeToDB(stype="magnitude", top_db=60.0),
    "Compose": lambda: ak.Compose([ak.Gain()]),
    "FrequencyStandardize": lambda: ak.FrequencyStandardize(8),
    "LoudnessNormalize": lambda: ak.LoudnessNormalize(16000, target_lufs=-20.0),
    "MaxNormalize": lambda: ak.MaxNormalize(),
    "MelFrontend": lambda: ak.MelFrontend(16000, n_mels=32),
    "RandomTransform": lambda: ak.RandomTransform(p=0.3),
    "Repeat": lambda: ak.Repeat(ak.Compose([ak.Gain()]), n_views=3),
    "Standardize": lambda: ak.Standardize(eps=1e-3),
}


def test_every_public_module_records_its_arguments():
    plain = set(ak.transforms.__all__) - set(random_transforms())
    assert plain == set(PLAIN), f"add the new public classes to PLAIN: {plain ^ set(PLAIN)}"
    for name, make in PLAIN.items():
        m = make()
        assert isinstance(record(m), dict), name
        config = through_json(ak.Compose([m]).to_config())
        again = ak.Compose.from_config(config)
        assert type(again.steps[config["steps"][0]["name"]]) is type(m), name
        assert through_json(again.to_config()) == config, name


def test_positional_arguments_are_recorded_by_keyword_and_defaults_are_not():
    assert record(ak.MelFrontend(16000, 512, 160, 64)) == {
        "sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64}
    assert record(ak.TimeMasking(20, 2, value="mean")) == {"max_width": 20, "num_masks": 2,
                                                           "value": "mean"}
    assert record(ak.Gain()) == {}
    assert record(ak.PolarityInversion(0.25)) == {"p": 0.25}  # inherited constructor
    assert record(ak.PeakingFilter(sample_rate=16000)) == {"sample_rate": 16000}  # subclass
    bank = torch.randn(2, 100)
    kept = record(ak.BackgroundNoise(bank, snr_db=[5, 10]))
    assert isinstance(kept["noises"], Unsaved) and kept["snr_db"] == [5, 10]


# --------------------------------------------------------------------------- chains


def realistic_chain() -> ak.Compose:
    chain = ak.Compose([
        ak.Gain(gain_db=(-6, 6)),
        ak.ColoredNoise(snr_db=(10, 30), p=0.7),
        ak.LowPassFilter((2000.0, 7000.0), sample_rate=16000),
        ("shift", ak.TimeShift(0.1, rollover=False)),
        ak.MelFrontend(16000, n_fft=512, hop_length=160, n_mels=32, log=None),
        ak.AmplitudeToDB(top_db=80.0, scale=1 / 20),
        ak.TimeMasking(10, num_masks=2, value="mean"),
        ak.FrequencyMasking(4),
        ak.Standardize(),
        ak.Mixup(alpha=0.3, num_classes=5),
    ], disabled=["shift"], num_classes=5)
    chain["gain"].p = 1.0  # as a search sets it, after construction
    return chain


def test_a_realistic_chain_round_trips():
    chain = realistic_chain()
    config = through_json(chain.to_config())
    assert config["augkit"] == ak.__version__ and config["format"] == 1
    assert config["num_classes"] == 5 and config["disabled"] == ["shift"]
    assert config["steps"][0] == {"name": "gain", "transform": "Gain",
                                  "args": {"gain_db": [-6, 6], "p": 1.0}}
    assert config["steps"][3]["name"] == "shift"
    again = ak.Compose.from_config(config)
    assert again.names == chain.names and again.disabled == chain.disabled
    assert again.num_classes == 5 and again["gain"].p == 1.0
    assert repr(again) == repr(chain)
    assert through_json(again.to_config()) == config
    x = torch.randn(4, 1, 8000, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 4, 2, 1])
    y, t = chain(x, labels, generator=generator("cpu", 5))
    y2, t2 = again(x, labels, generator=generator("cpu", 5))
    assert torch.equal(y, y2) and torch.equal(t, t2)
    chain.eval()
    again.eval()
    y, t = chain(x, target=labels)
    y2, t2 = again(x, target=labels)
    assert y.shape == (4, 1, 32, 51) and torch.equal(y, y2) and torch.equal(t, t2)


def test_trivial_augment_and_a_nested_compose_round_trip():
    inner = ak.Compose([ak.Gain(gain_db=(-3, 3)), ("flip", ak.PolarityInversion())],
                       disabled=["flip"])
    chain = ak.Compose([
        ("inner", inner),
        ak.TrivialAugment([("loud", ak.Gain(gain_db=(3, 12))), ak.PolarityInversion(),
                           ak.LowPassFilter(sample_rate=16000)], num_ops=(0, 2), p=0.9),
        ak.MelFrontend(16000, n_mels=16),
        ak.TrivialAugment(dict(freq=ak.FrequencyMasking(4), time=ak.TimeMasking(6)),
                          num_ops=2),
    ])
    config = through_json(chain.to_config())
    ops = config["steps"][1]["args"]["transforms"]
    assert ops[0] == {"name": "loud", "transform": "Gain", "args": {"gain_db": [3, 12]}}
    assert ops[1] == {"transform": "PolarityInversion", "args": {}}
    assert config["steps"][0]["args"]["disabled"] == ["flip"]
    again = ak.Compose.from_config(config)
    assert again["inner"].disabled == frozenset({"flip"})
    assert again["trivial_augment"].names == ["loud", "polarity_inversion", "low_pass_filter"]
    assert again["trivial_augment_2"].names == ["freq", "time"]
    assert again["trivial_augment"].num_ops == (0, 2)
    assert repr(again) == repr(chain)
    assert through_json(again.to_config()) == config
    x = torch.randn(4, 1, 4000, generator=torch.Generator().manual_seed(1))
    # a nested Compose is called as step(x), without the generator: it draws from the
    # global one, seeded alike for both
    torch.manual_seed(2)
    y = chain(x, generator=generator("cpu", 2))
    torch.manual_seed(2)
    assert torch.equal(y, again(x, generator=generator("cpu", 2)))
    views = ak.Compose([ak.Repeat(ak.Compose([ak.Gain(p=1.0)]), n_views=2)])
    back = ak.Compose.from_config(through_json(views.to_config()))
    assert back["repeat"].n_views == 2 and isinstance(back["repeat"].chain, ak.Compose)
    assert back["repeat"].chain["gain"].p == 1.0


# --------------------------------------------------------------------------- errors


def _one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message, message
    return message


def test_to_config_refuses_what_json_cannot_hold():
    with pytest.raises(ValueError) as e:
        ak.Compose([ak.Gain(), nn.Identity()]).to_config()
    assert _one_line(e) == ("Compose.to_config: step 'identity' (Identity) is not an augkit "
                            "module (from_config builds augkit's public classes only); build "
                            "that step in code")

    class MyGain(ak.Gain):
        pass

    with pytest.raises(ValueError, match=r"step 'my_gain' \(MyGain\) is not an augkit"):
        ak.Compose([MyGain()]).to_config()
    with pytest.raises(ValueError) as e:
        ak.Compose([ak.Repeat(nn.Identity())]).to_config()
    assert _one_line(e).startswith("Compose.to_config: step 'repeat' (Repeat) argument 'chain' "
                                   "(Identity) is not an augkit module")
    bank = torch.randn(2, 300)
    with pytest.raises(ValueError) as e:
        ak.Compose([ak.TrivialAugment([ak.Gain(), ak.BackgroundNoise([bank[0], bank[1]])])]
                   ).to_config()
    assert _one_line(e) == ("Compose.to_config: step 'trivial_augment' (TrivialAugment) "
                            "argument 'transforms[1].noises[0]' is a Tensor, which JSON cannot "
                            "hold; build that step in code")
    with pytest.raises(ValueError) as e:
        ak.Compose([ak.AmplitudeToDB(top_db=float("inf"))]).to_config()
    assert "argument 'top_db' is inf, which JSON cannot hold" in _one_line(e)


def _config(**step) -> dict:
    return {"format": 1, "steps": [{"name": "gain", "transform": "Gain", "args": {}, **step}]}


@pytest.mark.parametrize("config, message", [
    (_config(transform="Gian"), "Compose.from_config: step 'gain': unknown transform 'Gian' "
                                "(did you mean 'Gain'?); from_config builds augkit's public "
                                "classes only"),
    (_config(transform="os.system"), "step 'gain': unknown transform 'os.system'"),
    (_config(transform="Module"), "step 'gain': unknown transform 'Module'"),
    (_config(args={"gain_db": [12, -12]}), "Compose.from_config: step 'gain' (Gain): gain_db "
                                           "must have low <= high, got (12, -12)"),
    (_config(args={"gain_db": [1, 2], "volume": 3}), "step 'gain' (Gain): Gain.__init__() got "
                                                     "an unexpected keyword argument 'volume'"),
    (_config(args={"p": 2}), "step 'gain' (Gain): p must be a probability in [0, 1], got 2"),
    (_config(kind="x"), "step 'gain' has unknown key(s) ['kind']"),
    (_config(args=[1]), "step 'gain' (Gain): 'args' must be a dict"),
    ({**_config(), "format": 2, "augkit": "9.0"}, "the config's format 2 (augkit 9.0) is newer "
                                                  "than this augkit"),
    ({"steps": []}, "the config has no 'format'"),
    ({**_config(), "format": "1"}, "'format' must be a positive integer, got '1'"),
    ({**_config(), "step": []}, "unknown key(s) ['step']"),
    ({**_config(), "disabled": ["nope"]}, "Compose.from_config: unknown Compose step(s) "
                                          "['nope']"),
    ({**_config(), "disabled": "gain"}, "'disabled' must be a list of step names"),
    ({**_config(), "num_classes": 0}, "num_classes must be an integer >= 1"),
    ({"format": 1, "steps": {"gain": {}}}, "'steps' must be a list of steps, got dict"),
    ({"format": 1, "steps": ["Gain"]}, "step 0 must be a dict with a 'transform'"),
    ([], "config must be a dict"),
    ({"format": 1, "steps": [{"name": "ta", "transform": "TrivialAugment", "args": {
        "transforms": [{"transform": "Gain"}, {"transform": "Mixer"}]}}]},
     "step 'ta' (TrivialAugment) argument 'transforms[1]': unknown transform 'Mixer'"),
    ({"format": 1, "steps": [{"name": "ta", "transform": "TrivialAugment", "args": {
        "transforms": [{"transform": "AmplitudeToDB"}]}}]},
     "step 'ta' (TrivialAugment): transforms[0] must be an augkit RandomTransform"),
])
def test_from_config_errors_are_one_line_and_name_the_step(config, message):
    with pytest.raises(ValueError) as e:
        ak.Compose.from_config(config)
    assert message in _one_line(e)


# --------------------------------------------------------------------------- the record


def test_the_record_is_not_state_repr_or_a_submodule():
    chain = realistic_chain()
    ta = ak.TrivialAugment([ak.Gain(), ak.TimeShift(4)])
    fs = ak.FrequencyStandardize(4)
    for m in (chain, ta, fs, ak.MelFrontend(16000, n_mels=8)):
        for sub in m.modules():
            if type(sub).__module__.startswith("augkit."):  # not the ModuleDicts
                assert isinstance(sub.__dict__.get(ARGS_ATTR), dict), type(sub).__name__
        assert not any(ARGS_ATTR in key for key in m.state_dict())
        assert ARGS_ATTR not in repr(m)
    assert [n for n, _ in ta.named_children()] == ["transforms"]
    assert sorted(fs.state_dict()) == ["count", "mean", "std"]
    # the recorded modules are the step's own submodules, not copies
    assert record(ta)["transforms"][0] is ta["gain"]


def test_the_record_survives_copies_pickles_and_moves():
    chain = realistic_chain()
    chain.steps["ta"] = ak.TrivialAugment([ak.Gain(), ak.Gain(gain_db=(1, 2))])
    config = chain.to_config()
    buffer = io.BytesIO()
    torch.save(chain, buffer)
    buffer.seek(0)
    copies = [copy.deepcopy(chain), pickle.loads(pickle.dumps(chain)),
              torch.load(buffer, weights_only=False), copy.deepcopy(chain).to(torch.float64)]
    for other in copies:
        assert other.to_config() == config
        ta = other["ta"]
        assert record(ta)["transforms"][1] is ta["gain_2"]  # points at the copy's own
    if torch.cuda.is_available():
        assert copy.deepcopy(chain).to("cuda").to_config() == config


# --------------------------------------------------------------------------- files


def test_save_and_load_compose(tmp_path):
    chain = realistic_chain()
    path = tmp_path / "recipe.json"
    assert ak.save_compose(chain, path) == path
    assert json.loads(path.read_text()) == through_json(chain.to_config())
    again = ak.load_compose(str(path))
    assert repr(again) == repr(chain) and again.disabled == chain.disabled
    ak.save_compose(ak.Compose([ak.Gain()]), path)  # replaces it
    assert ak.load_compose(path).names == ["gain"]
    before = path.read_text()
    with pytest.raises(ValueError, match="is a Tensor"):
        ak.save_compose(ak.Compose([ak.BackgroundNoise(torch.randn(2, 100))]), path)
    assert path.read_text() == before  # refused before anything is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.json"]  # no temporary file
    with pytest.raises(TypeError, match="chain must be an augkit Compose, got Gain"):
        ak.save_compose(ak.Gain(), path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ak.save_compose(chain, tmp_path / "missing" / "recipe.json")


def test_load_compose_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        ak.load_compose(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError) as e:
        ak.load_compose(bad)
    assert _one_line(e).startswith(f"load_compose: {bad} is not JSON: ")
    bad.write_text(json.dumps(_config(transform="Gian")))
    with pytest.raises(ValueError) as e:
        ak.load_compose(bad)
    assert _one_line(e).startswith(f"load_compose: {bad}: Compose.from_config: step 'gain': "
                                   "unknown transform 'Gian'")


def test_random_transforms_record_p_and_same_on_batch_as_they_are_now():
    t = ak.TimeShift(3, p=0.2)
    t.p, t.same_on_batch = 0.9, True
    (step,) = ak.Compose([t]).to_config()["steps"]
    assert step["args"] == {"max_shift": 3, "p": 0.9, "same_on_batch": True}
    assert isinstance(t, RandomTransform) and record(t) == {"max_shift": 3, "p": 0.2}


def test_load_compose_reads_a_recipe_with_the_chain_under_compose(tmp_path):
    """A search's recipe.json holds the runner's settings beside the chain."""
    import augkit as ak

    chain = ak.Compose([ak.Gain(gain_db=(-6, 6), p=1.0)])
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"augmentations": ["gain"], "augment": {},
                                "compose": chain.to_config()}))
    loaded = ak.load_compose(path)
    assert loaded.to_config() == chain.to_config()
