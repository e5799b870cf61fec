"""The weak classes, looked at (issue 32, part 3): for each class of a per-class table under a share, its
first test scene's real object beside the model's fill of it, exact mask and box.

    smartbrush eval --model demo --per-class 4 --json > per-class.json
    python benchmarks/weak_classes.py per-class.json [--model demo] [--below 0.5] [--out weak.png]

Four classes a row, each: the real object (the scene), the exact-mask fill, the box fill (the crop
around the object's box, 2x); the classes, in order, and what the classifier named each fill are
printed, with the classifier's accuracy on the autoencoder's round trip of the same real objects, to
tell a model that cannot draw a class from a classifier or an autoencoder that cannot show it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    import torch

    from smartbrush.method.masks import bounding_box, box_mask
    from smartbrush.research import evaluation, objects_eval, world
    from smartbrush.research.objects import ObjectsWorld
    from smartbrush.runtime.loading import load_pipeline

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("table", help="the JSON of `smartbrush eval --per-class K --json`")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--below", type=float, default=0.5, help="a class is weak under this share")
    parser.add_argument("--out", default="weak-classes.png")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    table = json.loads(Path(args.table).read_text())

    share = objects_eval.share
    weak = [label for label in objects_eval.weakest_first(table)
            if min(share(table[label]["exact"]), share(table[label]["box"])) < args.below]  # fmt: skip
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    objects_world = ObjectsWorld()
    classifier = objects_eval.CLASSIFIER.load(objects_eval.CLASSIFIER.default_path)
    scenes = {}
    for index, scene in objects_eval.balanced_scenes(objects_world, 1):
        scenes[scene.label] = (index, scene)
    rows, round_trips = [], []
    for label in weak:
        index, scene = scenes[label]
        box = bounding_box(scene.mask)
        assert box is not None  # every scene has its object
        x, y, width, height = box
        side = int(max(width, height) * 1.4) + 4
        cx, cy = x + width // 2, y + height // 2
        y0, x0 = max(0, cy - side // 2), max(0, cx - side // 2)

        def crop(image, y0=y0, x0=x0, side=side):
            return np.asarray(image)[y0 : y0 + side, x0 : x0 + side]

        row, named = [crop(scene.image)], []
        for mask, precision in ((scene.mask, 0.0), (box_mask(scene.mask), 1.0)):
            _, after = evaluation.fill(pipe, scene.background, mask, f"a {label}", precision, index,
                                       20, None, 0.5)  # fmt: skip
            (name,) = objects_eval.CLASSIFIER.classify(
                classifier, [after], [bounding_box(scene.mask)]
            )
            named.append(name[0])
            row.append(crop(after))
        round_trip = objects_eval.autoencoder_round_trip(pipe, scene.image)
        (name,) = objects_eval.CLASSIFIER.classify(
            classifier, [round_trip], [bounding_box(scene.mask)]
        )
        round_trips.append(name[0] == label)
        rows.append(row)
        print(f"{label}: exact {share(table[label]['exact']):.2f}, box {share(table[label]['box']):.2f};"
              f" this scene's fills named {named[0]} / {named[1]}; round trip named {name[0]}")  # fmt: skip
    across = 4  # classes side by side in one row of the picture
    grid = [sum(rows[k : k + across], []) for k in range(0, len(rows), across)]
    world.render_grid(grid, scale=2).save(args.out)
    print(f"{len(weak)} classes under {args.below}; the classifier names the round trip of their real "
          f"objects right {np.mean(round_trips):.2f}; wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
