"""`smartbrush caption COCO_JSON --model BLIP_PATH -o CAPTIONS`: a caption per instance, with BLIP.

The paper trains on BLIP captions of each object instead of bare class names. This writes one caption per
usable instance of a COCO-format set -- BLIP looking at the instance's context crop (the same crop the
training loader uses), prompted with "a photo of a <category>" -- as JSON {annotation id: caption}, the
captions file `smartbrush train` reads (data.captions). BLIP weights are the user's: a local folder saved
by transformers (e.g. Salesforce/blip-image-captioning-base); nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path


def load_blip(path: str | Path):
    """(processor, model) from a local transformers BLIP captioning folder; a clear error otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no BLIP model in {path} (config.json missing); download one with its weights first, "
            "e.g. Salesforce/blip-image-captioning-base, and pass its folder to --model"
        )
    from transformers import BlipForConditionalGeneration, BlipProcessor

    try:
        processor = BlipProcessor.from_pretrained(path, local_files_only=True)
        model = BlipForConditionalGeneration.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a BLIP captioning model: {error}") from None
    return processor, model.eval()


def caption_instances(
    annotations: str | Path,
    blip_path: str | Path,
    images: str | Path | None = None,
    resolution: int = 384,
    batch_size: int = 8,
    max_new_tokens: int = 20,
    limit: int | None = None,
) -> dict[int, str]:
    import torch

    from smartbrush.research.datasets import CocoInstances

    data = CocoInstances(annotations, images, resolution=resolution, captions_file=None)
    processor, model = load_blip(blip_path)
    count = len(data) if limit is None else min(limit, len(data))
    captions: dict[int, str] = {}
    for start in range(0, count, batch_size):
        items = [data[i] for i in range(start, min(count, start + batch_size))]
        prompts = [f"a photo of a {item['label']}" for item in items]
        inputs = processor(
            images=[item["image"] for item in items], text=prompts, return_tensors="pt"
        )
        with torch.no_grad():
            generated = model.generate(**inputs, max_new_tokens=max_new_tokens)
        for offset, text in enumerate(processor.batch_decode(generated, skip_special_tokens=True)):
            captions[data.annotation_ids[start + offset]] = text.strip()
    return captions
