"""`smartbrush eval --model M`: a model on the held-out test scenes of its world (shapes or objects)."""

from __future__ import annotations

import argparse
import json
import time

from smartbrush.research import evaluation, shapes_eval, world
from smartbrush.research.evaluation import world_of

DESCRIPTION = (
    f"{evaluation.__doc__}\n{shapes_eval.__doc__}"  # the frame, then what the shapes world adds
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="demo", help='"demo" or a SmartBrush diffusers folder')
    parser.add_argument("--n", type=int, default=64, help="test scenes (each is filled twice)")
    parser.add_argument("--start", type=int, default=0, help="first test scene")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per fill")
    parser.add_argument(
        "--guidance", type=float, help="classifier-free guidance scale (default: the model's own)"
    )
    parser.add_argument(
        "--world", choices=("auto", "shapes", "objects"), default="auto",
        help="test world (auto: shapes for 32-px pixel models, else objects)",
    )  # fmt: skip
    parser.add_argument(
        "--mask-threshold", type=float, default=0.5,
        help="the mask head's probability above which a cell is the object (the pipeline's default)",
    )  # fmt: skip
    parser.add_argument("--classifier", help="the world's classifier (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--per-class", type=int, metavar="K",
        help="objects world: instead, each class's object accuracy over its first K test scenes "
        "(the weak classes' table, Markdown)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch

    from smartbrush.runtime.loading import load_pipeline

    if args.n < 1:
        raise ValueError("--n must be at least 1")
    if args.per_class is not None and args.per_class < 1:
        raise ValueError("--per-class must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    if world_of(pipe, args.world) == "objects":
        return _eval_objects(pipe, args)
    if args.per_class:
        raise ValueError("--per-class measures the objects world's classes")
    classifier = shapes_eval.CLASSIFIER.load(args.classifier or shapes_eval.CLASSIFIER.default_path)
    started = time.monotonic()
    if not 0 <= args.start <= world.SPLIT_SIZES["test"] - args.n:
        raise ValueError(
            f"--start and --n must stay within the {world.SPLIT_SIZES['test']} test scenes"
        )
    guidance = pipe.config["default_guidance_scale"] if args.guidance is None else args.guidance
    report = shapes_eval.evaluate(
        pipe, classifier, n=args.n, steps=args.steps, guidance=guidance, start=args.start,
        mask_threshold=args.mask_threshold,
    )  # fmt: skip
    report["start"] = args.start
    report["model"] = args.model
    report["seconds"] = round(time.monotonic() - started, 1)
    print(
        json.dumps(report, indent=2) if args.json else shapes_eval.format_report(report, args.model)
    )
    return 0


def _eval_objects(pipe, args: argparse.Namespace) -> int:
    from smartbrush.research import objects_eval
    from smartbrush.research.objects import ObjectsWorld

    spec = objects_eval.CLASSIFIER
    classifier = spec.load(args.classifier or spec.default_path)
    guidance = pipe.config.default_guidance_scale if args.guidance is None else args.guidance
    if args.per_class:
        table = objects_eval.per_class_accuracy(pipe, ObjectsWorld(), classifier, args.per_class,
                                                args.steps, guidance, args.mask_threshold)  # fmt: skip
        print(json.dumps(table, indent=2) if args.json else objects_eval.format_per_class(table))
        return 0
    report = objects_eval.evaluate(pipe, ObjectsWorld(), classifier, n=args.n, steps=args.steps,
                                   guidance=guidance,
                                   mask_threshold=args.mask_threshold)  # fmt: skip
    report["model"] = args.model
    print(
        json.dumps(report, indent=2)
        if args.json
        else objects_eval.format_report(report, args.model)
    )
    return 0
