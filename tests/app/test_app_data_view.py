"""The Data screen's image view: panning a zoomed image over the real pixels (clamped at the edges), the class
counts staying on screen at 80x24, and images drawn in 16 and 8 colours and without colour (NO_COLOR)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.color import ColorSystem
from rich.console import Console
from rich.segment import Segment

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.data import DataScreen
from resnet_tui.app.widgets.image_view import PAN_STEP, ImageView
from resnet_tui.app.widgets.pixels import ANSI_RGB, SHADES, UPPER_HALF, HalfBlockImage, app_color_depth, color_depth, rescale, to_hwc
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_split

from app_helpers import screen_text, wait_for

GREYS = {0, 7, 8, 15}  # black, grey, dark grey, white: all a flat grey rendering can use


async def open_data(pilot, app) -> DataScreen:
    await pilot.press("3")
    await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), 5, "the Data screen")
    await wait_for(pilot, lambda: app.screen.split is not None, 60, "the split")
    await pilot.pause()
    return app.screen


def drawn_cells(view: ImageView) -> list[list[Segment]]:
    """What the widget drew, one list of one-cell segments per row (as the screen has it)."""
    rows = []
    for y in range(view.content_size.height):
        cells = [Segment(ch, seg.style) for seg in view.render_line(y) for ch in seg.text]
        rows.append(cells[:view.content_size.width])
    return rows


def drawn_pixels(view: ImageView) -> np.ndarray:
    """The pixels on screen, read back from the half blocks' colours: [2 * rows, columns, 3]."""
    cells = [[c for c in row if c.text == UPPER_HALF] for row in drawn_cells(view)]
    cells = [row for row in cells if row]
    top = [[c.style.color.triplet for c in row] for row in cells]
    bottom = [[c.style.bgcolor.triplet for c in row] for row in cells]
    out = np.empty((2 * len(cells), len(cells[0]), 3), np.uint8)
    out[0::2], out[1::2] = np.array(top), np.array(bottom)
    return out


def assert_shows(view: ImageView, image, zoom: int, x: int, y: int) -> None:
    width, height = view.view_size
    expected = rescale(to_hwc(image), zoom)[y:y + height, x:x + width]
    assert (view.view_x, view.view_y) == (x, y)
    assert np.array_equal(drawn_pixels(view)[:height], expected)


async def test_a_zoomed_image_pans_over_its_pixels_by_keys_and_mouse_clamped_at_the_edges(cifar_dir):
    app = ResNetApp(config=TrainConfig(data=str(cifar_dir), limit_train=100, limit_eval=50), runs_root="runs", device_label="CPU")
    train = load_split(str(cifar_dir), "train", limit=100)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_data(pilot, app)
        view = screen.query_one("#data-image", ImageView)
        box = screen.query_one("#data-image-box")
        image = train.images[0]
        assert not view.can_pan() and box.border_subtitle == "zoom 1x (fit) · 32x32"
        await pilot.press("z", "z")  # 2x: 64x64 pixels in a view of 46x38, which starts centred
        assert screen.zoom == 2 and view.view_size == (46, 38)
        assert_shows(view, image, 2, (64 - 46) // 2, (64 - 38) // 2)
        assert box.border_subtitle == "zoom 2x · view 9,13 of 64x64"
        before = drawn_pixels(view)
        await pilot.press("h", "k")  # one step left and up: PAN_STEP pixels of the image, times the zoom
        step = PAN_STEP * 2
        assert_shows(view, image, 2, 9 - step, 13 - step)
        assert not np.array_equal(drawn_pixels(view), before)
        await pilot.press(*"hhkk")  # clamped at the top-left corner
        assert_shows(view, image, 2, 0, 0)
        await pilot.press(*"llllljjjjj")  # and at the bottom-right one: the image's last pixels are the view's
        assert_shows(view, image, 2, 64 - 46, 64 - 38)
        assert box.border_subtitle == "zoom 2x · view 18,26 of 64x64"
        await pilot.press("c")
        assert (view.view_x, view.view_y) == (9, 13)
        # browsing keeps the view where it is, over the next image
        await pilot.press("right")
        assert screen.index == 1
        assert_shows(view, train.images[1], 2, 9, 13)
        # the arrows pan only while the image has the focus (Tab or a click); Escape gives them back to browsing
        view.focus()
        await pilot.press("right", "down")
        assert screen.index == 1
        assert_shows(view, train.images[1], 2, 9 + step, 13 + step)
        await pilot.press("escape", "right")
        assert app.focused is None and screen.index == 2
        # 3x starts centred again
        await pilot.press("z")
        assert_shows(view, train.images[2], 3, (96 - 46) // 2, (96 - 38) // 2)
        assert box.border_subtitle == "zoom 3x · view 25,29 of 96x96"
        # the mouse drags the image: 4 cells left and 2 rows up shows what lay 4 pixels right and 4 below
        await pilot.mouse_down(view, offset=(20, 10))
        await pilot.hover(view, offset=(16, 8))
        await pilot.mouse_up(view, offset=(16, 8))
        assert_shows(view, train.images[2], 3, 25 + 4, 29 + 4)
        # fit: nothing to pan; a focused image lets left/right browse
        await pilot.press("z")
        view.focus()
        await pilot.press("right")
        assert screen.zoom == "fit" and screen.index == 3 and (view.view_x, view.view_y) == (0, 0)
        assert_shows(view, train.images[3], 1, 0, 0)


async def test_the_class_counts_and_their_total_stay_on_screen_at_80x24_in_fit_and_zoomed(cifar_dir, tmp_path):
    # a long folder name wraps the info over several lines; the counts still get their rows
    data = tmp_path / "datasets-of-the-residual-networks-lab" / "cifar10-jpeg"
    data.parent.mkdir()
    data.symlink_to(cifar_dir, target_is_directory=True)
    app = ResNetApp(config=TrainConfig(data=str(data), limit_train=100, limit_eval=50), runs_root=tmp_path / "runs",
                    device_label="CPU")
    classes = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_data(pilot, app)
        for zoom in ("fit", 1, 2, 3):
            assert screen.zoom == zoom
            lines = screen_text(app).splitlines()
            side = [line[48:].split() for line in lines]  # the side panel, right of the image box
            assert ["total", "100"] in side, f"zoom {zoom}: no total row\n" + "\n".join(lines)
            for name in classes:
                assert any(cells[:2] == [name, "10"] for cells in side), f"zoom {zoom}: no {name} row"
            await pilot.press("z")


def colourful_test_images(cifar_dir: Path, count: int) -> list[np.ndarray]:
    """The most colourful of the first 100 test images (by mean saturation), as [H, W, 3]."""
    split = load_split(str(cifar_dir), "test", limit=100)
    images = [to_hwc(img).astype(np.float32) for img in split.images]
    saturation = [float((im.max(-1) - im.min(-1)).mean()) for im in images]
    return [images[i].astype(np.uint8) for i in np.argsort(saturation)[::-1][:count]]


def ansi_numbers(renderable, color_system: str) -> list[int]:
    """The ANSI colour numbers a 16/8-colour terminal gets for every foreground and background drawn."""
    console = Console(width=200, file=io.StringIO(), color_system=color_system, force_terminal=True)
    numbers = []
    for seg in console.render(renderable):
        if seg.style is not None and seg.style.color is not None:
            for color in (seg.style.color, seg.style.bgcolor):
                numbers.append(color.downgrade(ColorSystem.STANDARD).number)
    return numbers


def test_8_colours_draw_a_colourful_image_in_the_8_standard_colours_not_a_flat_grey(cifar_dir, monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    for hwc in colourful_test_images(cifar_dir, 3):
        dithered = ansi_numbers(HalfBlockImage(hwc), "standard")  # the depth from the console: xterm, 8 colours
        assert set(dithered) <= set(range(8)), set(dithered)
        assert len(set(dithered)) >= 5 and set(dithered) - GREYS  # colours, not greys
        # each colour is one of the 8 exactly as Rich's palette has them, so the terminal gets its own number
        drawn = HalfBlockImage(hwc, colors="8").drawn_pixels("8").reshape(-1, 3)
        assert {tuple(p) for p in drawn} <= {tuple(p) for p in ANSI_RGB[:8]}
        # what Textual's plain downgrade of the true colours gives instead (the grey blotches)
        plain = ansi_numbers(HalfBlockImage(hwc, colors="truecolor"), "standard")
        assert len(set(dithered) - GREYS) > len(set(plain) - GREYS) or set(plain) - set(range(8))


def test_16_colours_use_the_bright_ones_and_the_dither_stays_fixed_to_the_picture(cifar_dir, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-16color")
    hwc = rescale(colourful_test_images(cifar_dir, 1)[0], 3)
    numbers = ansi_numbers(HalfBlockImage(hwc), "standard")
    assert set(numbers) <= set(range(16)) and set(numbers) & set(range(8, 16)) and len(set(numbers) - GREYS) >= 3
    whole = HalfBlockImage(hwc, colors="16").drawn_pixels("16")
    part = HalfBlockImage(hwc[10:40, 7:50], colors="16", origin=(7, 10)).drawn_pixels("16")
    assert np.array_equal(part, whole[10:40, 7:50])  # panning moves the view, not the dither pattern


def test_without_colour_grey_levels_are_shade_characters():
    ramp = np.repeat(np.linspace(0, 255, 64).astype(np.uint8)[None, :, None], 8, axis=0).repeat(3, axis=2)
    console = Console(width=80, file=io.StringIO(), color_system=None, force_terminal=True, record=True)
    console.print(HalfBlockImage(ramp))  # no colours on the console: shades
    lines = console.export_text().splitlines()
    assert len(lines) == 4 and all(len(line) == 64 for line in lines)
    assert set("".join(lines)) <= set(SHADES) and UPPER_HALF not in "".join(lines)
    levels = np.array([[SHADES.index(ch) for ch in line] for line in lines])
    assert (levels[:, 0] == 0).all() and (levels[:, -1] == len(SHADES) - 1).all()  # black is blank, white is full
    assert levels[:, :32].mean() < levels[:, 32:].mean()  # and darker is lighter shading
    assert len(np.unique(levels)) == len(SHADES)


def test_the_colour_depth_comes_from_rich_s_colour_system_and_term():
    assert color_depth("truecolor") == "truecolor" and color_depth("256") == "256"
    assert color_depth("standard", "xterm") == "8" and color_depth("standard", "xterm-16color") == "16"
    assert color_depth("windows") == "16" and color_depth(None) == "none"


@pytest.mark.parametrize("term, no_color, depth", [("xterm", False, "8"), ("xterm-256color", True, "none")],
                         ids=["8-colours", "NO_COLOR"])
async def test_the_data_screen_draws_as_the_forced_terminal_can(cifar_dir, tmp_path, monkeypatch, term, no_color, depth):
    import textual.constants

    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "standard")  # as TEXTUAL_COLOR_SYSTEM=standard forces it
    monkeypatch.setenv("TERM", term)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = ResNetApp(config=TrainConfig(data=str(cifar_dir), limit_train=100, limit_eval=50), runs_root=tmp_path,
                    device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.console.color_system == "standard" and app_color_depth(app) == depth
        screen = await open_data(pilot, app)
        await pilot.press("z", "z")
        view = screen.query_one("#data-image", ImageView)
        cells = [cell for row in drawn_cells(view) for cell in row]
        if depth == "none":
            assert set(c.text for c in cells) <= set(SHADES) and len(set(c.text for c in cells)) >= 3
            return
        palette = {tuple(p) for p in ANSI_RGB[:int(depth)]}
        colours = {tuple(c) for cell in cells for c in (cell.style.color.triplet, cell.style.bgcolor.triplet)}
        assert colours <= palette and len(colours) >= 3
