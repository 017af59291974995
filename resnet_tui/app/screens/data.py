"""Screen 3, Data: browse a split of the data set by index and by class, as half-block pixel images, zoomed and
panned, next to the split's class counts (which always stay on screen: they get their rows first)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from rich import box
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, LoadingIndicator, Select, Static

from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.state import ReportError
from resnet_tui.app.widgets.image_view import ImageView

if TYPE_CHECKING:
    from resnet_tui.core.data import Split

ALL_CLASSES = -1
ZOOMS = ("fit", 1, 2, 3)


INFO_MIN_ROWS = 3  # the split, its source and the class filter: what the counts leave at least to the info


def class_counts_table(classes: tuple[str, ...], counts: list[int], columns: int = 1) -> Table:
    """The images per class and the total: one class a row with a bar, or `columns` classes a row (no bars)
    where the screen is too short for one a row."""
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1))
    total = Text(f"{sum(counts):,}", style="bold")
    if columns <= 1:
        t.add_column("class", no_wrap=True)
        t.add_column("images", justify="right", no_wrap=True)
        t.add_column("", no_wrap=True)
        top = max(counts) if counts else 0
        for name, n in zip(classes, counts):
            t.add_row(Text(name), f"{n:,}", Text("█" * (round(8 * n / top) if top else 0), style="cyan"))
        t.add_row(Text("total", style="bold"), total, "")
        return t
    rows = math.ceil(len(classes) / columns)
    for _ in range(columns):
        t.add_column("class", no_wrap=True)
        t.add_column("images", justify="right", no_wrap=True)
    for r in range(rows):
        cells: list[Any] = []
        for c in range(columns):
            i = c * rows + r
            cells += [Text(classes[i]), f"{counts[i]:,}"] if i < len(classes) else ["", ""]
        t.add_row(*cells)
    t.add_row(Text("total", style="bold"), total, *[""] * (2 * columns - 2))
    return t


def count_columns(n_classes: int, rows: int) -> int:
    """How many classes a row the counts need to fit in `rows` (header, rule and total included), at most 3."""
    for columns in (1, 2, 3):
        if math.ceil(n_classes / columns) + 3 <= rows:
            return columns
    return 3


class DataScreen(AppScreen):
    NAV = "data"
    # Nothing has focus at first: ←/→ browse and h/j/k/l pan. Tab (or a click) gives the image the focus; then
    # the arrows pan it wherever it is larger than the view, and Escape gives them back to browsing.
    AUTO_FOCUS = ""  # "" and not None: None would inherit the app's "*" and focus the Split select
    BINDINGS = [
        Binding("left", "step(-1)", "Browse", key_display="←→"),
        Binding("right", "step(1)", "Next image", show=False),
        Binding("z", "zoom", "Zoom"),
        Binding("h", "pan(-1, 0)", "Pan", key_display="hjkl",
                tooltip="pan a zoomed image left (j down, k up, l right); the arrow keys too while the image has "
                        "the focus (Tab or click to it; Escape leaves it)"),
        Binding("j", "pan(0, 1)", "", show=False),
        Binding("k", "pan(0, -1)", "", show=False),
        Binding("l", "pan(1, 0)", "", show=False),
        Binding("c", "center_view", "Centre", show=False, tooltip="put the view of a zoomed image back in the centre"),
        Binding("t", "toggle_split", "Split", show=False, tooltip="switch between the train and the test split"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.split: "Split | None" = None
        self.split_name = "train"
        self.index = 0
        self.class_filter = ALL_CLASSES
        self.zoom: Any = "fit"
        self.loaded_key: tuple[Any, ...] | None = None
        self.load_error = ""
        self.pannable = False  # whether the image is larger than its view, as the footer last showed it

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="data-controls"):
            yield Label("Split")
            yield Select([("train", "train"), ("test", "test")], value="train", allow_blank=False, compact=True,
                         type_to_search=False, id="data-split")
            yield Label("Class")
            yield Select([("all", ALL_CLASSES)], value=ALL_CLASSES, allow_blank=False, compact=True,
                         type_to_search=False, id="data-class")
            yield Label("Index")
            yield Input("0", restrict=r"[0-9]*", compact=True, id="data-index")
        with Horizontal(id="data-body"):
            with Vertical(id="data-image-box"):
                yield LoadingIndicator(id="data-loading")
                yield ImageView(id="data-image")
            with Vertical(id="data-side"):
                yield Static("", id="data-info")
                yield Static("", id="class-counts")

    def on_mount(self) -> None:
        self.query_one("#data-image-box").border_title = "Example"

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self._load_if_needed()

    def _wanted_key(self) -> tuple[Any, ...]:
        cfg = self.session.form.last_valid
        limit = cfg.limit_train if self.split_name == "train" else cfg.limit_eval
        return (cfg.data, cfg.data_dir, self.split_name, limit)

    def _load_if_needed(self) -> None:
        key = self._wanted_key()
        if key != self.loaded_key:
            self.loaded_key = key
            self.query_one("#data-loading").display = True
            self.query_one("#data-info", Static).update(f"Loading the {key[2]} split of {key[0]}…")
            self._load(*key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data")
    def _load(self, data: str, data_dir: str | None, split: str, limit: int | None) -> None:
        from resnet_tui.core.errors import UserError

        try:
            loaded = self.session.splits.load(data, split, data_dir, limit)
        except UserError as e:
            self.app.call_from_thread(self._load_failed, str(e))
            return
        except Exception as e:  # an unreadable folder or file must not take the app down
            self.app.call_from_thread(self._load_failed, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._loaded, loaded)

    def _load_failed(self, message: str) -> None:
        self.load_error = message
        self.loaded_key = None  # try again next time the screen is shown
        self.query_one("#data-loading").display = False
        self.query_one("#data-info", Static).update(Text(message, style="bold red"))
        self.post_message(ReportError(message))

    def _loaded(self, split: "Split") -> None:
        self.split = split
        self.load_error = ""
        self.query_one("#data-loading").display = False
        options = [("all", ALL_CLASSES)] + [(c, i) for i, c in enumerate(split.classes)]
        class_select = self.query_one("#data-class", Select)
        class_select.set_options(options)
        class_select.value = self.class_filter if self.class_filter < len(split.classes) else ALL_CLASSES
        self._show_counts()
        for note in split.notices[:1]:
            self.notify(note, title="Data")
        self.show(min(self.index, len(split) - 1))

    # ---------------------------------------------------------------- browsing

    def show(self, index: int) -> None:
        split = self.split
        if split is None or len(split) == 0:
            return
        self.index = max(0, min(index, len(split) - 1))
        label = int(split.labels[self.index])
        name = split.classes[label]
        box_ = self.query_one("#data-image-box")
        box_.border_title = Text(f'Example: {self.index}, Label: "{name}"')
        image = self.query_one("#data-image", ImageView)
        scale = self._scale()
        image.show(split.images[self.index], scale, center=scale != image.scale)  # a new zoom starts centred
        index_input = self.query_one("#data-index", Input)
        if index_input.value != str(self.index):
            index_input.value = str(self.index)
        self._show_position()
        self._show_info()

    def _show_info(self) -> None:
        split = self.split
        if split is None:
            return
        filt = "all classes" if self.class_filter == ALL_CLASSES else f"class {split.classes[self.class_filter]}"
        info = Text()  # the source is a path and the classes are folder names: text, never markup
        info.append(self.split_name, style="bold")
        info.append(f" split: {len(split):,} images\nfrom {split.source}\nbrowsing {filt}\n")
        info.append("←/→ previous/next · z zoom · t train/test", style="dim")
        if self.query_one("#data-image", ImageView).can_pan():
            info.append("\nhjkl pan (arrows: Tab to the image) · c centre", style="dim")
        self.query_one("#data-info", Static).update(info)

    def _show_position(self) -> None:
        """The zoom and, where the image is larger than the view, which part of it is in view: under the image."""
        image = self.query_one("#data-image", ImageView)
        zoom = f"zoom {image.scale}x" + (" (fit)" if self.zoom == "fit" else "")
        self.query_one("#data-image-box").border_subtitle = f"{zoom} · {image.position_text()}"

    def _show_counts(self) -> None:
        split = self.split
        if split is None:
            return
        rows = self.query_one("#data-side").content_size.height - INFO_MIN_ROWS
        columns = count_columns(len(split.classes), rows) if rows > 0 else 1
        self.query_one("#class-counts", Static).update(class_counts_table(split.classes, split.class_counts(), columns))

    def _scale(self) -> int:
        if self.zoom != "fit":
            return int(self.zoom)
        region = self.query_one("#data-image-box").content_size
        # a 32x32 image is 32 cells wide and 16 high at 1x
        return max(1, min(region.width // 32, region.height // 16, 3))

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        self.call_after_refresh(self._show_counts)
        if self.zoom == "fit":
            self.call_after_refresh(lambda: self.show(self.index))

    @on(ImageView.Moved)
    def _view_moved(self, event: ImageView.Moved) -> None:
        self._show_position()
        if event.view.can_pan() != self.pannable:  # pan and centre are offered while there is something to pan
            self.pannable = event.view.can_pan()
            self.refresh_bindings()
            self._show_info()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pan", "center_view"):
            images = self.query("#data-image").results(ImageView)
            return any(image.can_pan() for image in images)
        return True

    def action_pan(self, dx: int, dy: int) -> None:
        self.query_one("#data-image", ImageView).pan(dx, dy)

    def action_center_view(self) -> None:
        self.query_one("#data-image", ImageView).center_view()

    def action_step(self, delta: int) -> None:
        split = self.split
        if split is None:
            return
        n = len(split)
        if self.class_filter == ALL_CLASSES:
            self.show((self.index + delta) % n)
            return
        labels = split.labels
        i = self.index
        for _ in range(n):
            i = (i + delta) % n
            if int(labels[i]) == self.class_filter:
                self.show(i)
                return

    def action_zoom(self) -> None:
        self.zoom = ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)]
        self.show(self.index)

    def action_toggle_split(self) -> None:
        self.query_one("#data-split", Select).value = "test" if self.split_name == "train" else "train"

    @on(Select.Changed, "#data-split")
    def _split_changed(self, event: Select.Changed) -> None:
        if event.value in ("train", "test") and event.value != self.split_name:
            self.split_name = str(event.value)
            self.index = 0
            self._load_if_needed()

    @on(Select.Changed, "#data-class")
    def _class_changed(self, event: Select.Changed) -> None:
        if event.value is Select.NULL or event.value == self.class_filter:
            return
        self.class_filter = int(event.value)  # type: ignore[arg-type]
        split = self.split
        if split is None:
            return
        if self.class_filter != ALL_CLASSES and int(split.labels[self.index]) != self.class_filter:
            self.action_step(1)
        else:
            self.show(self.index)

    @on(Input.Submitted, "#data-index")
    def _index_submitted(self, event: Input.Submitted) -> None:
        if event.value.isdigit():
            self.show(int(event.value))
