"""Sample predictions of an evaluation: which images (all, the wrong ones, one class, or one confusion cell), in
index order or shuffled with a seed, a page at a time; each card shows the image, its true class and its three most
probable classes with their probabilities (the first is the prediction, marked ✓ or ✗)."""

from __future__ import annotations

from typing import Any, Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from resnet_tui.core.eval_views import SampleMode, select_samples, top_k
from resnet_tui.plain_text import printable
from resnet_tui.app.widgets.pixels import PixelImage

PAGE_SIZE = 12
ORDER_OPTIONS = [("by index", "index"), ("random", "random")]
CARD_TEXT = 18  # characters in a line of a card (its width)


def mode_value(mode: SampleMode) -> str:
    """The Select value of a sample mode: "all", "wrong", "class:3", "cell:3,5"."""
    if isinstance(mode, tuple):
        return f"cell:{mode[0]},{mode[1]}"
    return f"class:{mode}" if isinstance(mode, int) else str(mode)


def parse_mode(value: str) -> SampleMode:
    if value.startswith("class:"):
        return int(value[6:])
    if value.startswith("cell:"):
        t, p = value[5:].split(",")
        return int(t), int(p)
    return value


def mode_label(mode: SampleMode, classes: Sequence[str]) -> str:
    if mode == "all":
        return "all images"
    if mode == "wrong":
        return "wrong only"
    if isinstance(mode, tuple):
        return f"true {printable(classes[mode[0]])} → {printable(classes[mode[1]])}"
    return f"class {printable(classes[int(mode)])}"


class PredictionCard(Vertical):
    """One test image: `#index true: cat`, then its top-3 classes: `✗ pred: dog 41%`, `  cat 30%`, `  frog 12%`."""

    DEFAULT_CSS = """
    PredictionCard { width: 18; height: auto; }
    PredictionCard > Label { width: 100%; }
    PredictionCard.-wrong > .verdict { color: $error; text-style: bold; }
    PredictionCard.-right > .verdict { color: $success; }
    PredictionCard > .runner-up { color: $text-muted; }
    """

    def __init__(self, index: int, image: Any, true_name: str, pred_name: str, top: Sequence[tuple[str, float]] = ()) -> None:
        correct = true_name == pred_name
        super().__init__(classes="-right" if correct else "-wrong")
        self.index, self.image, self.true_name, self.pred_name, self.correct = index, image, true_name, pred_name, correct
        self.top = list(top)  # (class name, probability), most probable first; empty without probabilities

    def compose(self) -> ComposeResult:
        yield PixelImage(self.image, scale=0.5)
        yield Label(Text(f"#{self.index} true: {printable(self.true_name)}"[:CARD_TEXT]))
        prob = f" {self.top[0][1]:.0%}" if self.top else ""
        verdict = f"{'✓' if self.correct else '✗'} pred: {printable(self.pred_name)}"
        yield Label(Text(verdict[: CARD_TEXT - len(prob)] + prob), classes="verdict")
        for name, p in self.top[1:]:
            yield Label(Text(f"  {printable(name)}"[: CARD_TEXT - 5] + f" {p:.0%}"), classes="runner-up")


class SampleGrid(Container, can_focus=True):
    """The cards of one page; focused, `[` `]` (or PageUp, PageDown) turn the page."""

    DEFAULT_CSS = """
    SampleGrid { layout: grid; grid-size: 4; grid-columns: 18; grid-gutter: 1 1; height: auto; border-left: blank; }
    SampleGrid:focus { border-left: thick $accent; background-tint: $foreground 4%; }
    """
    BINDINGS = [
        Binding("left_square_bracket,pageup", "page(-1)", "Previous page", show=False),
        Binding("right_square_bracket,pagedown", "page(1)", "Pages", key_display="[ ]"),
    ]

    async def action_page(self, step: int) -> None:
        panel = next((a for a in self.ancestors if isinstance(a, SamplesPanel)), None)
        if panel is not None:
            await panel.turn_page(step)


class SamplesPanel(Vertical):
    """What to show (a Select: all, wrong only, a class, or the confusion cell chosen last), the order and seed, the
    page, and the grid of cards. `show_result` fills it; `show_cell` shows one confusion cell."""

    DEFAULT_CSS = """
    SamplesPanel { height: auto; display: none; }
    SamplesPanel > #samples-controls { height: 1; margin-bottom: 1; }
    SamplesPanel > #samples-controls > Label { margin: 0 1 0 0; color: $text-muted; }
    SamplesPanel #sample-mode { width: 26; margin-right: 2; }
    SamplesPanel #sample-order { width: 12; margin-right: 2; }
    SamplesPanel #sample-seed { width: 8; }
    SamplesPanel > #samples-title { height: 1; text-wrap: nowrap; text-overflow: ellipsis; margin-bottom: 1; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: Any = None
        self.images: Sequence[Any] = ()
        self.mode: SampleMode = "all"
        self.order = "index"
        self.seed = 0
        self.indices: list[int] = []  # the chosen images, in the order shown
        self.page = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="samples-title")
        with Horizontal(id="samples-controls"):
            yield Label("Show")
            yield Select([("all images", "all")], value="all", allow_blank=False, compact=True, id="sample-mode")
            yield Label("Order")
            yield Select(ORDER_OPTIONS, value="index", allow_blank=False, compact=True, id="sample-order")
            yield Label("Seed")
            yield Input("0", type="integer", compact=True, id="sample-seed")
        yield SampleGrid(id="sample-grid")

    @property
    def grid(self) -> SampleGrid:
        return self.query_one(SampleGrid)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.indices) // PAGE_SIZE))

    @property
    def shown(self) -> list[int]:
        """The indices of the images on the current page."""
        return self.indices[self.page * PAGE_SIZE:(self.page + 1) * PAGE_SIZE]

    async def show_result(self, result: Any, images: Sequence[Any]) -> None:
        """A new evaluation: all its images by index (the mode's list gets its classes)."""
        self.result, self.images = result, images
        self.mode = "all"
        self._set_mode_options()
        await self.refill()

    async def show_cell(self, true_class: int, pred_class: int) -> None:
        """Exactly the images of one confusion cell (by index, or shuffled if random is chosen)."""
        self.mode = (true_class, pred_class)
        self._set_mode_options()
        await self.refill()

    def _set_mode_options(self) -> None:
        select = self.query_one("#sample-mode", Select)
        classes = self.result.classes if self.result is not None else []
        modes: list[SampleMode] = ["all", "wrong", *range(len(classes))]
        if isinstance(self.mode, tuple):
            modes.append(self.mode)
        with self.prevent(Select.Changed):
            select.set_options([(mode_label(m, classes), mode_value(m)) for m in modes])
            select.value = mode_value(self.mode)

    async def refill(self, page: int = 0) -> None:
        """Choose the images again (mode, order, seed) and show page `page`."""
        usable = self.result is not None and self.result.predictions and len(self.images) >= len(self.result.predictions)
        self.display = bool(usable)  # a result read back from metrics.jsonl has no predictions to show
        self.indices = select_samples(self.result, self.mode, self.order, self.seed) if usable else []
        await self.show_page(page)

    async def turn_page(self, step: int) -> None:
        await self.show_page(min(max(self.page + step, 0), self.pages - 1))

    async def show_page(self, page: int) -> None:
        self.page = page
        self._update_title()
        grid = self.grid
        await grid.remove_children()
        r = self.result
        if not self.indices:
            return
        await grid.mount_all(
            PredictionCard(i, self.images[i], r.classes[r.labels[i]], r.classes[r.predictions[i]],
                           [(r.classes[c], p) for c, p in top_k(r, i, 3)])
            for i in self.shown
        )

    def _update_title(self) -> None:
        title = self.query_one("#samples-title", Static)
        if self.result is None or not self.result.predictions:
            title.update("")
            return
        n = len(self.indices)
        t = Text("Samples: ", style="bold")
        t.append(mode_label(self.mode, self.result.classes), style="bold")
        t.append(f" · {n} image{'s' if n != 1 else ''}, " + ("by index" if self.order == "index" else f"random (seed {self.seed})"))
        if n:
            first = self.page * PAGE_SIZE
            t.append(f" · page {self.page + 1}/{self.pages} ({first + 1}-{min(first + PAGE_SIZE, n)})")
        t.append("  [ ] pages", style="dim")
        title.update(t)

    @on(Select.Changed, "#sample-mode")
    async def _mode_changed(self, event: Select.Changed) -> None:
        if event.value is Select.NULL or self.result is None:
            return
        mode = parse_mode(str(event.value))
        if mode != self.mode:
            self.mode = mode
            await self.refill()

    @on(Select.Changed, "#sample-order")
    async def _order_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and event.value != self.order:
            self.order = str(event.value)
            await self.refill()

    @on(Input.Changed, "#sample-seed")
    async def _seed_changed(self, event: Input.Changed) -> None:
        try:
            seed = int(event.value)
        except ValueError:
            return  # an empty or partial field keeps the last seed
        if seed != self.seed and seed >= 0:
            self.seed = seed
            if self.order == "random":
                await self.refill()
