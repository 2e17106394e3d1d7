"""Draws the room avatars in bridge/avatars/ (run by hand after changing them; needs Pillow,
which the demo's Synapse brings): a coloured square with the kind's short name, so that rooms
are told apart at a glance in any room list.

    .venv/bin/python scripts/avatars.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parents[1] / "bridge" / "avatars"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
SIZE = 128
# kind: (label, background)
KINDS = {
    "space": ("ЗАК", "#1f4e8c"),
    "org": ("ОРГ", "#2f6fd6"),
    "supplier": ("ПОС", "#11806a"),
    "commission": ("КОМ", "#7b3fb3"),
    "approval": ("СОГ", "#2e8b3a"),
    "specification": ("СПЦ", "#c76a12"),
    "shipment": ("ОТГ", "#8a5a2b"),
    "archive": ("АРХ", "#7a7f87"),
}


def draw(label: str, colour: str) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), colour)
    pen = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 38)
    left, top, right, bottom = pen.textbbox((0, 0), label, font=font)
    x = (SIZE - (right - left)) / 2 - left
    y = (SIZE - (bottom - top)) / 2 - top
    pen.text((x, y), label, font=font, fill="white")
    return image


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for kind, (label, colour) in KINDS.items():
        draw(label, colour).save(OUT / f"{kind}.png", optimize=True)
        print(OUT / f"{kind}.png")


if __name__ == "__main__":
    main()
