"""SmartBrush: text and shape guided object inpainting.

Heavy parts (torch, diffusers) load lazily, so the pure-Python modules (protocol, client, editing)
import cheaply and can be vendored into image-editor plugins.
"""

__version__ = "0.1.0"

__all__ = ["SmartBrushPipeline", "SmartBrushPipelineOutput", "__version__", "load_pipeline"]


def __getattr__(name: str):
    if name in ("SmartBrushPipeline", "SmartBrushPipelineOutput"):
        from smartbrush.method import pipeline

        return getattr(pipeline, name)
    if name == "load_pipeline":  # "demo", "shapes", a folder, a checkpoint file or a hub id
        from smartbrush.runtime.loading import load_pipeline

        return load_pipeline
    raise AttributeError(f"module 'smartbrush' has no attribute {name!r}")
