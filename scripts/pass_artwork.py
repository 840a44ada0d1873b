"""Draw the default pass template's images at 1x, 2x and 3x and write them optimised.

    .venv/bin/python scripts/pass_artwork.py [--out walletd/pass_templates/default]

The shapes are flat colours with anti-aliased edges (drawn 4x larger, then reduced), so every
PNG is a small palette image; oxipng then compresses them losslessly (zopfli, fully transparent
pixels cleaned). Keeps the default pass well under 30 KB (tests/unit/test_pass_size.py).
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import oxipng
from PIL import Image, ImageDraw

TEAL = (20, 92, 102, 255)
GOLD = (232, 182, 74, 255)
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4
# Palette size when an image has more shades than a palette holds (anti-aliased edges only).
COLOURS = 256


def _star(cx: float, cy: float, outer: float, inner: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def badge(size: int) -> Image.Image:
    """The round logo/icon: a gold ring, a teal disc and a white star."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((0, 0, big - 1, big - 1), fill=GOLD)
    ring = big * 0.09
    draw.ellipse((ring, ring, big - 1 - ring, big - 1 - ring), fill=TEAL)
    draw.polygon(_star(big / 2, big / 2 + big * 0.02, big * 0.32, big * 0.13), fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def strip(width: int, height: int) -> Image.Image:
    """The strip behind the balance: two soft white waves over the card's own colour."""
    big_w, big_h = width * SUPERSAMPLE, height * SUPERSAMPLE
    image = Image.new("RGBA", (big_w, big_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for level, (base, amplitude, phase, alpha) in enumerate(
        ((0.45, 0.09, 0.0, 18), (0.68, 0.07, 1.7, 30))
    ):
        top = [
            (x, big_h * (base + amplitude * math.sin(2 * math.pi * x / big_w * 1.3 + phase)))
            for x in [*range(0, big_w, max(1, big_w // 120)), big_w]
        ]
        draw.polygon([*top, (big_w, big_h), (0, big_h)], fill=(255, 255, 255, alpha + level))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def png(image: Image.Image) -> bytes:
    """The image as an optimised PNG (oxipng turns it into a palette image when it can)."""
    if image.getcolors(256) is None:
        # Too many edge shades for a palette: reduce them (edges only; flat areas are exact).
        image = image.quantize(colors=COLOURS, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return bytes(
        oxipng.optimize_from_memory(
            buffer.getvalue(),
            level=6,
            optimize_alpha=True,
            strip=oxipng.StripChunks.all(),
            deflate=oxipng.Deflaters.zopfli(15),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("walletd/pass_templates/default"))
    args = parser.parse_args()
    for scale in (1, 2, 3):
        suffix = "" if scale == 1 else f"@{scale}x"
        files = {
            f"icon{suffix}.png": badge(29 * scale),
            f"logo{suffix}.png": badge(50 * scale),
            f"strip{suffix}.png": strip(375 * scale, 144 * scale),
        }
        for name, image in files.items():
            data = png(image)
            (args.out / name).write_bytes(data)
            print(f"{name:16s} {len(data):6d} bytes")


if __name__ == "__main__":
    main()
