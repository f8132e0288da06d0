"""The files shipped with the core (package data) and their paths: SD1.5 configs, the CLIP tokenizer,
the IP-Adapter image encoder's config. Nothing here is downloaded."""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SD15_CONFIG_DIR = DATA_DIR / "sd15"
TOKENIZER_DIR = DATA_DIR / "clip-tokenizer"
CLIP_VISION_H14_CONFIG = DATA_DIR / "clip_vision_h14" / "config.json"  # IP-Adapter's SD1.5 image encoder
