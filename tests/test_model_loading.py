"""One model loader: every model you train is a model you can fill with and serve.

The round trip a user makes: `smartbrush train configs/tiny.toml` (exported without a text encoder),
then `smartbrush fill --local --model FOLDER` and `smartbrush serve --model FOLDER` + `smartbrush fill`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from daemon_helpers import SERVE_COMMAND, start_daemon_process, stop_process
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from smartbrush.cli import main
from smartbrush.method.pipeline import SmartBrushPipeline
from smartbrush.runtime.loading import load_pipeline
from smartbrush.testing import free_port, tiny_pipeline
from smartbrush.wire.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "tiny.toml"
BOX = [8, 6, 16, 16]  # x, y, w, h inside the 32x32 test image


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The pipeline folder `smartbrush train configs/tiny.toml` writes (4 steps)."""
    out = tmp_path_factory.mktemp("train") / "tiny"
    assert main(["train", str(TINY_CONFIG), "--set", f"run.output_dir={out}"]) == 0
    return out / "pipeline"


@pytest.fixture
def image_file(tmp_path) -> Path:
    image = Image.new("RGB", (32, 32), (40, 120, 200))
    ImageDraw.Draw(image).rectangle([0, 22, 31, 31], fill=(60, 160, 60))
    image.save(tmp_path / "scene.png")
    return tmp_path / "scene.png"


def fill_command(image_file: Path, out: Path, *extra: str) -> list[str]:
    box = ",".join(map(str, BOX))
    return ["fill", str(image_file), "-o", str(out), "--box", box, "--prompt", "a red heart",
            "--steps", "2", "--seed", "5", *extra]  # fmt: skip


def changed_only_in_box(before: Path, after: Path) -> np.ndarray:
    original, result = np.asarray(Image.open(before)), np.asarray(Image.open(after))
    x, y, w, h = BOX
    outside = np.ones(original.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert (result[outside] == original[outside]).all()
    return result


def test_train_exports_a_folder_without_a_text_encoder(trained):
    index = json.loads((trained / "model_index.json").read_text())
    assert index["_class_name"] == "SmartBrushPipeline"
    assert index["text_encoder"] == [None, None]  # configs/tiny.toml: export.text_encoder = false


def test_trained_folder_fills_locally_and_through_a_real_daemon(trained, image_file, tmp_path):
    local = tmp_path / "local.png"
    assert main(fill_command(image_file, local, "--local", "--model", str(trained))) == 0
    changed_only_in_box(image_file, local)

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    daemon = start_daemon_process(endpoint, tmp_path, command=SERVE_COMMAND, model=str(trained))
    try:
        remote = tmp_path / "remote.png"
        assert main(fill_command(image_file, remote, "--endpoint", endpoint)) == 0
        # the daemon checks the model name it serves against --model
        also = tmp_path / "also.png"
        assert (
            main(fill_command(image_file, also, "--endpoint", endpoint, "--model", str(trained)))
            == 0
        )
        assert main(fill_command(image_file, also, "--endpoint", endpoint, "--model", "demo")) == 2
    finally:
        stop_process(daemon)
    same_model = np.asarray(Image.open(local), int) - np.asarray(Image.open(remote), int)
    assert np.abs(same_model).max() <= 1  # the same weights, seed and request: the same pixels


def test_trained_folder_runs_batch_locally(trained, image_file, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"image": image_file.name, "box": BOX, "prompt": "a star"}) + "\n")
    results = tmp_path / "results"
    command = ["batch", str(jobs), "-o", str(results), "--local", "--model", str(trained)]
    assert main([*command, "--steps", "2"]) == 0
    (out,) = results.glob("*.png")
    changed_only_in_box(image_file, out)


def test_every_kind_of_name_loads_through_one_function(tmp_path, tiny_model_dir):
    assert isinstance(load_pipeline("demo"), SmartBrushPipeline)
    tiny = load_pipeline(tiny_model_dir)
    # a folder with its own text encoder, as `convert` or `train` with export.text_encoder=true write
    folder = tmp_path / "with-encoder"
    tiny.save_pretrained(folder)
    again = load_pipeline(folder)
    assert type(again.text_encoder) is type(tiny.text_encoder)
    for name, tensor in tiny.unet.state_dict().items():
        assert torch.equal(again.unet.state_dict()[name], tensor), name
    assert load_pipeline(tiny_model_dir, dtype="bfloat16").unet.dtype == torch.bfloat16


def test_a_stable_diffusion_folder_is_converted_in_memory(tmp_path):
    from test_convert import tiny_sd

    tiny_sd(9, seed=9).save_pretrained(tmp_path / "sd-inpaint")
    pipe = load_pipeline(tmp_path / "sd-inpaint")
    assert isinstance(pipe, SmartBrushPipeline) and pipe.vae is not None
    assert pipe.unet.config.in_channels == 9
    assert not (tmp_path / "sd-inpaint" / "unet" / "smartbrush").exists()  # nothing written


def _stripped_folder(root: Path) -> Path:
    folder = root / "no-index"
    tiny_pipeline().save_pretrained(folder)
    (folder / "model_index.json").unlink()
    return folder


def _broken_index(root: Path) -> Path:
    folder = root / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text("{not json")
    return folder


def _missing_weights(root: Path) -> Path:
    folder = root / "no-weights"
    tiny_pipeline().save_pretrained(folder)
    shutil.rmtree(folder / "unet")
    return folder


def _text_file(root: Path) -> Path:
    (root / "notes.txt").write_text("hello")
    return root / "notes.txt"


def _foreign_safetensors(root: Path) -> Path:
    save_file({"weight": torch.zeros(2)}, root / "lora.safetensors")
    return root / "lora.safetensors"


@pytest.mark.parametrize(
    "make_name, message",
    [
        (
            lambda root: "no-such-model",
            "no model 'no-such-model' (no such file or folder): expected",
        ),
        (
            lambda root: str(root / "missing"),
            "(no such file or folder): expected demo, shapes, a folder",
        ),
        (_stripped_folder, "no model_index.json in this folder"),
        (_broken_index, "model_index.json: unreadable"),
        (_missing_weights, "cannot load model"),
        (_text_file, "not a model file (expected .safetensors or .ckpt)"),
        (_foreign_safetensors, "not a Stable Diffusion checkpoint in the original layout"),
        (lambda root: "nobody/no-such-model", "not in the local cache"),
    ],
)
def test_bad_names_get_one_clear_error(tmp_path, make_name, message, capsys):
    name = str(make_name(tmp_path))
    with pytest.raises(UserError) as raised:
        load_pipeline(name)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    # ... and the same one line from the commands, never a traceback
    for command in (
        [
            "fill",
            "x.png",
            "-o",
            str(tmp_path / "o.png"),
            "--box",
            "1,1,2,2",
            "--prompt",
            "a",
            "--local",
            "--model",
            name,
        ],  # fmt: skip
        [
            "serve",
            "--model",
            name,
            "--endpoint",
            f"tcp://127.0.0.1:{free_port()}",
            "--log-file",
            "-",
        ],
    ):
        if command[0] == "fill":
            Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
            command[1] = str(tmp_path / "x.png")
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
