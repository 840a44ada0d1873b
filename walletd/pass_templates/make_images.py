"""Draw the bundled templates' PNG images: .venv/bin/python walletd/pass_templates/make_images.py"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent

# Point sizes from Apple's store-card guidance; each image is written at 1x, @2x and @3x.
ICON_PT = (29, 29)
# Apple allows a logo up to 160x50 pt, but every transparent pixel of a wider canvas pushes
# logoText (the brand name, which the renderer fills in) further right, so the mark is square.
LOGO_PT = (50, 50)
STRIP_PT = (375, 144)
SCALES = (1, 2, 3)
# Shapes are drawn larger and scaled down so curved edges are anti-aliased.
SUPERSAMPLE = 4

Rgba = tuple[int, int, int, int]
Painter = Callable[[ImageDraw.ImageDraw, int, int], None]


def _render(size: tuple[int, int], paint: Painter) -> Image.Image:
    """Paint on a supersampled transparent canvas and scale it down to `size` pixels."""
    width, height = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    paint(ImageDraw.Draw(canvas), width, height)
    return canvas.resize(size, Image.Resampling.LANCZOS)


def _star(cx: float, cy: float, outer: float, inner: float) -> list[tuple[float, float]]:
    """Return the ten corners of a five-pointed star centred on (cx, cy)."""
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


# The default template: a teal badge with a gold star, soft translucent waves on the strip.
TEAL: Rgba = (20, 92, 102, 255)
GOLD: Rgba = (232, 182, 74, 255)
WHITE: Rgba = (255, 255, 255, 255)


def default_icon(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    """Draw a rounded teal square with a gold star."""
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=w * 0.22, fill=TEAL)
    draw.polygon(_star(w / 2, h * 0.53, w * 0.36, w * 0.15), fill=GOLD)


def default_logo(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    """Draw a teal disc with a gold ring and a white star."""
    # A filled badge reads on any brand background colour; a bare outline would vanish on some.
    draw.ellipse(
        (w * 0.04, h * 0.04, w * 0.96, h * 0.96), fill=TEAL, outline=GOLD, width=int(w * 0.07)
    )
    draw.polygon(_star(w / 2, h * 0.53, w * 0.3, w * 0.125), fill=WHITE)


def default_strip(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    """Draw translucent white waves, so the brand's background colour shows through."""
    # Flat translucent bands compress far better than gradients and keep the PNGs small.
    for i, alpha in enumerate((34, 26, 18)):
        top = h * (0.38 + 0.2 * i)
        points = [(0.0, float(h))]
        steps = 48
        for s in range(steps + 1):
            x = w * s / steps
            y = top + h * 0.09 * math.sin(2 * math.pi * (s / steps) * 1.3 + i * 1.1)
            points.append((x, y))
        points.append((float(w), float(h)))
        draw.polygon(points, fill=(255, 255, 255, alpha))


# The mono template: black and white, a ring-and-dot mark, a fine dot grid on the strip.
INK: Rgba = (17, 17, 17, 255)
PAPER: Rgba = (250, 250, 250, 255)


def mono_icon(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    """Draw a black circle holding a white ring and dot."""
    draw.ellipse((0, 0, w - 1, h - 1), fill=INK)
    draw.ellipse((w * 0.24, h * 0.24, w * 0.76, h * 0.76), outline=PAPER, width=int(w * 0.08))
    draw.ellipse((w * 0.42, h * 0.42, w * 0.58, h * 0.58), fill=PAPER)


def mono_logo(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    """Draw a white disc holding a black ring and dot, like a rubber stamp."""
    draw.ellipse(
        (w * 0.04, h * 0.04, w * 0.96, h * 0.96), fill=PAPER, outline=INK, width=int(w * 0.05)
    )
    draw.ellipse((w * 0.24, h * 0.24, w * 0.76, h * 0.76), outline=INK, width=int(w * 0.08))
    draw.ellipse((w * 0.42, h * 0.42, w * 0.58, h * 0.58), fill=INK)


def mono_strip(draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
    """Draw a translucent dot grid that fades out towards the left, behind the points value."""
    pitch = h / 9
    radius = pitch * 0.12
    rows = int(h / pitch) + 1
    cols = int(w / pitch) + 1
    for row in range(rows):
        for col in range(cols):
            x = col * pitch + pitch / 2
            y = row * pitch + pitch / 2
            # Stepped alpha (not a gradient) keeps the PNG small and the points value readable.
            alpha = 10 + 10 * min(3, int(4 * x / w))
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(0, 0, 0, alpha))


TEMPLATES: dict[str, dict[str, tuple[tuple[int, int], Painter]]] = {
    "default": {
        "icon": (ICON_PT, default_icon),
        "logo": (LOGO_PT, default_logo),
        "strip": (STRIP_PT, default_strip),
    },
    "mono": {
        "icon": (ICON_PT, mono_icon),
        "logo": (LOGO_PT, mono_logo),
        "strip": (STRIP_PT, mono_strip),
    },
}


def file_name(image: str, scale: int) -> str:
    """Return Apple's file name for an image at a scale, e.g. icon@2x.png."""
    return f"{image}.png" if scale == 1 else f"{image}@{scale}x.png"


def write_images(root: Path = HERE) -> list[Path]:
    """Write every template image under `root` and return the paths written."""
    written = []
    for template, images in TEMPLATES.items():
        directory = root / template
        directory.mkdir(parents=True, exist_ok=True)
        for image, (points, paint) in images.items():
            for scale in SCALES:
                size = (points[0] * scale, points[1] * scale)
                path = directory / file_name(image, scale)
                # optimize=True and no metadata keep the files small and byte-for-byte repeatable.
                _render(size, paint).save(path, format="PNG", optimize=True)
                written.append(path)
    return written


if __name__ == "__main__":
    for path in write_images():
        print(f"{path.relative_to(HERE)}  {path.stat().st_size} bytes")
