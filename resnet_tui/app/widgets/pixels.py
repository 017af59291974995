"""Images as coloured half-block characters: each terminal cell shows two pixels, '▀' with the upper one
as foreground and the lower one as background.

How the colours are drawn depends on what the terminal can show (`ColorDepth`):
- truecolor and 256 colours: the pixels' RGB as they are (Rich turns them into 256 colours where needed);
- 16 and 8 colours: each pixel becomes the nearest of the terminal's 16 (or 8) ANSI colours after an ordered
  (Bayer) dither, so that areas between two palette colours mix them instead of all snapping to one grey;
- no colour (NO_COLOR, or a terminal without colours): one shade character per cell (' ░▒▓█') by grey level,
  dithered between neighbouring shades.
`PixelImage` finds the depth from the app (`app_color_depth`); a bare `HalfBlockImage` from the console it is
printed on."""

from __future__ import annotations

import os
from typing import Any, Literal, NamedTuple

import numpy as np
from rich._palettes import STANDARD_PALETTE
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.widgets import Static

UPPER_HALF = "▀"
SHADES = " ░▒▓█"

ColorDepth = Literal["truecolor", "256", "16", "8", "none"]

# What the ANSI colours look like, to choose among them: in 16 colours xterm's palette; in 8 colours the
# corners of the RGB cube at xterm's level (205), so that a grey mixes only black and white and every
# channel dithers on its own.
XTERM_16 = np.array([(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205),
                     (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255),
                     (255, 0, 255), (0, 255, 255), (255, 255, 255)], dtype=np.float32)
CUBE_8 = np.array([(r, g, b) for b in (0, 205) for g in (0, 205) for r in (0, 205)], dtype=np.float32)  # ANSI order
# What to draw them with: the 16 colours exactly as Rich's standard palette has them. Textual downgrades a colour
# for a 16- or 8-colour terminal to the nearest entry of this palette, so these RGB values reach the terminal as
# their own ANSI numbers (ANSI numbers themselves would first go through the theme's RGB and come back as others).
ANSI_RGB = np.array([tuple(STANDARD_PALETTE[i]) for i in range(16)], dtype=np.uint8)


class Palette(NamedTuple):
    colors: np.ndarray  # what each ANSI colour looks like
    input_scale: float  # the palette's brightest level over 255: white maps to its white
    spread: float  # how far apart neighbouring levels of a channel are: the dither's amplitude


PALETTES = {"8": Palette(CUBE_8, 205 / 255, 205.0), "16": Palette(XTERM_16, 1.0, 100.0)}
# CIFAR's colours are muted and a few-colour palette has only pure ones: without a boost, most pixels
# dither to greys. 1.6 keeps skies, cars and fur their colour without turning greys into colours.
SATURATION_BOOST = 1.6
BAYER_4 = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=np.float32) + 0.5) / 16 - 0.5
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma


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


def color_depth(color_system: str | None, term: str = "") -> ColorDepth:
    """What a terminal shows, from Rich's colour system: Rich says "standard" for both 8 and 16 colours, so
    TERM decides: only a TERM that says 16 colours (xterm-16color) gets the bright ones too (plain xterm has 8)."""
    if color_system is None:
        return "none"
    if color_system in ("truecolor", "256"):
        return color_system  # type: ignore[return-value]
    if color_system == "windows" or term.endswith("16color"):
        return "16"
    return "8"


def app_color_depth(app: Any) -> ColorDepth:
    """The colour depth of the app's terminal: NO_COLOR, else what its console detected (or TEXTUAL_COLOR_SYSTEM
    forced). A headless app (tests, screenshots) has no terminal to detect: it draws in truecolor, as screenshots
    are saved, unless TEXTUAL_COLOR_SYSTEM forces a depth."""
    from textual import constants

    if app.no_color:
        return "none"
    if app.is_headless and constants.COLOR_SYSTEM in (None, "auto"):
        return "truecolor"
    return color_depth(app.console.color_system, os.environ.get("TERM", ""))


def bayer_threshold(height: int, width: int, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The 4x4 ordered-dither offsets (-0.5..0.5) for an area whose top-left pixel is at `origin` (x, y) of the
    whole picture, so that the pattern stays fixed to the picture when a view over it moves."""
    x0, y0 = origin
    ys = (np.arange(height) + y0) % 4
    xs = (np.arange(width) + x0) % 4
    return BAYER_4[ys[:, None], xs[None, :]]


def saturate(hwc: np.ndarray, factor: float) -> np.ndarray:
    """Colours pushed away from each pixel's grey by `factor` (float, clipped to 0..255)."""
    x = hwc.astype(np.float32)
    grey = x.mean(axis=-1, keepdims=True)
    return np.clip(grey + factor * (x - grey), 0, 255)


def dither_to_palette(hwc: np.ndarray, palette: Palette, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Each pixel as the ANSI number of its nearest palette colour after adding a Bayer offset of +-spread/2
    to every channel: ordered dithering, the same offset on every channel (so greys stay grey)."""
    h, w = hwc.shape[:2]
    x = saturate(hwc, SATURATION_BOOST) * palette.input_scale
    shifted = x + palette.spread * bayer_threshold(h, w, origin)[:, :, None]
    distances = ((shifted[:, :, None, :] - palette.colors[None, None, :, :]) ** 2).sum(axis=-1)
    return distances.argmin(axis=-1)


def grey_levels(hwc: np.ndarray) -> np.ndarray:
    return hwc.astype(np.float32) @ GREY_WEIGHTS


def grey_range(hwc: np.ndarray) -> tuple[float, float]:
    """The image's darkest and lightest grey, ignoring the extreme 2% each side: what the shades stretch over."""
    if hwc.size == 0:
        return (0.0, 255.0)
    low, high = np.percentile(grey_levels(hwc), [2, 98])
    return (float(low), float(max(high, low + 32)))  # a flat image is not stretched into noise


def shade_cells(hwc: np.ndarray, origin: tuple[int, int] = (0, 0), levels: tuple[float, float] = (0.0, 255.0)) -> list[str]:
    """One shade character per cell (two pixel rows), by the cells' mean grey, dithered between shades. The
    greys from levels[0] to levels[1] span all the shades (a low-contrast photo still uses all five)."""
    grey = grey_levels(hwc)
    cells = (grey[0::2] + grey[1::2]) / 2
    low, high = levels
    top = len(SHADES) - 1
    cell_origin = (origin[0], origin[1] // 2)
    scaled = (cells - low) / (high - low) * top + bayer_threshold(*cells.shape, cell_origin)
    index = np.clip(np.rint(scaled), 0, top).astype(int)
    return ["".join(SHADES[i] for i in row) for row in index.tolist()]


class HalfBlockImage:
    """A Rich renderable of an RGB image, `width` cells wide and height/2 cells high.

    `pixels` are the image's own pixels (at the scale); `colors` is how to draw them (None: as the console can);
    `origin` is where this image's top-left pixel lies in a larger picture it is a view of (it anchors the dither)
    and `levels` that picture's grey range (the shades' stretch; by default this image's own)."""

    def __init__(self, image: Any, scale: float = 1, colors: ColorDepth | None = None,
                 origin: tuple[int, int] = (0, 0), levels: tuple[float, float] | None = None) -> None:
        hwc = rescale(to_hwc(image), scale)
        if hwc.shape[0] % 2:  # an odd last row gets a black partner
            hwc = np.concatenate([hwc, np.zeros((1, *hwc.shape[1:]), np.uint8)])
        self.pixels = hwc
        self.width = hwc.shape[1]
        self.height = hwc.shape[0] // 2
        self.colors = colors
        self.origin = origin
        self.levels = levels

    def drawn_pixels(self, colors: ColorDepth) -> np.ndarray:
        """The RGB each pixel is drawn with at a colour depth (the nearest palette colours in 8 and 16)."""
        if colors in PALETTES:
            return ANSI_RGB[dither_to_palette(self.pixels, PALETTES[colors], self.origin)]
        return self.pixels

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        colors = self.colors or color_depth(console.color_system, os.environ.get("TERM", ""))
        newline = Segment.line()
        if colors == "none":
            for row in shade_cells(self.pixels, self.origin, self.levels or grey_range(self.pixels)):
                yield Segment(row)
                yield newline
            return
        px = self.drawn_pixels(colors)
        cache: dict[tuple[int, ...], Style] = {}
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
    """A widget showing one image at a given scale (or an empty box of the same size before there is one),
    drawn as the app's terminal can (`app_color_depth`)."""

    DEFAULT_CSS = """
    PixelImage { width: auto; height: auto; }
    """

    def __init__(self, image: Any = None, scale: float = 1, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.scale = scale
        if image is not None:
            self.show(image, scale)

    @property
    def color_depth(self) -> ColorDepth | None:
        """How this widget draws colours: the app's terminal's depth, once it is in an app (None before)."""
        return app_color_depth(self.app) if self.is_attached else None

    def on_mount(self) -> None:
        content = self.content
        if isinstance(content, HalfBlockImage) and content.colors is None:  # made before it was in the app
            content.colors = self.color_depth
            self.refresh()

    def show(self, image: Any, scale: float | None = None) -> None:
        if scale is not None:
            self.scale = scale
        self.update(HalfBlockImage(image, self.scale, colors=self.color_depth))
