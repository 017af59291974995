"""Screen 2, Model: the architecture as a tree, following the Train form's layers field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, Tree

from resnet_tui.app.screens.base import AppScreen

if TYPE_CHECKING:
    from resnet_tui.core.model import ModuleInfo


def node_label(m: "ModuleInfo") -> Text:
    from resnet_tui.report import module_label  # report imports torch; the app starts without it

    return module_label(m)


class ModelScreen(AppScreen):
    NAV = "model"
    AUTO_FOCUS = "#model-tree"
    BINDINGS = [Binding("l", "lens", "Lens", tooltip="the residual lens of the current run")]

    def __init__(self) -> None:
        super().__init__()
        self.shown: tuple[tuple[int, ...], bool] | None = None  # (layers, skip) the tree shows
        self.root_info: Any = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="model-summary")
        tree: Tree[Any] = Tree("ResNet", id="model-tree")
        tree.show_root = True
        yield tree

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        form = self.session.form
        cfg = form.last_valid
        wanted = (tuple(cfg.layers), bool(cfg.skip))
        if "layers" in form.errors:
            self._summary(f"[b red]The form's layers field is invalid[/] ({form.errors['layers']}); "
                          f"showing layers {','.join(map(str, wanted[0]))}")
        if wanted != self.shown:
            self.shown = wanted
            if "layers" not in form.errors:
                self._summary(f"Building layers {','.join(map(str, wanted[0]))}…")
            self._describe(*wanted)

    def action_lens(self) -> None:
        run = self.session.current_run_dir
        if run is None:
            self.notify("No current run: train one (s), or open one on the Runs screen (5).", severity="warning")
            return
        from resnet_tui.app.screens.lens import LensScreen

        self.app.push_screen(LensScreen([(run, run.name)]))

    def _summary(self, markup: str) -> None:
        self.query_one("#model-summary", Static).update(markup)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _describe(self, layers: tuple[int, int, int], skip: bool) -> None:
        from resnet_tui.core.model import describe  # imports torch: kept off the UI thread

        info = describe(layers, skip)
        self.app.call_from_thread(self.show_tree, info, layers, skip)

    def show_tree(self, info: "ModuleInfo", layers: tuple[int, ...], skip: bool) -> None:
        self.root_info = info
        tree = self.query_one(Tree)
        tree.clear()
        tree.root.set_label(node_label(info))
        tree.root.data = info

        def add(node: Any, m: "ModuleInfo") -> None:
            for child in m.children:
                if child.children:
                    # Stages stay open; of the blocks, those with a downsample shortcut, so the whole network
                    # fits on a screen and the unusual part shows. Enter opens and closes the others.
                    expand = child.kind != "ResidualBlock" or any(c.is_shortcut for c in child.children)
                    add(node.add(node_label(child), data=child, expand=expand), child)
                else:
                    node.add_leaf(node_label(child), data=child)

        add(tree.root, info)
        tree.root.expand()
        blocks = sum(layers)
        self._summary(
            f"[b]Total: {info.params:,} trainable parameters[/] · layers {','.join(map(str, layers))} "
            f"({blocks} residual blocks{'' if skip else ', no skip connections'}) · input 3x32x32\n"
            f"[b yellow]⤷ skip[/]: the block adds its input to its output · "
            f"[b yellow]shortcut[/]: 3x3 conv + BN where the channels change · Enter opens a block"
        )
