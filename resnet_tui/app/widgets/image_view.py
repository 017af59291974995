"""An image at a zoom, shown through a view the size of the widget that pans over it (the Data screen's image).

The widget's `content` is the whole image at its zoom (a HalfBlockImage, as PixelImage has it); what it draws is
the part in view. `view_x, view_y` is the view's top-left corner in the zoomed image's pixels, always clamped so
that the view stays on the image. A terminal cell is one pixel wide and two high."""

from __future__ import annotations

from typing import Any

import numpy as np
from textual import events
from textual.binding import Binding
from textual.message import Message

from resnet_tui.app.widgets.pixels import HalfBlockImage, PixelImage, grey_range

PAN_STEP = 4  # pixels of the original image a pan key moves the view (times the zoom on screen)


class ImageView(PixelImage, can_focus=True):
    """A pannable view over an image. Arrow keys pan while it has focus, where the image is larger than the view
    in that direction (elsewhere they go on to the screen); `pan` and `center_view` are there for other keys."""

    DEFAULT_CSS = """
    ImageView { width: 1fr; height: 1fr; }
    """
    BINDINGS = [
        Binding("left", "pan(-1, 0)", "Pan", key_display="←↑↓→"),
        Binding("right", "pan(1, 0)", "Pan right", show=False),
        Binding("up", "pan(0, -1)", "Pan up", show=False),
        Binding("down", "pan(0, 1)", "Pan down", show=False),
        Binding("escape", "leave", "Leave image", show=False),
    ]

    class Moved(Message):
        """The view moved, or the image, its zoom or the widget's size changed."""

        def __init__(self, view: "ImageView") -> None:
            super().__init__()
            self.view = view

    def __init__(self, image: Any = None, scale: float = 1, **kwargs: Any) -> None:
        self.view_x = 0
        self.view_y = 0
        self._drag: tuple[int, int, int, int] | None = None
        super().__init__(image, scale, **kwargs)

    # ---------------------------------------------------------------- geometry

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the zoomed image in pixels; (0, 0) before there is one."""
        content = self.content
        if not isinstance(content, HalfBlockImage):
            return (0, 0)
        return (content.pixels.shape[1], content.pixels.shape[0])

    @property
    def view_size(self) -> tuple[int, int]:
        """(width, height) in pixels of the part of the image in view: the widget's size, at most the image's."""
        width, height = self.image_size
        return (min(width, self.content_size.width), min(height, 2 * self.content_size.height))

    def max_view(self) -> tuple[int, int]:
        (width, height), (view_w, view_h) = self.image_size, self.view_size
        return (max(0, width - view_w), max(0, height - view_h))

    def can_pan(self, dx: int = 0, dy: int = 0) -> bool:
        """Whether the image is larger than the view along the direction (dx, dy); with no direction, along either."""
        max_x, max_y = self.max_view()
        if dx == 0 and dy == 0:
            return max_x > 0 or max_y > 0
        return (dx != 0 and max_x > 0) or (dy != 0 and max_y > 0)

    def position_text(self) -> str:
        """E.g. 'view 12,8 of 96x96' when zoomed beyond the view, else '32x32'."""
        width, height = self.image_size
        if not self.can_pan():
            return f"{width}x{height}"
        return f"view {self.view_x},{self.view_y} of {width}x{height}"

    # ---------------------------------------------------------------- moving

    def move_view(self, x: int, y: int) -> None:
        """Put the view's top-left corner at (x, y), clamped to the image."""
        max_x, max_y = self.max_view()
        x, y = max(0, min(int(x), max_x)), max(0, min(int(y), max_y))
        if (x, y) != (self.view_x, self.view_y):
            self.view_x, self.view_y = x, y
            self.refresh()
        self.post_message(self.Moved(self))

    def pan(self, dx: int, dy: int) -> None:
        """Move the view by (dx, dy) steps of PAN_STEP original pixels."""
        step = PAN_STEP * max(1, int(self.scale))
        self.move_view(self.view_x + dx * step, self.view_y + dy * step)

    def center_view(self) -> None:
        (width, height), (view_w, view_h) = self.image_size, self.view_size
        self.move_view((width - view_w) // 2, (height - view_h) // 2)

    def visible_pixels(self) -> np.ndarray:
        """The zoomed image's pixels in view, [rows, columns, 3]."""
        content = self.content
        if not isinstance(content, HalfBlockImage):
            return np.zeros((0, 0, 3), np.uint8)
        view_w, view_h = self.view_size
        return content.pixels[self.view_y:self.view_y + view_h, self.view_x:self.view_x + view_w]

    # ---------------------------------------------------------------- drawing

    def show(self, image: Any, scale: float | None = None, center: bool = False) -> None:
        """Show `image` at `scale`; the view stays where it is (clamped), or goes to the centre."""
        super().show(image, scale)
        if self.is_mounted:
            if center:
                self.center_view()
            else:
                self.move_view(self.view_x, self.view_y)

    def render(self) -> Any:
        content = self.content
        if not isinstance(content, HalfBlockImage):
            return super().render()
        if content.levels is None:  # the whole image's grey range, so that the shades do not change as the view moves
            content.levels = grey_range(content.pixels)
        return HalfBlockImage(self.visible_pixels(), 1, colors=content.colors, origin=(self.view_x, self.view_y),
                              levels=content.levels)

    def on_resize(self, event: events.Resize) -> None:
        self.move_view(self.view_x, self.view_y)  # a larger widget may show more: clamp again

    # ---------------------------------------------------------------- keys and mouse

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pan":
            return self.can_pan(*parameters)  # type: ignore[arg-type]  # else the arrow goes on to the screen
        return True

    def action_pan(self, dx: int, dy: int) -> None:
        self.pan(dx, dy)

    def action_leave(self) -> None:
        self.screen.set_focus(None)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._drag = (event.screen_x, event.screen_y, self.view_x, self.view_y)
        self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._drag is not None:
            x0, y0, view_x, view_y = self._drag
            self.move_view(view_x - (event.screen_x - x0), view_y - 2 * (event.screen_y - y0))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._drag = None
        self.release_mouse()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        if self.can_pan(0, 1):
            event.stop()
            self.pan(0, 1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.can_pan(0, 1):
            event.stop()
            self.pan(0, -1)

