"""Regenerate docs/sample_prep.png (README picture): the bundled drawing, White Background Prep's
image and mask, and the analyzer's recommendations. `python docs/make_readme_picture.py`"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from zrealism_core import analyze, prepare_white_background
from zrealism_core.imaging.images import to_uint8
from zrealism_core.imaging.sample import sample_character

drawing = sample_character(384, background="flat")
prep = prepare_white_background(drawing)
analysis = analyze(prep.image, prep.mask)
tiles = [drawing, prep.image, np.repeat(prep.mask[..., None], 3, axis=2)]
labels = ["drawing (flat background)", "White Background Prep: image", "White Background Prep: mask"]
gap, head = 8, 22
canvas = Image.new("RGB", (3 * 384 + 4 * gap + 300, 384 + head + gap), (40, 40, 40))
draw = ImageDraw.Draw(canvas)
for i, (tile, label) in enumerate(zip(tiles, labels)):
    x = gap + i * (384 + gap)
    canvas.paste(Image.fromarray(to_uint8(tile)), (x, head))
    draw.text((x, 5), label, fill=(230, 230, 230))
p = analysis.params
text = "Heuristic Analyzer recommends:\n\n" + "\n".join(
    f"{k:<13} {v}" for k, v in [("depth_scale", f"{p.depth_scale:.2f}"), ("pose_scale", f"{p.pose_scale:.2f}"),
                                ("denoise", f"{p.denoise:.2f}"), ("steps", p.steps), ("cfg", f"{p.cfg:.1f}"),
                                ("control_end", f"{p.control_end:.2f}")])
text += "\n\nprompt:\n" + "\n".join(analysis.positive[i:i + 44] for i in range(0, min(len(analysis.positive), 264), 44))
draw.multiline_text((gap + 3 * (384 + gap), head), text, fill=(230, 230, 230))
out = Path(__file__).with_name("sample_prep.png")
canvas.save(out)
print(out)
