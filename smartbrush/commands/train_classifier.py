"""Train the classifier `smartbrush eval` names painted objects with, and report its accuracy on real
objects of held-out scenes."""

from __future__ import annotations

import argparse

from smartbrush.method.masks import bounding_box
from smartbrush.research import shapes_eval, world
from smartbrush.research.evaluation import accuracy, mean


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", choices=("shapes", "objects"), default="shapes")
    parser.add_argument("-o", "--output", help="default: next to the embedded model of the world")
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads or torch.get_num_threads())
    if args.world == "objects":
        from smartbrush.research import objects_eval
        from smartbrush.research.objects import ObjectsWorld

        # not `world`: that name is the shapes-world module the shapes branch below uses
        # (--scenes and --steps are the shapes world's; the objects classifier keeps its own)
        spec = objects_eval.CLASSIFIER
        objects_world = ObjectsWorld(recolour_fraction=objects_eval.CLASSIFIER_RECOLOUR_FRACTION)
        net = spec.train(objects_eval.training_objects(objects_world))
        output = args.output or spec.default_path
        spec.save(net, output)
        found = list(objects_eval.test_scenes(objects_world, 500))
        recoloured = [c.scene for c in objects_eval.recoloured_cases(objects_world, 200)]
        for what, scenes in (("500 test scenes", [s for _, s in found]),
                             ("200 test scenes, recoloured", recoloured)):  # fmt: skip
            (named,) = spec.classify(
                net, [s.image for s in scenes], [bounding_box(s.mask) for s in scenes]
            )
            share = accuracy(named, [s.label for s in scenes])
            print(f"{output}: accuracy on the real objects of {what} {share:.3f}")
        return 0
    spec = shapes_eval.CLASSIFIER
    args.output = args.output or str(spec.default_path)
    net = spec.train(shapes_eval.training_objects(args.scenes), steps=args.steps)
    spec.save(net, args.output)
    # its accuracy on real objects of held-out validation scenes
    objects = list(shapes_eval.real_objects("val", 0, 500))
    colours, shapes = spec.classify(net, [o[0] for o in objects], [o[1] for o in objects])
    colour_acc = mean(
        [world.COLOUR_NAMES[o[2]] == c for o, c in zip(objects, colours, strict=True)]
    )
    shape_acc = mean([world.SHAPES[o[3]] == s for o, s in zip(objects, shapes, strict=True)])
    print(
        f"saved {args.output}: validation accuracy colour {colour_acc:.3f}, shape {shape_acc:.3f}"
    )
    return 0
