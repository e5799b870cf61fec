"""`smartbrush fill`, `batch` and `info` as a user runs them: through a daemon and with --local."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from smartbrush.cli import main
from smartbrush.testing import free_port

# `daemon` (conftest.py): an in-process daemon serving tiny_pixel_pipeline as model "tiny"


@pytest.fixture
def files(tmp_path):
    image = Image.new("RGB", (80, 64), (40, 120, 200))
    ImageDraw.Draw(image).rectangle([0, 44, 79, 63], fill=(60, 160, 60))
    image.save(tmp_path / "scene.png")
    mask = Image.new("L", (80, 64), 0)
    ImageDraw.Draw(mask).ellipse([24, 16, 56, 48], fill=255)
    mask.save(tmp_path / "mask.png")
    return tmp_path


def test_fill_through_the_daemon_writes_variations_and_masks(daemon, files, capsys):
    out = files / "out.png"
    code = main(
        ["fill", str(files / "scene.png"), "-o", str(out), "--mask", str(files / "mask.png"),
         "--prompt", "a red ball", "--steps", "2", "--seed", "7", "--variations", "2",
         "--save-mask", str(files / "object.png"), "--endpoint", daemon.endpoint]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "seed 7" in printed and "seed 8" in printed
    for name in ("out_1.png", "out_2.png", "object_1.png", "object_2.png"):
        assert Image.open(files / name).size == (80, 64)
    assert not out.exists()
    original = np.asarray(Image.open(files / "scene.png"))
    result = np.asarray(Image.open(files / "out_1.png"))
    outside = np.asarray(Image.open(files / "mask.png")) == 0
    assert (result[outside] == original[outside]).all()  # only the masked region changed
    assert (result[~outside] != original[~outside]).any()


def test_local_fill_gives_the_daemons_pixels(daemon, files, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("SMARTBRUSH_ENDPOINT", daemon.endpoint)
    common = ["fill", str(files / "scene.png"), "--box", "20,10,30,30", "--prompt", "a cat", "--steps", "2",
              "--seed", "3"]  # fmt: skip
    assert main([*common, "-o", str(files / "remote.png")]) == 0
    assert (
        main([*common, "-o", str(files / "local.png"), "--local", "--model", tiny_model_dir]) == 0
    )
    remote = np.asarray(Image.open(files / "remote.png"), dtype=int)
    local = np.asarray(Image.open(files / "local.png"), dtype=int)
    assert np.abs(remote - local).max() <= 1  # the same weights (tiny_pipeline(seed=0)) and seed


def test_detail_reaches_the_pipeline_and_is_checked(files, capsys, tiny_model_dir):
    """--detail off resamples the tiny model's 32-px fill to the 64-px crop; fast super-resolves it."""
    common = ["fill", str(files / "scene.png"), "--mask", str(files / "mask.png"), "--prompt", "a cat",
              "--steps", "2", "--seed", "3", "--local", "--model", tiny_model_dir]  # fmt: skip
    for level in ("off", "fast"):
        assert main([*common, "--detail", level, "-o", str(files / f"{level}.png")]) == 0
    off, fast = (
        np.asarray(Image.open(files / f"{level}.png"), dtype=int) for level in ("off", "fast")
    )
    outside = np.asarray(Image.open(files / "mask.png")) == 0
    assert (off[outside] == fast[outside]).all() and (off != fast).any()
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--detail", "sharp", "-o", str(files / "x.png")])
    assert exit_.value.code == 2
    assert "invalid choice: 'sharp'" in capsys.readouterr().err


def test_fill_without_a_daemon_says_what_to_do(files, capsys):
    code = main(
        ["fill", str(files / "scene.png"), "-o", str(files / "x.png"), "--box", "1,1,8,8", "--prompt", "x",
         "--endpoint", f"tcp://127.0.0.1:{free_port()}", "--timeout", "1"]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert (
        "no SmartBrush daemon answers" in error
        and "smartbrush serve" in error
        and "--local" in error
    )
    assert not (files / "x.png").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--box", "70,1,20,8"], "must lie inside the 80x64 image"),
        (["--mask", "missing.png"], "no such file"),
        (["--box", "1,1,8,8", "--precision", "2"], "precision"),
        (["--box", "1,1,8,8", "--model", "demo"], "serves model 'tiny', not 'demo'"),
    ],
)
def test_fill_user_errors_are_one_line(daemon, files, capsys, arguments, message):
    code = main(["fill", str(files / "scene.png"), "-o", str(files / "x.png"), "--prompt", "x",
                 "--endpoint", daemon.endpoint, *arguments])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1


def test_batch_reports_bad_lines_skips_finished_outputs_and_resumes(daemon, files, capsys):
    jobs = [
        {"image": "scene.png", "box": [5, 5, 20, 20], "prompt": "a cat", "seed": 1},
        {"image": "scene.png", "mask": "mask.png", "prompt": "a dog", "output": "dog.png"},
        "this line is not JSON",
        {"image": "missing.png", "box": [5, 5, 20, 20], "prompt": "a cat"},
        {"image": "scene.png", "box": [5, 5, 200, 20], "prompt": "too wide"},
        {"image": "scene.png", "box": [5, 5, 20, 20], "prompt": "a cat", "colour": "red"},
        {"image": "scene.png", "box": [30, 20, 20, 20], "prompt": "a hat", "precision": 0.5},
    ]
    manifest = files / "jobs.jsonl"
    manifest.write_text(
        "\n".join(j if isinstance(j, str) else json.dumps(j) for j in jobs) + "\n\n"
    )
    outdir = files / "results"
    arguments = [
        "batch",
        str(manifest),
        "-o",
        str(outdir),
        "--steps",
        "2",
        "--endpoint",
        daemon.endpoint,
    ]

    assert main(arguments) == 1  # some lines failed, the rest ran
    captured = capsys.readouterr()
    assert "batch: 3 done, 0 already there, 4 failed (lines 3, 4, 5, 6)" in captured.out
    for number, words in [
        (3, "not JSON"),
        (4, "no such file"),
        (5, "inside"),
        (6, "unknown key(s) colour"),
    ]:
        assert f"line {number}: " in captured.err and words in captured.err
    assert sorted(path.name for path in outdir.iterdir()) == [
        "dog.png",
        "scene_1.png",
        "scene_7.png",
    ]
    first = (outdir / "scene_1.png").read_bytes()

    (outdir / "dog.png").unlink()  # an interrupted run: resume makes only what is missing
    assert main(arguments) == 1
    assert "batch: 1 done, 2 already there, 4 failed" in capsys.readouterr().out
    assert (outdir / "dog.png").exists() and (outdir / "scene_1.png").read_bytes() == first
    assert not list(outdir.glob(".*partial"))


def test_batch_without_a_daemon_stops_with_advice(files, capsys):
    manifest = files / "jobs.jsonl"
    manifest.write_text(
        json.dumps({"image": "scene.png", "box": [1, 1, 9, 9], "prompt": "x"}) + "\n"
    )
    code = main(["batch", str(manifest), "-o", str(files / "out"), "--endpoint",
                 f"tcp://127.0.0.1:{free_port()}", "--timeout", "1"])  # fmt: skip
    assert code == 2
    assert "smartbrush serve" in capsys.readouterr().err


def test_info_shows_the_daemon_and_its_queue(daemon, capsys):
    assert main(["info", "--endpoint", daemon.endpoint]) == 0
    printed = capsys.readouterr().out
    for words in (
        "model             tiny",
        "devices           cpu",
        daemon.endpoint,
        "precision levels  0..5",
    ):
        assert words in printed
    assert main(["info", "--endpoint", f"tcp://127.0.0.1:{free_port()}", "--timeout", "1"]) == 1
    assert "no SmartBrush daemon answers" in capsys.readouterr().out


def test_remove_erases_with_any_model_through_the_daemon(daemon, files, capsys):
    """--remove fills the hole from its surroundings at the photo's resolution, whatever the model:
    the tiny test model was never trained for removal."""
    scene = np.asarray(Image.open(files / "scene.png").convert("RGB")).copy()
    scene[24:40, 32:48] = (220, 30, 30)  # a red object on the sky
    Image.fromarray(scene).save(files / "object.png")
    out = files / "erased.png"
    code = main(
        ["fill", str(files / "object.png"), "-o", str(out), "--mask", str(files / "mask.png"),
         "--remove", "--endpoint", daemon.endpoint]
    )  # fmt: skip
    assert code == 0 and "wrote" in capsys.readouterr().out
    erased = np.asarray(Image.open(out).convert("RGB")).astype(int)
    hole = np.asarray(Image.open(files / "mask.png")) > 0
    assert np.array_equal(erased[~hole], scene[~hole])
    # the object is gone (no red left in the hole) and the sky continues over its upper half (its
    # lower half borders the grass below the hole, which the fill continues up to meet the sky)
    assert erased[hole][:, 0].max() < 100
    assert np.abs(erased[24:32, 32:48] - (40, 120, 200)).mean() <= 8
    # the same daemon still fills
    assert main(["fill", str(files / "scene.png"), "-o", str(out), "--box", "1,1,8,8", "--prompt",
                 "a cat", "--steps", "1", "--endpoint", daemon.endpoint]) == 0  # fmt: skip
    with pytest.raises(SystemExit):  # argparse: neither --prompt nor --remove
        main(["fill", str(files / "scene.png"), "-o", str(out), "--box", "1,1,8,8"])
    assert "one of the arguments --prompt --remove is required" in capsys.readouterr().err
