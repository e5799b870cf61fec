"""`smartbrush convert`: tiny Stable Diffusion pipelines of the real architectures (CLIP text encoder,
AutoencoderKL, SD-ordered UNet blocks), saved as diffusers folders or original-layout single files,
converted with the CLI, and checked to predict exactly what their parents predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import save_file
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from smartbrush.cli import main
from smartbrush.method.pipeline import SmartBrushPipeline

PROMPT = "a red ball"


# -- tiny Stable Diffusion pipelines ----------------------------------------------------------------


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """CLIP's byte-level BPE with a tiny vocabulary: every byte, alone and word-final, and one merge."""
    alphabet = sorted(ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(a + "</w>" for a in alphabet)]
    tokens += ["re", "red</w>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[("r", "e"), ("re", "d</w>")], model_max_length=77)


def tiny_sd(in_channels: int = 4, seed: int = 0):
    """A StableDiffusion(Inpaint)Pipeline with SD 1.x's architecture, tiny and random."""
    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(  # SD's block order: attention in the high-resolution blocks
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=2,
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(16, 32),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=32,
    )
    scheduler = PNDMScheduler(  # SD 1.5's scheduler config
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    cls = StableDiffusionInpaintPipeline if in_channels == 9 else StableDiffusionPipeline
    return cls(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.fixture(scope="module")
def sd_folders(tmp_path_factory):
    """{"t2i": folder, "inpaint": folder}: tiny SD pipelines saved in diffusers format."""
    root = tmp_path_factory.mktemp("sd")
    folders = {}
    for name, channels in (("t2i", 4), ("inpaint", 9)):
        tiny_sd(channels, seed=channels).save_pretrained(root / name)
        folders[name] = root / name
    return folders


def convert_cli(*args) -> int:
    return main(["convert", *map(str, args)])


# -- function preservation through the converted folder ---------------------------------------------


def noise_predictions(parent_folder, converted_folder, in_channels: int, level: int = 3):
    """(parent's, converted's) noise prediction for the same latents, timestep and prompt."""
    parent_class = StableDiffusionInpaintPipeline if in_channels == 9 else StableDiffusionPipeline
    parent = parent_class.from_pretrained(parent_folder)
    child = SmartBrushPipeline.from_pretrained(converted_folder)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 4, 16, 16, generator=generator)
    mask = (torch.rand(2, 1, 16, 16, generator=generator) > 0.5).float()
    masked_image = torch.randn(2, 4, 16, 16, generator=generator)
    t = torch.tensor([999, 401])
    with torch.no_grad():
        parent_text = parent.encode_prompt(PROMPT, "cpu", 2, False)[0]
        child_text = child.encode_prompt([PROMPT] * 2)
        assert torch.allclose(parent_text, child_text, atol=1e-6)
        parent_input = latents if in_channels == 4 else torch.cat([latents, mask, masked_image], 1)
        expected = parent.unet(parent_input, t, parent_text).sample
        output = child.unet(
            child.unet_input(latents, mask, masked_image),
            t,
            child_text,
            class_labels=child.class_labels(level, 2),
        ).sample
    return expected, output, child


@pytest.mark.parametrize("kind", ["t2i", "inpaint"])
def test_converted_pipeline_predicts_the_parents_noise(sd_folders, tmp_path, kind):
    out = tmp_path / "smartbrush"
    assert convert_cli(sd_folders[kind], out) == 0
    in_channels = 4 if kind == "t2i" else 9
    expected, output, child = noise_predictions(sd_folders[kind], out, in_channels)

    assert child.unet.config.in_channels == 9 and child.unet.config.out_channels == 5
    assert child.unet.config.class_embed_type == "timestep"
    assert torch.allclose(output[:, :4], expected, atol=1e-5), (
        (output[:, :4] - expected).abs().max()
    )
    # the noise schedule is the parent's, sampled with DDIM
    assert type(child.scheduler).__name__ == "DDIMScheduler"
    parent_scheduler = PNDMScheduler.from_pretrained(sd_folders[kind], subfolder="scheduler")
    assert torch.equal(child.scheduler.alphas_cumprod, parent_scheduler.alphas_cumprod)
    # the VAE is the parent's
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    parent_vae = AutoencoderKL.from_pretrained(sd_folders[kind], subfolder="vae")
    with torch.no_grad():
        expected_latents = parent_vae.encode(image).latent_dist.mode() * 0.18215
        assert torch.allclose(child.encode_image(image), expected_latents, atol=1e-5)


def test_converted_folder_fills_through_the_pipeline(sd_folders, tmp_path):
    out = tmp_path / "smartbrush"
    assert convert_cli(sd_folders["inpaint"], out) == 0
    pipe = SmartBrushPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    mask = np.zeros((40, 56), dtype=bool)
    mask[8:30, 12:40] = True
    result = pipe(image, mask, PROMPT, num_inference_steps=3, seed=5, precision=0.5)

    filled = np.asarray(result.images[0])
    assert filled.shape == (40, 56, 3)
    assert np.array_equal(
        filled[~mask], np.asarray(image)[~mask]
    )  # nothing outside the mask changes
    assert not np.array_equal(filled[mask], np.asarray(image)[mask])
    again = pipe(image, mask, PROMPT, num_inference_steps=3, seed=5, precision=0.5)
    assert np.array_equal(np.asarray(again.images[0]), filled)


def test_compat_options_drop_mask_head_and_precision(sd_folders, tmp_path):
    out = tmp_path / "compat"
    assert convert_cli(sd_folders["inpaint"], out, "--no-mask-head", "--no-precision") == 0
    expected, output, child = noise_predictions(sd_folders["inpaint"], out, 9)
    assert child.unet.config.out_channels == 4 and child.unet.config.class_embed_type is None
    assert torch.allclose(output, expected, atol=1e-5)


# -- single-file checkpoints (original LDM layout) --------------------------------------------------


def _renamed(state: dict, rename: dict[str, str], inner: dict[str, str]) -> dict:
    """Rename keys by their longest matching prefix; `inner` renames parts after a resnet prefix."""
    result = {}
    for key, tensor in state.items():
        prefix = max((p for p in rename if key.startswith(p + ".")), key=len, default="")
        rest = key[len(prefix) :]
        if "resnets" in prefix or rename.get(prefix, "").endswith("attn_1"):
            for old, new in inner.items():
                rest = rest.replace(f".{old}.", f".{new}.")
        result[rename.get(prefix, prefix) + rest] = tensor
    return result


def ldm_checkpoint(pipe) -> dict[str, torch.Tensor]:
    """The pipeline's weights in the original Stable Diffusion (LDM) single-file layout."""
    unet, vae = pipe.unet, pipe.vae
    per = unet.config.layers_per_block + 1
    rename = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
        "mid_block.resnets.0": "middle_block.0",
        "mid_block.attentions.0": "middle_block.1",
        "mid_block.resnets.1": "middle_block.2",
    }
    for i, block in enumerate(unet.up_blocks):
        for j in range(per):
            rename[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{per * i + j + 1}.0"
            rename[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{per * i + j + 1}.1"
            rename[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{per * i + j}.0"
            rename[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{per * i + j}.1"
        rename[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{per * (i + 1)}.0.op"
        upsampler_index = 2 if hasattr(block, "attentions") else 1
        rename[f"up_blocks.{i}.upsamplers.0"] = (
            f"output_blocks.{per * i + per - 1}.{upsampler_index}"
        )
    resnet_parts = {
        "norm1": "in_layers.0",
        "conv1": "in_layers.2",
        "norm2": "out_layers.0",
        "conv2": "out_layers.3",
        "time_emb_proj": "emb_layers.1",
        "conv_shortcut": "skip_connection",
    }
    checkpoint = {
        "model.diffusion_model." + key: value
        for key, value in _renamed(unet.state_dict(), rename, resnet_parts).items()
    }

    n = len(vae.config.block_out_channels)
    rename = {
        "encoder.conv_norm_out": "encoder.norm_out",
        "decoder.conv_norm_out": "decoder.norm_out",
    }
    for part in ("encoder", "decoder"):
        rename[f"{part}.mid_block.attentions.0"] = f"{part}.mid.attn_1"
        for k in range(2):
            rename[f"{part}.mid_block.resnets.{k}"] = f"{part}.mid.block_{k + 1}"
    for i in range(n):
        for j in range(vae.config.layers_per_block + 1):
            rename[f"encoder.down_blocks.{i}.resnets.{j}"] = f"encoder.down.{i}.block.{j}"
            rename[f"decoder.up_blocks.{i}.resnets.{j}"] = f"decoder.up.{n - 1 - i}.block.{j}"
        rename[f"encoder.down_blocks.{i}.downsamplers.0"] = f"encoder.down.{i}.downsample"
        rename[f"decoder.up_blocks.{i}.upsamplers.0"] = f"decoder.up.{n - 1 - i}.upsample"
    vae_parts = {"conv_shortcut": "nin_shortcut", "group_norm": "norm", "to_q": "q", "to_k": "k"}
    vae_parts.update({"to_v": "v", "to_out.0": "proj_out"})
    for key, value in _renamed(vae.state_dict(), rename, vae_parts).items():
        if ".mid.attn_1." in key and key.endswith("weight") and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's attention projections are 1x1 convolutions
        checkpoint["first_stage_model." + key] = value

    for key, value in pipe.text_encoder.state_dict().items():
        checkpoint["cond_stage_model.transformer.text_model." + key] = value
    return {key: value.contiguous() for key, value in checkpoint.items()}


@pytest.fixture(scope="module")
def config_only(sd_folders, tmp_path_factory):
    """The tiny t2i folder without weights: what --config needs (configs and tokenizer)."""
    folder = tmp_path_factory.mktemp("configs") / "sd-configs"
    shutil.copytree(
        sd_folders["t2i"], folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin")
    )
    return folder


@pytest.mark.parametrize(
    "kind, suffix", [("t2i", ".safetensors"), ("inpaint", ".safetensors"), ("t2i", ".ckpt")]
)
def test_single_file_round_trip_with_local_config(sd_folders, config_only, tmp_path, kind, suffix):
    in_channels = 4 if kind == "t2i" else 9
    parent = tiny_sd(in_channels, seed=in_channels)  # the same weights as the saved folder
    checkpoint_file = tmp_path / f"model{suffix}"
    if suffix == ".ckpt":  # the CompVis training-checkpoint layout
        torch.save({"state_dict": ldm_checkpoint(parent), "global_step": 470000}, checkpoint_file)
    else:
        save_file(ldm_checkpoint(parent), checkpoint_file)

    out = tmp_path / "smartbrush"
    assert convert_cli(checkpoint_file, out, "--config", config_only) == 0
    expected, output, child = noise_predictions(sd_folders[kind], out, in_channels)
    assert child.unet.config.in_channels == 9
    assert torch.allclose(output[:, :4], expected, atol=1e-5), (
        (output[:, :4] - expected).abs().max()
    )


def test_single_file_without_config_offline_says_what_to_do(sd_folders, tmp_path, capsys):
    checkpoint_file = tmp_path / "model.safetensors"
    save_file(ldm_checkpoint(tiny_sd(4)), checkpoint_file)
    assert convert_cli(checkpoint_file, tmp_path / "out") == 2
    error = capsys.readouterr().err.strip()
    assert "--config" in error and "stable-diffusion-v1-5" in error and "\n" not in error
    assert not (tmp_path / "out").exists()


# -- clear errors, nothing written ------------------------------------------------------------------


def fake_pipeline_folder(root, class_name: str, **components) -> str:
    root.mkdir(parents=True)
    index = {"_class_name": class_name, "_diffusers_version": "0.42.1", **components}
    (root / "model_index.json").write_text(json.dumps(index))
    return str(root)


SD_COMPONENTS = {
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "scheduler": ["diffusers", "PNDMScheduler"],
}


def sdxl_folder(root):
    components = dict(SD_COMPONENTS)
    components["text_encoder_2"] = ["transformers", "CLIPTextModelWithProjection"]
    return fake_pipeline_folder(root, "StableDiffusionXLPipeline", **components)


def sdxl_single_file(root):
    root.mkdir(parents=True)
    path = root / "sdxl.safetensors"
    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3),
            "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": torch.zeros(8),
        },
        path,
    )
    return str(path)


def not_sd_single_file(root):
    root.mkdir(parents=True)
    save_file({"lora_unet_down.weight": torch.zeros(4, 4)}, root / "lora.safetensors")
    return str(root / "lora.safetensors")


def damaged_single_file(root):
    root.mkdir(parents=True)
    (root / "model.ckpt").write_bytes(b"not a checkpoint")
    return str(root / "model.ckpt")


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda root: str(root / "missing"), "no such file or folder"),
        (lambda root: "./missing/model", "no such file or folder"),
        (lambda root: "someone/not-cached-model", "not in the local cache"),
        (sdxl_folder, "SDXL"),
        (sdxl_single_file, "SDXL"),
        (lambda root: fake_pipeline_folder(root, "KandinskyPipeline"), "unsupported architecture"),
        (lambda root: fake_pipeline_folder(root, "SmartBrushPipeline"), "already a SmartBrush"),
        (lambda root: fake_pipeline_folder(root, "StableDiffusionPipeline"), "has no unet"),
        (not_sd_single_file, "not a Stable Diffusion checkpoint"),
        (damaged_single_file, "cannot read the checkpoint"),
        (lambda root: str(root.mkdir() or root), "no model_index.json"),
    ],
)
def test_bad_sources_get_one_line_errors(tmp_path, capsys, make_source, message):
    source = make_source(tmp_path / "source")
    assert convert_cli(source, tmp_path / "out") == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("smartbrush convert: error:") and message in error, error
    assert "\n" not in error
    assert not (tmp_path / "out").exists()


def test_sdxl_style_unet_is_refused_after_loading(sd_folders, tmp_path, capsys):
    """A folder that claims SD 1.x but whose UNet has SDXL's added conditioning."""
    folder = tmp_path / "sdxl-unet"
    shutil.copytree(sd_folders["t2i"], folder)
    config_file = folder / "unet" / "config.json"
    config = json.loads(config_file.read_text())
    config.update(
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=32 + 6 * 8,
    )
    config_file.write_text(json.dumps(config))
    assert convert_cli(folder, tmp_path / "out") == 2
    assert "addition_embed_type='text_time'" in capsys.readouterr().err


def test_existing_output_is_kept_unless_overwrite(sd_folders, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert convert_cli(sd_folders["t2i"], out) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"

    assert convert_cli(sd_folders["t2i"], out, "--overwrite") == 0
    assert not (out / "notes.txt").exists()
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "SmartBrushPipeline"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def test_converted_folder_trains_and_exports(sd_folders, tmp_path):
    """`model.init = OUT`: a few real training steps on the shapes world, then the exported pipeline
    still has the CLIP text encoder and fills."""
    from smartbrush.research.training import train
    from smartbrush.research.training_config import DEFAULTS
    from smartbrush.runtime.config import load_config
    from smartbrush.runtime.loading import load_pipeline

    out = tmp_path / "smartbrush"
    assert convert_cli(sd_folders["t2i"], out) == 0
    root = Path(__file__).resolve().parents[1]
    config = load_config(
        root / "configs" / "tiny.toml",
        [
            f"model.init={json.dumps(str(out))}",
            f"run.output_dir={json.dumps(str(tmp_path / 'run'))}",
            "train.max_steps=2",
            "train.batch_size=2",
            "train.num_threads=1",
            "export.text_encoder=true",
        ],
        defaults=DEFAULTS,
    )
    state = train(config)
    assert state["step"] == 2
    trained = load_pipeline(str(tmp_path / "run" / "pipeline"))
    assert type(trained.text_encoder).__name__ == "CLIPTextModel"
    assert trained.unet.config.in_channels == 9 and trained.unet.config.out_channels == 5
    before = SmartBrushPipeline.from_pretrained(out).unet.state_dict()
    changed = [k for k, v in trained.unet.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # training moved the weights
