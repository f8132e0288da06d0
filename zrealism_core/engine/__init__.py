"""The still-image engine: SD1.5 img2img guided by a depth, an OpenPose and an optional detail ControlNet.

pipeline.py   ZRealismPipeline (placement, OOM chain, lock), its LoRA / IP-Adapter views, the cache, load_pipeline
transform.py  transform(): one still, in numbered steps
"""
from __future__ import annotations

from .pipeline import (
    CONTROLNET_ROLES,
    MAX_CACHED_PIPELINES,
    PipelineView,
    ZRealismPipeline,
    cached_pipelines,
    load_pipeline,
    unload_pipeline,
)
from .transform import TransformResult, round_to_8, transform

__all__ = [
    "CONTROLNET_ROLES", "MAX_CACHED_PIPELINES", "PipelineView", "TransformResult", "ZRealismPipeline",
    "cached_pipelines", "load_pipeline", "round_to_8", "transform", "unload_pipeline",
]
