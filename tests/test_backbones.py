"""Tests for augkit.backbones: registry, factory, weight loading and the input adapter.

CPU only and fast: the big ResNeXt is built once per module and fed tiny inputs.
"""

from __future__ import annotations

import doctest
import socket
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from timm.models import adapt_input_conv, get_pretrained_cfg
from torch import nn

from augkit.backbones import (
    InputAdapter,
    _adapter,
    _factory,
    _registry,
    _weights,
    create_backbone,
    list_backbones,
    register_backbone,
)

BUILTIN = ["cnn_small", "resnet18", "resnext101_32x8d"]
NUM_CLASSES = 7


# --------------------------------------------------------------------------- fixtures

@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(_registry, "_backbones", dict(_registry._backbones))


@pytest.fixture(scope="module")
def built():
    """One model per (name, in_chans), built lazily and shared across the module."""
    cache: dict[tuple[str, int], nn.Module] = {}

    def get(name: str, in_chans: int) -> nn.Module:
        if (name, in_chans) not in cache:
            torch.manual_seed(0)
            cache[name, in_chans] = create_backbone(name, NUM_CLASSES, in_chans=in_chans).eval()
        return cache[name, in_chans]

    return get


@pytest.fixture(scope="module")
def saved_resnet18(tmp_path_factory):
    """An ImageNet-shaped resnet18 (3 channels, 1000 classes) saved as .safetensors and .pth."""
    torch.manual_seed(1)
    model = create_backbone("resnet18", 1000, in_chans=3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    folder = tmp_path_factory.mktemp("weights")
    save_file(state, str(folder / "r18.safetensors"))
    torch.save(state, folder / "r18.pth")
    return {"state": state, "model": model.eval(), "dir": folder}


def _hub_env(monkeypatch, tmp_path: Path, offline: bool) -> None:
    """Point every weight cache into ``tmp_path`` so nothing real is found."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("HF_HUB_CACHE", "HF_ENDPOINT", "HTTPS_PROXY", "https_proxy",
                "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


# --------------------------------------------------------------------------- registry

def test_list_backbones_has_the_builtins_and_is_a_copy():
    names = list_backbones()
    assert set(BUILTIN) <= set(names)
    names.clear()  # the caller's list, not the registry
    assert set(BUILTIN) <= set(list_backbones())


def test_unknown_name_names_it_and_suggests():
    with pytest.raises(ValueError, match="resnet19") as info:
        create_backbone("resnet19", 10)
    message = str(info.value)
    assert "Did you mean 'resnet18'" in message
    for name in BUILTIN:
        assert name in message


def test_duplicate_registration_raises(isolated_registry):
    with pytest.raises(ValueError, match="'resnet18' is already registered"):
        register_backbone("resnet18")(lambda num_classes, in_chans: nn.Identity())

    def twice(num_classes, in_chans):
        return nn.Identity()

    register_backbone(twice)
    with pytest.raises(ValueError, match="'twice'"):
        register_backbone(twice)


@pytest.mark.parametrize("decorator_form", ["bare", "named"])
def test_custom_builder_end_to_end(isolated_registry, decorator_form):
    calls = []

    def mean_probe(num_classes, in_chans, scale=1.0):
        calls.append((num_classes, in_chans, scale))
        linear = nn.Linear(in_chans, num_classes)
        with torch.no_grad():
            linear.weight.fill_(scale)
            linear.bias.zero_()
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)

    if decorator_form == "bare":
        returned = register_backbone(mean_probe)
        name = "mean_probe"
    else:
        returned = register_backbone("probe_v2")(mean_probe)
        name = "probe_v2"
    assert returned is mean_probe
    assert name in list_backbones() and list_backbones() == sorted(list_backbones())

    model = create_backbone(name, num_classes=4, in_chans=2, scale=2.0)
    assert calls == [(4, 2, 2.0)]
    x = torch.randn(3, 2, 16, 20)
    expected = 2.0 * x.mean(dim=(2, 3)).sum(dim=1, keepdim=True).expand(3, 4)
    torch.testing.assert_close(model(x), expected)

    with pytest.raises(ValueError, match="has no hub weights"):
        create_backbone(name, 4, pretrained=True)


def test_register_backbone_rejects_non_callables(isolated_registry):
    with pytest.raises(TypeError):
        register_backbone(3)
    with pytest.raises(ValueError, match="non-empty"):
        register_backbone("")


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "10"])
def test_invalid_num_classes(value):
    with pytest.raises(ValueError, match="num_classes"):
        create_backbone("cnn_small", value)


@pytest.mark.parametrize("value", [0, -3, 1.0, False])
def test_invalid_in_chans(value):
    with pytest.raises(ValueError, match="in_chans"):
        create_backbone("cnn_small", 10, in_chans=value)


def test_invalid_pretrained_type():
    with pytest.raises(TypeError, match="pretrained"):
        create_backbone("cnn_small", 10, pretrained=3)


# --------------------------------------------------------------------------- shapes

# (batch, n_mels, frames) per backbone; a newly registered one gets DEFAULT_SIZES.
SIZES = {
    "cnn_small": [(2, 64, 50), (2, 128, 300), (1, 3, 5), (1, 1, 1)],
    "resnet18": [(2, 64, 50), (2, 128, 300), (1, 8, 8)],
    "resnext101_32x8d": [(1, 32, 32), (2, 16, 40)],
}
DEFAULT_SIZES = [(2, 64, 50), (1, 32, 32)]


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", list_backbones())  # every registered backbone
def test_output_shapes_any_input_size(built, name, in_chans):
    model = built(name, in_chans)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == in_chans
    torch.manual_seed(2)
    for batch, n_mels, frames in SIZES.get(name, DEFAULT_SIZES):
        x = torch.randn(batch, in_chans, n_mels, frames)
        with torch.no_grad():
            out = model(x)
            single = model(x[:1])
        assert out.shape == (batch, NUM_CLASSES)
        assert torch.isfinite(out).all()
        # eval mode: an example's logits do not depend on the rest of the batch
        torch.testing.assert_close(out[:1], single, rtol=1e-4, atol=1e-4)


def test_wrong_channel_count_fails(built):
    with pytest.raises(RuntimeError):
        built("cnn_small", 1)(torch.randn(1, 3, 16, 16))


def test_cnn_small_width_and_size():
    small = create_backbone("cnn_small", 10)
    n_params = sum(p.numel() for p in small.parameters())
    assert 100_000 <= n_params <= 300_000
    narrow = create_backbone("cnn_small", 10, width=8)
    assert narrow.features[0][0].out_channels == 8
    assert sum(p.numel() for p in narrow.parameters()) < n_params / 10
    with pytest.raises(ValueError, match="width"):
        create_backbone("cnn_small", 10, width=0)
    with pytest.raises(TypeError):
        create_backbone("cnn_small", 10, not_an_option=1)


def test_timm_kwargs_pass_through():
    model = create_backbone("resnet18", 5, drop_rate=0.25)
    assert model.drop_rate == 0.25


# --------------------------------------------------------------------------- weights files

@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_pretrained_file_adapts_conv_and_reinits_head(saved_resnet18, suffix):
    state = saved_resnet18["state"]
    path = saved_resnet18["dir"] / f"r18{suffix}"
    torch.manual_seed(3)
    with pytest.warns(UserWarning, match="re-initialised"):
        model = create_backbone("resnet18", 10, in_chans=1, pretrained=path)
    loaded = model.state_dict()

    assert loaded["conv1.weight"].shape == (64, 1, 7, 7)
    torch.testing.assert_close(loaded["conv1.weight"], adapt_input_conv(1, state["conv1.weight"]))
    torch.testing.assert_close(loaded["conv1.weight"],
                               state["conv1.weight"].sum(dim=1, keepdim=True))
    for key in ("layer1.0.conv1.weight", "layer4.1.bn2.running_var", "bn1.bias"):
        assert torch.equal(loaded[key], state[key]), key
    assert loaded["fc.weight"].shape == (10, 512)
    assert not torch.allclose(loaded["fc.weight"], state["fc.weight"][:10])


def test_pretrained_file_same_shape_loads_everything(saved_resnet18):
    path = saved_resnet18["dir"] / "r18.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = create_backbone("resnet18", 1000, in_chans=3, pretrained=str(path)).eval()
    for key, value in saved_resnet18["state"].items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), saved_resnet18["model"](x))


def test_pretrained_file_with_three_channel_conv_repeats_for_more_channels(saved_resnet18):
    path = saved_resnet18["dir"] / "r18.safetensors"
    with pytest.warns(UserWarning, match="re-initialised"):
        model = create_backbone("resnet18", 2, in_chans=6, pretrained=path)
    expected = adapt_input_conv(6, saved_resnet18["state"]["conv1.weight"])
    torch.testing.assert_close(model.conv1.weight.detach(), expected)
    torch.testing.assert_close(model.conv1.weight[:, 3:].detach() * 2,
                               saved_resnet18["state"]["conv1.weight"])


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix"])
def test_pretrained_file_unwraps_nesting(saved_resnet18, tmp_path, wrap):
    state = saved_resnet18["state"]
    if wrap == "module_prefix":
        obj = OrderedDict((f"module.{k}", v) for k, v in state.items())
    else:
        obj = {wrap: dict(state), "epoch": 12, "best_acc": 0.5}
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path)
    model = create_backbone("resnet18", 1000, in_chans=3, pretrained=path)
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_pretrained_file_extra_key_raises(saved_resnet18, tmp_path):
    state = dict(saved_resnet18["state"])
    state["extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "extra.safetensors"
    save_file(state, str(path))
    with pytest.raises(RuntimeError, match="unexpected keys") as info:
        create_backbone("resnet18", 1000, in_chans=3, pretrained=path)
    assert "extra_head.weight" in str(info.value)
    assert str(path) in str(info.value)


def test_pretrained_file_missing_key_raises(saved_resnet18, tmp_path):
    state = {k: v for k, v in saved_resnet18["state"].items() if k != "layer3.1.bn1.weight"}
    path = tmp_path / "missing.bin"
    torch.save(state, path)
    with pytest.raises(RuntimeError, match=r"missing keys \(1\): layer3\.1\.bn1\.weight"):
        create_backbone("resnet18", 1000, in_chans=3, pretrained=path)


def test_pretrained_file_body_shape_mismatch_raises(tmp_path):
    save_file(create_backbone("cnn_small", 5, width=16).state_dict(),
              str(tmp_path / "w16.safetensors"))
    with pytest.raises(RuntimeError, match="shape mismatches"):
        create_backbone("cnn_small", 5, width=32, pretrained=tmp_path / "w16.safetensors")


def test_pretrained_missing_file_names_path(tmp_path):
    path = tmp_path / "nowhere" / "weights.safetensors"
    with pytest.raises(FileNotFoundError, match="weights.safetensors") as info:
        create_backbone("resnet18", 10, pretrained=path)
    assert str(path) in str(info.value)


def test_pretrained_unsupported_suffix(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="weights.npz"):
        create_backbone("cnn_small", 10, pretrained=path)


_UNPICKLED: list[str] = []


def _record_unpickle(tag: str) -> str:
    _UNPICKLED.append(tag)
    return tag


class _Payload:
    """Pickles as a call to ``_record_unpickle``: loading it would run code."""

    def __reduce__(self):
        return (_record_unpickle, ("ran",))


def test_pickled_object_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.0.weight": torch.zeros(32, 1, 3, 3), "hook": _Payload()}, path)
    with pytest.raises(RuntimeError, match="refusing to load") as info:
        create_backbone("cnn_small", 10, pretrained=path)
    assert str(path) in str(info.value)
    assert _UNPICKLED == []


def test_non_tensor_values_refused(tmp_path):
    path = tmp_path / "mixed.pt"
    torch.save({"features.0.0.weight": torch.zeros(1), "note": "hello"}, path)
    with pytest.raises(RuntimeError, match="state dict of tensors"):
        create_backbone("cnn_small", 10, pretrained=path)


def test_cnn_small_file_roundtrip_infers_first_conv_and_head(tmp_path):
    source = create_backbone("cnn_small", 5, in_chans=3)
    path = tmp_path / "cnn.safetensors"
    save_file(source.state_dict(), str(path))
    with pytest.warns(UserWarning, match="head was re-initialised"):
        model = create_backbone("cnn_small", 8, in_chans=1, pretrained=path)
    torch.testing.assert_close(model.features[0][0].weight.detach(),
                               source.features[0][0].weight.detach().sum(1, keepdim=True))
    assert torch.equal(model.features[2][0].weight, source.features[2][0].weight)
    assert model.head.weight.shape == (8, source.head.in_features)


def test_adapter_model_checkpoint_loads_back(tmp_path):
    trained = create_backbone("cnn_small", 4, input_adapter=InputAdapter(3, 32))
    path = tmp_path / "with_adapter.safetensors"
    save_file(trained.state_dict(), str(path))  # keys start with "model."
    model = create_backbone("cnn_small", 4, pretrained=path, input_adapter=InputAdapter(3, 32))
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_pretrained_file_with_input_adapter(saved_resnet18):
    path = saved_resnet18["dir"] / "r18.safetensors"
    with pytest.warns(UserWarning, match="re-initialised"):
        model = create_backbone("resnet18", 10, pretrained=path, input_adapter=InputAdapter())
    # the adapter feeds 3 channels, so conv1 is loaded as saved
    assert torch.equal(model.model.conv1.weight, saved_resnet18["state"]["conv1.weight"])


# --------------------------------------------------------------------------- hub weights

def test_pretrained_true_offline_raises_clearly(monkeypatch, tmp_path):
    _hub_env(monkeypatch, tmp_path, offline=True)
    monkeypatch.setattr(_weights, "_reachable", pytest.fail)  # offline: never probe the net
    with pytest.raises(RuntimeError, match="could not be fetched") as info:
        create_backbone("resnet18", 10, pretrained=True)
    message = str(info.value)
    assert "offline" in message and "resnet18" in message
    assert "local weights file" in message and "pretrained='" in message


def test_pretrained_true_unreachable_host_raises(monkeypatch, tmp_path):
    _hub_env(monkeypatch, tmp_path, offline=False)
    probed = []
    monkeypatch.setattr(_weights, "_reachable", lambda host, port: probed.append(host) or False)
    with pytest.raises(RuntimeError, match=r"unreachable \(offline\?\)"):
        create_backbone("resnext101_32x8d", 10, pretrained=True)
    assert probed == ["huggingface.co"]


def test_pretrained_true_wraps_download_errors(monkeypatch, tmp_path):
    import huggingface_hub

    _hub_env(monkeypatch, tmp_path, offline=False)
    monkeypatch.setattr(_weights, "_reachable", lambda host, port: True)
    boom = ConnectionError("connection reset by peer")

    def fail(*args, **kwargs):
        raise boom

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(RuntimeError, match="could not be fetched.*connection reset") as info:
        create_backbone("resnet18", 10, pretrained=True)
    assert info.value.__cause__ is boom


def test_pretrained_true_uses_cached_hub_weights(monkeypatch, tmp_path, saved_resnet18):
    _hub_env(monkeypatch, tmp_path, offline=True)
    repo = get_pretrained_cfg("resnet18").hf_hub_id  # e.g. timm/resnet18.a1_in1k
    repo_dir = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("0123abcd")
    save_file(saved_resnet18["state"], str(snapshot / "model.safetensors"))

    with pytest.warns(UserWarning, match="re-initialised"):
        model = create_backbone("resnet18", 10, in_chans=1, pretrained=True)
    state = saved_resnet18["state"]
    torch.testing.assert_close(model.conv1.weight.detach(),
                               state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert model.fc.weight.shape == (10, 512)


def test_pretrained_true_rejected_for_non_timm_entry():
    with pytest.raises(ValueError, match="'cnn_small' has no hub weights"):
        create_backbone("cnn_small", 10, pretrained=True)


def test_reachable_probe_is_real():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert _weights._reachable("127.0.0.1", port, timeout=2.0)
    assert not _weights._reachable("127.0.0.1", port, timeout=2.0)  # closed now


# --------------------------------------------------------------------------- input adapter

def test_input_adapter_matches_repeat_then_pool():
    torch.manual_seed(4)
    x = torch.randn(2, 1, 128, 300)
    out = InputAdapter()(x)
    assert out.shape == (2, 3, 224, 224)
    expected = nn.AdaptiveAvgPool2d((224, 224))(x.repeat(1, 3, 1, 1))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    # a 3-channel input is pooled as is; distinct channels stay distinct
    x3 = torch.randn(2, 3, 40, 70)
    out3 = InputAdapter(3, (100, 50))(x3)
    assert out3.shape == (2, 3, 100, 50)
    torch.testing.assert_close(out3, nn.AdaptiveAvgPool2d((100, 50))(x3))


def test_input_adapter_validation():
    with pytest.raises(ValueError, match="channels"):
        InputAdapter(3)(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, F, T\)"):
        InputAdapter(3)(torch.randn(1, 8, 8))
    with pytest.raises(ValueError, match="out_chans"):
        InputAdapter(0)
    with pytest.raises(ValueError, match="size"):
        InputAdapter(3, (224, 0))
    assert "size=(224, 224)" in repr(InputAdapter())


def test_backbone_with_input_adapter_end_to_end():
    adapter = InputAdapter(out_chans=3, size=(64, 64))
    model = create_backbone("cnn_small", 10, in_chans=1, input_adapter=adapter).eval()
    assert isinstance(model, nn.Sequential)
    assert [name for name, _ in model.named_children()] == ["adapter", "model"]
    assert model.adapter is adapter
    assert model.model.features[0][0].in_channels == 3
    x = torch.randn(2, 1, 128, 300)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 10)
        torch.testing.assert_close(out, model.model(adapter(x)))
    with pytest.raises(ValueError, match="in_chans"):
        create_backbone("cnn_small", 10, in_chans=2, input_adapter=adapter)
    with pytest.raises(TypeError, match="input_adapter"):
        create_backbone("cnn_small", 10, input_adapter=nn.Identity())


def test_resnet18_with_default_input_adapter():
    model = create_backbone("resnet18", 6, input_adapter=InputAdapter()).eval()
    assert model.model.conv1.in_channels == 3
    with torch.no_grad():
        assert model(torch.randn(2, 1, 128, 300)).shape == (2, 6)
        assert model(torch.randn(1, 3, 64, 50)).shape == (1, 6)


# --------------------------------------------------------------------------- docs

@pytest.mark.parametrize("module", [_adapter, _factory, _registry])
def test_docstring_examples(isolated_registry, module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
