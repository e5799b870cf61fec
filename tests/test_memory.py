"""Memory savers change memory and speed, never the maths: checked on a tiny SmartBrush UNet on CPU."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
import torch.utils.checkpoint
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from smartbrush.method.model import smartbrush_unet_from, tiny_unet
from smartbrush.research.memory import apply_memory_savers, make_optimizer


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = smartbrush_unet_from(
        tiny_unet(4, cross_attention_dim=32, sample_size=16), image_channels=4
    )
    with torch.no_grad():  # non-zero new weights, so every input and output channel matters
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0, 0.02)
    return model


def batch():
    generator = torch.Generator().manual_seed(1)
    return dict(
        sample=torch.randn(2, 9, 16, 16, generator=generator),
        timestep=torch.tensor([10, 700]),
        encoder_hidden_states=torch.randn(2, 6, 32, generator=generator),
        class_labels=torch.tensor([0.0, 600.0]),
    )


def loss_and_grads(model):
    model.train()
    model.zero_grad()
    output = model(**batch()).sample
    loss = (output**2).mean()
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(unet, monkeypatch):
    calls = []
    real_checkpoint = torch.utils.checkpoint.checkpoint

    def counting_checkpoint(*args, **kwargs):
        calls.append(1)
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting_checkpoint)
    plain, checkpointed = copy.deepcopy(unet), copy.deepcopy(unet)
    apply_memory_savers(plain, gradient_checkpointing=False)
    applied = apply_memory_savers(checkpointed, gradient_checkpointing=True)
    assert applied == {"gradient_checkpointing": True, "attention": "sdpa"}

    expected_loss, expected_grads = loss_and_grads(plain)
    assert not calls  # the plain model stores its activations
    loss, grads = loss_and_grads(checkpointed)
    assert calls  # the checkpointed model really recomputes blocks in the backward pass
    assert torch.allclose(loss, expected_loss, rtol=1e-5)
    for name, grad in grads.items():
        assert torch.allclose(grad, expected_grads[name], rtol=1e-4, atol=1e-7), name

    apply_memory_savers(checkpointed, gradient_checkpointing=False)
    calls.clear()
    loss_and_grads(checkpointed)
    assert not calls and not checkpointed.is_gradient_checkpointing


def test_attention_choices_agree(unet):
    outputs = {}
    for attention, processor in (("default", AttnProcessor), ("sdpa", AttnProcessor2_0)):
        model = copy.deepcopy(unet).eval()
        apply_memory_savers(model, attention=attention)
        assert {type(p) for p in model.attn_processors.values()} == {processor}
        with torch.no_grad():
            outputs[attention] = model(**batch()).sample
    assert torch.allclose(outputs["sdpa"], outputs["default"], atol=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("xformers") is not None and torch.cuda.is_available(),
    reason="xformers is usable here",
)
def test_xformers_unavailable_is_a_clear_error(unet):
    model = copy.deepcopy(unet)
    before = {name: type(p) for name, p in model.attn_processors.items()}
    with pytest.raises(ValueError, match="xformers.*use attention 'sdpa'"):
        apply_memory_savers(model, attention="xformers", gradient_checkpointing=True)
    assert {name: type(p) for name, p in model.attn_processors.items()} == before
    assert not model.is_gradient_checkpointing  # nothing half-applied


def test_unknown_attention_is_refused(unet):
    with pytest.raises(ValueError, match="sdpa, xformers, default"):
        apply_memory_savers(copy.deepcopy(unet), attention="flash")


@pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes here"
)
def test_8bit_adam_falls_back_to_adamw_with_a_warning(unet):
    model = copy.deepcopy(unet)
    with pytest.warns(RuntimeWarning, match="bitsandbytes is not installed"):
        optimizer = make_optimizer(model.parameters(), 1e-3, use_8bit_adam=True, weight_decay=0.01)
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["lr"] == 1e-3 and optimizer.defaults["weight_decay"] == 0.01
    before = model.conv_in.weight.detach().clone()
    loss_and_grads(model)
    optimizer.step()
    assert not torch.equal(model.conv_in.weight, before)


def test_8bit_adam_uses_bitsandbytes_when_installed(unet):
    bitsandbytes = pytest.importorskip("bitsandbytes")
    optimizer = make_optimizer(copy.deepcopy(unet).parameters(), 1e-4, use_8bit_adam=True)
    assert isinstance(optimizer, bitsandbytes.optim.AdamW8bit)


def test_plain_adamw_without_warning(unet, recwarn):
    optimizer = make_optimizer(copy.deepcopy(unet).parameters(), 2e-4, use_8bit_adam=False)
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["lr"] == 2e-4
    assert not [w for w in recwarn if "bitsandbytes" in str(w.message)]


def test_training_config_switches_the_memory_savers_on(tmp_path):
    """`smartbrush train` with train.gradient_checkpointing / attention / use_8bit_adam set."""
    import json
    import warnings
    from pathlib import Path

    from smartbrush.cli import main

    config = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"
    out = tmp_path / "run"
    overrides = [
        f"run.output_dir={out}",
        "train.max_steps=2",
        "train.gradient_checkpointing=true",
        "train.attention=default",
        "train.use_8bit_adam=true",  # no bitsandbytes here: warns and trains with AdamW
    ]
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert main(["train", str(config), *[a for o in overrides for a in ("--set", o)]]) == 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 and all(r["loss"] == r["loss"] for r in records)
