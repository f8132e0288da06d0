"""The workflows' pictures: editor screenshots -> docs/workflow_<name>.png and the template thumbnails
workflows/<name>.jpg, or a schematic thumbnail drawn from a UI graph that has no screenshot yet."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def write_screenshots(folder: Path, names: Iterable[str], thumb_width: int = 768) -> List[Path]:
    from PIL import Image

    written = []
    for name in names:
        shot = Path(folder) / f"{name}.png"
        if not shot.is_file():
            continue
        image = Image.open(shot).convert("RGB")
        doc = REPO / "docs" / f"workflow_{name.replace('zrealism_', '')}.png"
        doc.parent.mkdir(exist_ok=True)
        image.save(doc, optimize=True)
        thumb = image.copy()
        thumb.thumbnail((thumb_width, thumb_width * 2), Image.LANCZOS)
        thumb.save(HERE / f"{name}.jpg", quality=85, optimize=True)
        written += [doc, HERE / f"{name}.jpg"]
    return written


def write_schematic(name: str, width: int = 768) -> Path:
    """A placeholder thumbnail drawn from the UI graph itself (node boxes, titles, links), for a workflow
    that has no editor screenshot yet; `--screenshots` replaces it with the real picture."""
    from PIL import Image, ImageDraw, ImageFont

    graph = json.loads((HERE / f"{name}.json").read_text())
    nodes = {n["id"]: n for n in graph["nodes"]}
    x0 = min(n["pos"][0] for n in nodes.values())
    y0 = min(n["pos"][1] for n in nodes.values())
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes.values())
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes.values())
    k = (width - 20) / float(x1 - x0)
    img = Image.new("RGB", (width, int((y1 - y0) * k) + 20), (32, 32, 36))
    d = ImageDraw.Draw(img)

    def box(n):
        return (10 + (n["pos"][0] - x0) * k, 10 + (n["pos"][1] - y0) * k,
                10 + (n["pos"][0] + n["size"][0] - x0) * k, 10 + (n["pos"][1] + n["size"][1] - y0) * k)

    for _lid, src, _ss, dst, _ds, _t in graph["links"]:
        a, b = box(nodes[src]), box(nodes[dst])
        d.line([(a[2], (a[1] + a[3]) / 2), (b[0], (b[1] + b[3]) / 2)], fill=(120, 160, 200), width=2)
    font = ImageFont.load_default()
    for n in nodes.values():
        b = box(n)
        note = n["type"] in ("Note", "MarkdownNote")
        d.rectangle(b, fill=(80, 64, 40) if note else (53, 53, 60), outline=(150, 150, 160))
        d.text((b[0] + 4, b[1] + 3), n.get("title") or n["type"].replace("ZRealism_", ""), fill=(235, 235, 235), font=font)
    path = HERE / f"{name}.jpg"
    img.save(path, quality=85, optimize=True)
    return path
