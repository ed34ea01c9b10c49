"""The two tutorial presets: ``tutorial`` (ResNet18, 224) and ``tutorial-advanced``
(ResNeXt-101 32x8d, 512, warmup then StepLR).

The full-size recipe is checked without running the big model: the frontend and
the input adapter at 512, the lr of every epoch, the built model's class and size.
One training step of each preset runs on a small input.
"""

from __future__ import annotations

import pytest
import torch

import augkit as ak
from experiments import config as C
from experiments.arms import build_arm
from experiments.data.audioset import AudioSet
from experiments.training.optim import build_optimizer, lr_lambda
from experiments.training.trainer import Recipe, build_model, make_trainer

GTZAN_CLASSES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                 "reggae", "rock"]

#: The lr of each epoch 0..29 of tutorial-advanced: warmup 1e-5 -> 8.2e-5 over epochs
#: 0-4, then StepLR(10, 0.1) counted from epoch 5.
ADVANCED_LR = ([1e-5, 2.8e-5, 4.6e-5, 6.4e-5, 8.2e-5] + [1e-4] * 10 + [1e-5] * 10
               + [1e-6] * 5)


def chain_of(cfg: C.Config, num_classes: int = 10) -> ak.Compose:
    return build_arm("all", cfg.frontend, cfg.ablation, num_classes).chain


def torch_sequential_lr(lr: float, epochs: int, warmup: int, start_factor: float,
                        step_size: int, gamma: float) -> list[float]:
    """Torch's own LinearLR + StepLR (+ SequentialLR), stepped once per epoch."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=lr)
    s = torch.optim.lr_scheduler
    step = s.StepLR(opt, step_size=step_size, gamma=gamma)
    if warmup:
        sched = s.SequentialLR(opt, [s.LinearLR(opt, start_factor=start_factor,
                                                total_iters=warmup), step],
                               milestones=[warmup])
    else:
        sched = step
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def per_step_lr(cfg: C.Config, steps_per_epoch: int) -> list[list[float]]:
    """The lr of every optimizer step of every epoch, from the runner's own optimizer."""
    _, sched = build_optimizer(cfg.optim, torch.nn.Linear(1, 1), steps_per_epoch)
    opt = sched.optimizer
    out = []
    for _ in range(cfg.optim.epochs):
        epoch = []
        for _ in range(steps_per_epoch):
            epoch.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.append(epoch)
    return out


def test_tutorial_advanced_resolves_to_the_recipe():
    cfg = C.resolve("tutorial-advanced")
    model, optim = cfg.model, cfg.optim
    assert (model.backbone, model.tutorial_input, model.input_size, model.pretrained) == (
        "resnext101_32x8d", True, 512, False)
    assert (optim.optimizer, optim.lr, optim.weight_decay, optim.batch_size, optim.epochs) == (
        "adam", 1e-4, 0.0, 16, 30)
    assert (optim.schedule, optim.warmup_epochs, optim.warmup_start_factor, optim.step_size,
            optim.gamma) == ("step", 5.0, 0.1, 10, 0.1)
    assert cfg.runtime.arms == ["baseline", "all"] and cfg.runtime.seeds == [0, 1, 2]
    # Everything else is the tutorial preset's: frontend, split, augmentations.
    base = C.resolve("tutorial")
    for group in ("data", "frontend", "ablation"):
        assert getattr(cfg, group) == getattr(base, group), group
    augment = cfg.ablation.augment
    assert augment["time_mask"]["max_width"] == augment["freq_mask"]["max_width"] == 20
    assert augment["noise"]["std"] == 0.01 and augment["gain"]["factor"] == [0.8, 1.2]
    chain = chain_of(cfg)
    assert chain.names == ["mel", "time_mask", "freq_mask", "noise", "gain", "scale"]
    assert chain["noise"].std == (0.01, 0.01) and chain["gain"].factor == (0.8, 1.2)
    assert "87.5%" in C.load_preset("tutorial-advanced")["_doc"]


def test_tutorial_advanced_full_size_input_without_the_model_forward():
    """A 30-s clip at 22050 Hz -> chain -> the built model's adapter: (B, 3, 512, 512)."""
    cfg = C.resolve("tutorial-advanced")
    chain = chain_of(cfg)
    wave = 0.1 * torch.randn(2, 1, 30 * 22050, generator=torch.Generator().manual_seed(0))
    x, soft = chain(wave, target=torch.tensor([0, 9]), generator=torch.Generator().manual_seed(1))
    assert x.shape == (2, 1, 128, 30 * 22050 // 640 + 1) and soft.shape == (2, 10)
    model = build_model(cfg.model, 10, torch.device("cpu"))  # random init: < 1 s on 2 cores
    assert list(dict(model.named_children())) == ["adapter", "model"]
    assert model.adapter.size == (512, 512) and model.adapter.out_chans == 3
    pixels = model.adapter(x)
    assert pixels.shape == (2, 3, 512, 512) and torch.isfinite(pixels).all()
    net = model.model  # timm's ResNeXt-101 32x8d: 3-4-23-3 bottlenecks, 32 groups of 8
    assert type(net).__name__ == "ResNet" and net.conv1.in_channels == 3
    assert [len(net.layer1), len(net.layer2), len(net.layer3), len(net.layer4)] == [3, 4, 23, 3]
    assert net.layer1[0].conv2.groups == 32 and net.layer1[0].conv2.out_channels == 256
    assert net.fc.out_features == 10
    assert sum(p.numel() for p in model.parameters()) == 86_762_826  # 88.8M at 1000 classes
    # The tutorial preset keeps its 224.
    assert C.resolve("tutorial").model.input_size == 224


def test_tutorial_advanced_lr_per_epoch():
    cfg = C.resolve("tutorial-advanced")
    steps = per_step_lr(cfg, steps_per_epoch=3)
    for epoch, lrs in enumerate(steps):  # constant within an epoch: decays at boundaries
        assert lrs == [lrs[0]] * 3, epoch
    assert [e[0] for e in steps] == pytest.approx(ADVANCED_LR, rel=1e-12, abs=0)
    assert [e[0] for e in steps] == pytest.approx(
        torch_sequential_lr(1e-4, 30, 5, 0.1, 10, 0.1), rel=1e-12, abs=0)


@pytest.mark.parametrize("epochs,warmup,start,step_size,gamma", [
    (30, 5, 0.1, 10, 0.1), (30, 5, 1 / 3, 10, 0.1), (12, 0, 0.1, 4, 0.5), (20, 3, 0.25, 1, 0.9),
    (7, 7, 0.05, 2, 0.1),
])
def test_step_schedule_equals_torch_sequential_lr(epochs, warmup, start, step_size, gamma):
    f = lr_lambda("step", epochs, float(warmup), 4, step_size, gamma, start)
    ours = [2e-3 * f(4 * e + k) for e in range(epochs) for k in range(4)]
    ref = [lr for lr in torch_sequential_lr(2e-3, epochs, warmup, start, step_size, gamma)
           for _ in range(4)]
    assert ours == pytest.approx(ref, rel=1e-12, abs=0)


def test_existing_presets_are_unchanged():
    """The step schedule's fields keep their defaults there."""
    for preset in ("quick", "tutorial", "augkit"):
        cfg = C.resolve(preset)
        assert (cfg.model.input_size, cfg.optim.warmup_start_factor, cfg.optim.step_size,
                cfg.optim.gamma) == (224, 0.1, 10, 0.1)
    advanced = C.resolve("tutorial-advanced")
    identity = C.identity(advanced)
    assert identity["model"]["input_size"] == 512 and identity["optim"]["schedule"] == "step"
    changed = C.resolve("tutorial-advanced", overrides={"gamma": 0.5})
    assert C.identity_diff(advanced, changed) == ["gamma"]  # a changed decay is refused
    optim = C.resolve("quick").optim  # cosine: warmup (step + 1) / warm, then cosine, per step
    f = lr_lambda(optim.schedule, optim.epochs, optim.warmup_epochs, 10)
    assert [f(0), f(9), f(10)] == [0.1, 1.0, 1.0]
    assert f(10 * optim.epochs) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("overrides,message", [
    ({"schedule": "steps"}, "schedule must be 'cosine', 'constant' or 'step'"),
    ({"warmup_epochs": 2.5}, "warmup_epochs must be a whole number of epochs"),
    ({"step_size": 0}, "step_size must be an integer >= 1"),
    ({"step_size": 2.5}, "step_size must be an integer"),
    ({"gamma": 0.0}, "gamma must be in (0, 1]"),
    ({"gamma": 1.5}, "gamma must be in (0, 1]"),
    ({"warmup_start_factor": 0}, "warmup_start_factor must be in (0, 1]"),
    ({"input_size": 0}, "input_size must be > 0"),
    ({"input_size": "big"}, "input_size"),
])
def test_bad_schedule_and_input_size_get_a_one_line_error(overrides, message):
    with pytest.raises(ValueError) as e:
        C.resolve("tutorial-advanced", overrides=overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def tiny_set(seconds: float, sample_rate: int, n: int = 4) -> AudioSet:
    """``n`` noise clips of ``seconds`` at ``sample_rate``, GTZAN's 10 classes."""
    length = int(seconds * sample_rate)
    g = torch.Generator().manual_seed(0)
    samples = (torch.randn(n * length, generator=g) * 3000).to(torch.int16)
    lengths = torch.full((n,), length)
    return AudioSet(samples, torch.arange(n) * length, lengths, torch.arange(n) % 10,
                    [f"c/{i}.wav" for i in range(n)], GTZAN_CLASSES, sample_rate, [])


@pytest.mark.parametrize("preset,input_size", [
    ("tutorial", 224), pytest.param("tutorial-advanced", 64, marks=pytest.mark.slow)])
def test_one_training_step_at_batch_2(preset, input_size):
    """The preset's own chain, model, optimizer and schedule: one step on 1-s clips.

    ``tutorial`` trains at its real 224; ``tutorial-advanced`` at 64 instead of 512
    (one ResNeXt step at 512, batch 2, takes about 8 s on 2 idle CPU cores; at 64, 1-2 s).
    """
    torch.set_num_threads(min(2, torch.get_num_threads()))
    cfg = C.resolve(preset, overrides={"crop_seconds": 1.0, "batch_size": 2,
                                       "input_size": input_size})
    data = tiny_set(1.0, cfg.frontend.sample_rate)
    trainer = make_trainer(chain_of(cfg), Recipe.of(cfg), 0, data, torch.arange(4))
    assert trainer.model.adapter.size == (input_size, input_size)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    _, x, target = trainer.batch(0, torch.arange(4))
    assert x.shape == (2, 1, 128, 22050 // 640 + 1) and target.shape == (2, 10)
    lr = trainer.opt.param_groups[0]["lr"]
    assert lr == pytest.approx(1e-5 if preset == "tutorial-advanced" else 1e-4, rel=1e-12)
    logits, loss = trainer.train_step(x, target)
    assert logits.shape == (2, 10) and torch.isfinite(loss)
    # timm zero-initialises each block's last BN scale, so the first step moves the stem,
    # the shortcuts, the BNs and the head; every parameter with a gradient must move.
    moved = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    graded = {n for n, p in trainer.model.named_parameters()
              if p.grad is not None and p.grad.abs().max() > 0}
    assert {"model.conv1.weight", "model.fc.weight", "model.fc.bias"} <= graded
    assert moved == graded
