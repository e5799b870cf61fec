"""`smartbrush train`: the recipe end to end on configs/tiny.toml, checkpoints, resume, config errors."""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from smartbrush.cli import main
from smartbrush.method.masks import NUM_LEVELS, box_mask
from smartbrush.research import training, world
from smartbrush.research.datasets import WorldDataset
from smartbrush.research.training_config import DEFAULTS
from smartbrush.runtime.config import load_config
from smartbrush.runtime.loading import load_pipeline

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"


def run(tmp_path, *overrides, name="run"):
    out = tmp_path / name
    code = main(
        [
            "train",
            str(TINY),
            "--set",
            f"run.output_dir={out}",
            *[a for o in overrides for a in ("--set", o)],
        ]
    )
    assert code == 0
    return out


def log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_training_runs_checkpoints_and_resumes_where_it_stopped(tmp_path):
    out = run(tmp_path)  # 4 steps, a checkpoint every 2
    records = log(out)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in records)
    assert all(0 <= r["dice"] <= 1 for r in records)
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step-0000002", "step-0000004"]
    with safe_open(out / "checkpoints/step-0000004/checkpoint.safetensors", "pt") as file:
        assert json.loads(file.metadata()["state"])["step"] == 4
        keys = list(file.keys())
    assert any(k.startswith("unet.") for k in keys) and any(k.startswith("optim.") for k in keys)
    assert any(k.startswith("ema.") for k in keys) and "rng.torch" in keys

    # the same command with a larger budget continues at step 5, it does not start over
    run(tmp_path, "train.max_steps=6")
    assert [r["step"] for r in log(out)] == [1, 2, 3, 4, 5, 6]
    # ... and ends with exactly the weights, optimizer state and RNG of an uninterrupted run
    straight = run(tmp_path, "train.max_steps=6", "train.checkpoint_every=0", name="straight")
    a = safe_open(straight / "checkpoints/step-0000006/checkpoint.safetensors", "pt")
    b = safe_open(out / "checkpoints/step-0000006/checkpoint.safetensors", "pt")
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.keys():
        assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key

    # the exported pipeline is a working SmartBrush model (text encoder supplied by the loader)
    pipe = load_pipeline(str(out / "pipeline"))
    pipe.set_progress_bar_config(disable=True)
    scene = world.make_scene("test", 0)
    result = pipe(scene.background, scene.mask, "a red star", seed=1, num_inference_steps=2)
    after = np.asarray(result.images[0])
    assert after.shape == scene.background.shape
    assert np.array_equal(after[~scene.mask], scene.background[~scene.mask])


def test_the_cosine_schedule_decays_to_zero_over_the_budget(tmp_path):
    out = run(tmp_path, "train.lr_schedule=cosine", "train.checkpoint_every=0")  # 4 steps
    base = load_config(TINY, defaults=DEFAULTS)["train"]["learning_rate"]
    rates = [r["lr"] / base for r in log(out)]
    assert np.allclose(rates, [1.0, 0.8536, 0.5, 0.1464], atol=1e-4), rates
    # a budget in minutes: half of it spent is half the rate, whatever the step
    half_time = {**DEFAULTS["train"], "lr_schedule": "cosine", "warmup_steps": 1, "max_minutes": 10}
    assert np.isclose(
        training.learning_rate_at(half_time, 3, 300.0), half_time["learning_rate"] / 2
    )


def recipe_examples(count=200, **switches):
    recipe = {**DEFAULTS["recipe"], **switches}
    data = training.RecipeDataset(WorldDataset("train", 32), recipe, NUM_LEVELS, seed=0)
    return [(data[i], WorldDataset("train", 32)[i]) for i in range(count)]


def test_the_recipe_mixes_levels_tasks_and_prompts():
    examples = recipe_examples()
    whole = [e for e, _ in examples if e["coarse"].all()]
    assert 0.1 < len(whole) / len(examples) < 0.3  # about 20 % text-to-image
    assert {e["level"] for e, _ in examples} == set(range(NUM_LEVELS + 1))
    for example, raw in examples:
        exact = raw["mask"]
        assert np.array_equal(example["mask"][0] > 0, exact)
        assert (example["coarse"][0] >= example["mask"][0]).all()  # m_s covers the object
        if not example["coarse"].all() and example["level"] == 0:
            assert np.array_equal(example["coarse"][0] > 0, exact)
        if not example["coarse"].all() and example["level"] == NUM_LEVELS:
            assert np.array_equal(example["coarse"][0] > 0, box_mask(exact))
        assert example["prompt"] in ("", raw["label"], *raw["captions"])
    prompts = [e["prompt"] for e, _ in examples]
    assert 0.03 < prompts.count("") / len(prompts) < 0.2
    assert (
        sum(p in world.SHAPES for p in prompts) > 20
        and sum(len(p.split()) > 2 for p in prompts) > 50
    )


def test_ablation_switches():
    for example, raw in recipe_examples(100, precision_conditioning=False, multitask=False):
        assert example["level"] == 0 and np.array_equal(example["coarse"][0] > 0, raw["mask"])
    for example, raw in recipe_examples(100, captions=False):
        assert example["prompt"] in ("", raw["label"])
    for example, raw in recipe_examples(100, random_masks=True):
        coarse = example["coarse"][0] > 0
        assert coarse[raw["mask"]].all() and not coarse.all() and example["level"] == 0


def test_ablation_models_drop_the_class_embedding_and_the_mask_head(tmp_path):
    config = load_config(
        TINY, ["recipe.precision_conditioning=false", "recipe.mask_head=false"], defaults=DEFAULTS
    )
    pipe, _ = training.build_pipeline(config)
    assert pipe.unet.config.class_embed_type is None and pipe.unet.config.out_channels == 3
    pipe, _ = training.build_pipeline(load_config(TINY, defaults=DEFAULTS))
    assert pipe.unet.config.class_embed_type == "timestep" and pipe.unet.config.out_channels == 4
    assert pipe.unet.config.in_channels == 7 and pipe.scheduler.config.num_train_timesteps == 1000


def test_config_errors_are_one_line_messages(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_sise = 3\n")
    assert main(["train", str(bad)]) == 2
    assert "unknown config key train.batch_sise" in capsys.readouterr().err
    assert main(["train", str(TINY), "--set", "train.batch_size=many"]) == 2
    assert "train.batch_size must be an integer" in capsys.readouterr().err
    assert main(["train", str(TINY), "--set", "train.lr_schedule=linear"]) == 2
    assert "train.lr_schedule must be one of constant, cosine" in capsys.readouterr().err
    assert main(["train", str(TINY), "--set", "nodot=1"]) == 2
    bad.write_text("[train\n")
    assert main(["train", str(bad)]) == 2
    assert "cannot parse" in capsys.readouterr().err
    yaml_config = tmp_path / "c.yaml"
    yaml_config.write_text("train:\n  batch_size: 2\nrecipe:\n  captions: false\n")
    config = load_config(yaml_config, defaults=DEFAULTS)
    assert config["train"]["batch_size"] == 2 and config["recipe"]["captions"] is False


def test_export_in_float16_halves_the_files_and_loads_as_float32(tmp_path, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    run(tmp_path, f"export.dir={full}", name="a")
    run(tmp_path, f"export.dir={half}", "export.dtype=float16", name="b")
    weights = "unet/diffusion_pytorch_model.safetensors"
    assert (half / weights).stat().st_size < 0.6 * (full / weights).stat().st_size
    with safe_open(half / weights, "pt") as file:
        assert {file.get_tensor(k).dtype for k in file.keys()} == {torch.float16}  # noqa: SIM118
    a, b = load_pipeline(str(full)), load_pipeline(str(half))
    assert b.unet.dtype == torch.float32
    for p, q in zip(a.unet.parameters(), b.unet.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-4)  # the same model, rounded to float16
    assert main(["train", str(TINY), "--set", f"run.output_dir={tmp_path / 'c'}",
                 "--set", "export.dtype=int8"]) == 2  # fmt: skip
    assert "export.dtype must be float32 or float16" in capsys.readouterr().err
