"""Images as coloured half-block characters: each terminal cell shows two pixels, '▀' with the upper one
as foreground and the lower one as background. Rich turns the RGB colours into 256 colours when the
terminal has no truecolor, and Textual greys them out under NO_COLOR."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.widgets import Static

UPPER_HALF = "▀"


def to_hwc(image: Any) -> np.ndarray:
    """A uint8 image as [H, W, 3] numpy, from a [3, H, W] tensor or array (the engine's layout) or [H, W, 3]."""
    arr = image.numpy() if hasattr(image, "numpy") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[2] != 3:
        arr = arr.transpose(1, 2, 0)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def rescale(hwc: np.ndarray, scale: float) -> np.ndarray:
    """Enlarge by an integer factor (pixel repeat), or halve (2x2 mean) for thumbnails."""
    if scale == 0.5:
        h, w = hwc.shape[0] // 2 * 2, hwc.shape[1] // 2 * 2
        x = hwc[:h, :w].astype(np.uint16)
        return ((x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2] + 2) // 4).astype(np.uint8)
    k = int(scale)
    if k <= 1:
        return hwc
    return hwc.repeat(k, axis=0).repeat(k, axis=1)


class HalfBlockImage:
    """A Rich renderable of an RGB image, `width` cells wide and height/2 cells high."""

    def __init__(self, image: Any, scale: float = 1) -> None:
        hwc = rescale(to_hwc(image), scale)
        if hwc.shape[0] % 2:  # an odd last row gets a black partner
            hwc = np.concatenate([hwc, np.zeros((1, *hwc.shape[1:]), np.uint8)])
        self.pixels = hwc
        self.width = hwc.shape[1]
        self.height = hwc.shape[0] // 2

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        px = self.pixels
        cache: dict[tuple[int, ...], Style] = {}
        newline = Segment.line()
        for y in range(0, px.shape[0], 2):
            top, bottom = px[y].tolist(), px[y + 1].tolist()
            for t, b in zip(top, bottom):
                key = (*t, *b)
                style = cache.get(key)
                if style is None:
                    style = cache[key] = Style(color=Color.from_rgb(*t), bgcolor=Color.from_rgb(*b))
                yield Segment(UPPER_HALF, style)
            yield newline

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


class PixelImage(Static):
    """A widget showing one image at a given scale (or an empty box of the same size before there is one)."""

    DEFAULT_CSS = """
    PixelImage { width: auto; height: auto; }
    """

    def __init__(self, image: Any = None, scale: float = 1, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.scale = scale
        if image is not None:
            self.show(image, scale)

    def show(self, image: Any, scale: float | None = None) -> None:
        if scale is not None:
            self.scale = scale
        self.update(HalfBlockImage(image, self.scale))
