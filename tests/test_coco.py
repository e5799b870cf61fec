"""COCO-format instance segmentation loader: polygons, RLE (compressed and not), captions, errors."""

import json

import numpy as np
import PIL.Image
import pytest
from pycocotools import mask as mask_utils

from smartbrush.cli import main
from smartbrush.research.datasets import CocoInstances

W, H = 64, 48


@pytest.fixture
def coco(tmp_path):
    """Two images: a red rectangle (polygon), a blue disc (compressed RLE), a green bar (plain RLE)."""
    yy, xx = np.mgrid[0:H, 0:W]
    first = np.full((H, W, 3), 90, np.uint8)
    first[10:30, 8:24] = (220, 20, 20)
    second = np.full((H, W, 3), 90, np.uint8)
    disc = (yy - 24) ** 2 + (xx - 40) ** 2 <= 9**2
    second[disc] = (20, 20, 220)
    bar = np.zeros((H, W), bool)
    bar[5:9, 2:30] = True
    second[bar] = (20, 200, 20)
    PIL.Image.fromarray(first).save(tmp_path / "a.png")
    PIL.Image.fromarray(second).save(tmp_path / "b.png")
    rle = mask_utils.encode(np.asfortranarray(disc.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    plain_counts = []  # uncompressed RLE: column-major run lengths starting with zeros
    flat, value, run = bar.flatten(order="F"), False, 0
    for pixel in flat:
        if pixel != value:
            plain_counts.append(run)
            value, run = pixel, 0
        run += 1
    plain_counts.append(run)
    data = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": W, "height": H},
            {"id": 2, "file_name": "b.png", "width": W, "height": H},
        ],
        "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "ball"}, {"id": 3, "name": "bar"}],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 320.0, "bbox": [8, 10, 16, 20],
             "segmentation": [[8, 10, 24, 10, 24, 30, 8, 30]]},
            {"id": 12, "image_id": 2, "category_id": 2, "iscrowd": 0, "area": float(disc.sum()),
             "bbox": [31, 15, 19, 19], "segmentation": rle},
            {"id": 13, "image_id": 2, "category_id": 3, "iscrowd": 0, "area": float(bar.sum()),
             "bbox": [2, 5, 28, 4], "segmentation": {"size": [H, W], "counts": plain_counts}},
            {"id": 14, "image_id": 2, "category_id": 2, "iscrowd": 1, "area": 500.0, "bbox": [0, 0, 5, 5],
             "segmentation": rle},
            {"id": 15, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 4.0, "bbox": [0, 0, 2, 2],
             "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
        ],
    }  # fmt: skip
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    (tmp_path / "captions.json").write_text(json.dumps({"12": "a shiny blue ball"}))
    return path


def colour_under(example, channel):
    """Fraction of the mask's pixels whose `channel` dominates (the object's colour)."""
    pixels = example["image"][example["mask"]].astype(int)
    return np.mean(pixels[:, channel] > pixels.sum(1) - pixels[:, channel])


def test_polygon_and_rle_instances_load_with_exact_masks(coco):
    data = CocoInstances(coco, resolution=32, captions_file=coco.parent / "captions.json")
    assert len(data) == 3  # the crowd and the tiny annotation are skipped
    by_label = {data[i]["label"]: data[i] for i in range(len(data))}
    assert set(by_label) == {"box", "ball", "bar"}
    for label, channel in (("box", 0), ("ball", 2), ("bar", 1)):
        example = by_label[label]
        assert example["image"].shape == (32, 32, 3) and example["mask"].shape == (32, 32)
        assert example["mask"].sum() > 20
        assert colour_under(example, channel) > 0.95, label  # the mask sits on its object
    assert by_label["ball"]["captions"] == ["a shiny blue ball"]
    assert by_label["box"]["captions"] == ["a box"]
    # the disc is round: its crop keeps it centred with context around it
    ball = by_label["ball"]["mask"]
    assert (
        not ball[0].any() and not ball[-1].any() and not ball[:, 0].any() and not ball[:, -1].any()
    )


def test_training_runs_on_a_coco_set(coco, tmp_path):
    from pathlib import Path

    tiny = Path(__file__).resolve().parents[1] / "configs" / "tiny.toml"
    out = tmp_path / "run"
    code = main(["train", str(tiny), "--set", f"run.output_dir={out}", "--set", "data.dataset=coco",
                 "--set", f"data.annotations={coco}", "--set", "train.max_steps=2"])  # fmt: skip
    assert code == 0
    assert (out / "checkpoints/step-0000002/checkpoint.safetensors").is_file()


def test_bad_coco_input_is_a_clear_error(tmp_path, coco):
    with pytest.raises(FileNotFoundError, match="not found"):
        CocoInstances(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not a COCO instances file"):
        CocoInstances(broken)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(ValueError, match="no usable"):
        CocoInstances(empty)
    bad_captions = tmp_path / "captions-bad.json"
    bad_captions.write_text("[1, 2]")
    with pytest.raises(ValueError, match="annotation id"):
        CocoInstances(coco, captions_file=bad_captions)


def test_caption_command_without_blip_weights_says_what_to_do(coco, tmp_path, capsys):
    code = main(
        ["caption", str(coco), "--model", str(tmp_path / "no-blip"), "-o", str(tmp_path / "c.json")]
    )
    assert code == 2
    assert "no BLIP model" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def tiny_blip(folder):
    """A real, randomly initialised BLIP captioner (MiniLM's tokenizer), saved like a downloaded one."""
    from transformers import (
        AutoTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    from smartbrush.method.text import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    tiny = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    config = BlipConfig(
        text_config=dict(
            vocab_size=tokenizer.vocab_size,
            encoder_hidden_size=32,
            bos_token_id=tokenizer.cls_token_id,
            pad_token_id=tokenizer.pad_token_id,
            sep_token_id=tokenizer.sep_token_id,
            **tiny,
        ),
        vision_config=dict(image_size=32, patch_size=8, **tiny),
        projection_dim=32,
    )
    BlipForConditionalGeneration(config).save_pretrained(folder)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def test_caption_command_writes_a_captions_file_training_can_read(coco, tmp_path):
    blip = tmp_path / "blip"
    tiny_blip(blip)
    output = tmp_path / "captions" / "out.json"
    assert main(["caption", str(coco), "--model", str(blip), "-o", str(output)]) == 0
    captions = json.loads(output.read_text())
    assert set(captions) == {"11", "12", "13"}  # one per usable instance
    assert all(isinstance(text, str) for text in captions.values())
    data = CocoInstances(coco, resolution=32, captions_file=output)
    assert len(data) == 3 and all(len(data[i]["captions"]) == 1 for i in range(3))
