"""Set-of-marks screenshots: a labelled box over each element a model can refer to, drawn on the page's PNG, so
the picture and the element list name things alike (web envs label boxes by bid, the GUI env by element index)."""

from __future__ import annotations

import io
from collections.abc import Iterable

from agentgym.extras import require

Box = tuple[float, float, float, float]   # left, top, right, bottom in screenshot pixels


def draw_marks(png: bytes, marks: Iterable[tuple[str, Box]], extra: str) -> bytes:
    """`png` with each (label, box) drawn as a red outline and the label on a red tag above its corner; boxes
    thinner than a pixel or wholly off the image are skipped. `extra` names the install extra providing Pillow."""
    image_mod, draw_mod = require("PIL.Image", extra), require("PIL.ImageDraw", extra)
    image = image_mod.open(io.BytesIO(png)).convert("RGB")
    draw = draw_mod.Draw(image)
    for label, (left, top, right, bottom) in marks:
        if right - left < 1 or bottom - top < 1 or right < 0 or bottom < 0 or left > image.width or top > image.height:
            continue
        draw.rectangle([left, top, right, bottom], outline=(255, 0, 0), width=1)
        draw.rectangle([left, max(0, top - 10), left + 6 * len(label) + 2, max(10, top)], fill=(255, 0, 0))
        draw.text((left + 1, max(0, top - 10)), label, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
