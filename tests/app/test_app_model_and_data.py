"""The Model screen (architecture tree following the form) and the Data screen (browsing real images)."""

from __future__ import annotations

import numpy as np
from textual.widgets import Select, Tree

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.data import DataScreen
from resnet_tui.app.screens.model import ModelScreen
from resnet_tui.app.widgets.config_form import ConfigForm
from resnet_tui.app.widgets.pixels import PixelImage
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_split

from app_helpers import screen_text, shown_text, wait_for


def tree_labels(tree: Tree) -> dict[str, str]:
    """Module name -> label text, for every node."""
    out = {}

    def walk(node) -> None:
        out[node.data.name if node.data is not None else "?"] = node.label.plain
        for child in node.children:
            walk(child)

    walk(tree.root)
    return out


async def test_the_model_tree_shows_shapes_params_skips_and_shortcuts_and_follows_the_layers_field(tmp_path):
    app = ResNetApp(config=TrainConfig(data="sample"), runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen), 5, "the Model screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.root_info is not None, 30, "the tree")
        labels = tree_labels(screen.query_one(Tree))
        assert labels[""] == "ResNet → 10  205,338 params"
        assert "Total: 205,338 trainable parameters · layers 2,2,2" in shown_text(screen.query_one("#model-summary"))
        assert labels["conv"] == "conv Conv2d(3→16, 3x3, stride 1) → 16x32x32  432 params"
        assert labels["layer2.0"] == "block 0 → 32x32x32  18,624 params  ⤷ skip"
        assert labels["layer2.0.downsample"] == "downsample → 32x32x32  4,672 params  shortcut: 3x3 conv + BN"
        assert labels["layer2.0.downsample.0"].startswith("0 Conv2d(16→32, 3x3")
        assert labels["layer2.0.downsample.1"].startswith("1 BatchNorm2d(32)")
        assert "layer1.0.downsample" not in labels  # no shortcut where the channels stay 16
        assert labels["avg_pool"] == "avg_pool AvgPool2d(8x8) → 64x4x4  0 params"
        assert labels["fc"] == "fc Linear(1024→10) → 10  10,250 params"
        assert sum("⤷ skip" in label for label in labels.values()) == 6

        # change the form's layers: the tree follows
        await pilot.press("1")
        app.train_screen.query_one(ConfigForm).set_value("layers", "1,1,1")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.shown == ((1, 1, 1), True) and screen.root_info.params == 108_122, 30, "the 1,1,1 tree")
        labels = tree_labels(screen.query_one(Tree))
        assert sum("⤷ skip" in label for label in labels.values()) == 3 and "layer3.1" not in labels

        # an invalid layers field is said so; the last valid tree stays
        await pilot.press("1")
        app.train_screen.query_one(ConfigForm).set_value("layers", "1,1")
        await pilot.press("2")
        await pilot.pause()
        assert "The form's layers field is invalid" in shown_text(screen.query_one("#model-summary"))


async def test_the_data_screen_browses_real_images_by_index_and_class(cifar_dir, tmp_path):
    cfg = TrainConfig(data=str(cifar_dir), limit_train=100, limit_eval=50)
    train = load_split(str(cifar_dir), "train", limit=100)
    app = ResNetApp(config=cfg, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), 5, "the Data screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.split is not None, 60, "the split")
        box = screen.query_one("#data-image-box")
        image = screen.query_one("#data-image", PixelImage)
        name = lambda i: train.classes[int(train.labels[i])]  # noqa: E731
        assert box.border_title == f'Example: 0, Label: "{name(0)}"'
        assert np.array_equal(image.content.pixels, train.images[0].numpy().transpose(1, 2, 0))  # 1x: fits 80x24
        counts = shown_text(screen.query_one("#class-counts"))
        assert "plane" in counts and "truck" in counts and "total      100" in counts.replace(",", "")
        await pilot.press("right", "right")
        assert box.border_title == f'Example: 2, Label: "{name(2)}"'
        await pilot.press("left", "left", "left")  # wraps around
        assert screen.index == 99
        # zoom: 2x enlarges the image (the box scrolls)
        await pilot.press("z", "z")
        assert screen.zoom == 2 and image.content.width == 64 and image.content.height == 32
        # by class: choose horse, then next/previous stay within it
        screen.query_one("#data-class", Select).value = train.classes.index("horse")
        await pilot.pause()
        horses = [i for i in range(100) if name(i) == "horse"]
        assert screen.index in horses and box.border_title.endswith('Label: "horse"')
        first = screen.index
        await pilot.press("right")
        assert screen.index == horses[(horses.index(first) + 1) % len(horses)]
        # by index: type it
        index_input = screen.query_one("#data-index")
        index_input.focus()
        index_input.value = ""
        await pilot.press("4", "2", "enter")
        assert screen.index == 42 and box.border_title == f'Example: 42, Label: "{name(42)}"'
        # the test split: t
        await pilot.press("escape", "t")
        await wait_for(pilot, lambda: screen.split is not None and len(screen.split) == 50, 60, "the test split")
        assert "test split: 50 images" in shown_text(screen.query_one("#data-info"))
        test = load_split(str(cifar_dir), "test", limit=50)
        first_horse = next(i for i in range(50) if test.classes[int(test.labels[i])] == "horse")
        # the class filter stays: the first horse of the test split
        await wait_for(pilot, lambda: screen.index == first_horse, 5, "the first test horse")
        assert f'Example: {first_horse}, Label: "horse"' in screen_text(app)


async def choose_skip(pilot, app, value: str) -> None:
    """On the Train screen, with the keyboard: Tab to "Skip connections", Enter opens its list, choose `value`."""
    from resnet_tui.app.widgets.config_form import ConfigForm

    await pilot.press("1")
    await wait_for(pilot, lambda: app.screen is app.train_screen, 5, "the Train screen")
    skip = app.screen.query_one("#field-skip", Select)
    for _ in range(30):  # Tab from field to field, as a keyboard user does
        if app.screen.focused is skip:
            break
        await pilot.press("tab")
    assert app.screen.focused is skip, "Tab never reached the Skip connections field"
    await pilot.press("enter")  # the list opens on the current choice
    await pilot.pause()
    current = skip.value
    if current != value:
        await pilot.press("down" if value == "off" else "up")
    await pilot.press("enter")
    await wait_for(pilot, lambda: skip.value == value and app.screen.query_one(ConfigForm).config is not None
                   and app.screen.query_one(ConfigForm).config.skip == (value == "on"), 5, f"skip {value}")
    await pilot.press("escape")


async def test_the_model_tree_follows_the_skip_field_plain_network_without_skips_or_shortcuts(tmp_path):
    app = ResNetApp(config=TrainConfig(data="sample"), runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await choose_skip(pilot, app, "off")
        assert app.form_config.skip is False and app.form_config.layers == (2, 2, 2)
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen), 5, "the Model screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.shown == ((2, 2, 2), False) and screen.root_info is not None
                       and screen.root_info.params == 182_106, 30, "the plain 2,2,2 tree")
        labels = tree_labels(screen.query_one(Tree))
        assert labels[""] == "ResNet → 10  182,106 params"
        summary = shown_text(screen.query_one("#model-summary"))
        assert "Total: 182,106 trainable parameters · layers 2,2,2 (6 residual blocks, no skip connections)" in summary
        assert not any("⤷ skip" in label for label in labels.values())
        assert not any("shortcut" in label or "downsample" in name for name, label in labels.items())
        assert labels["layer2.0"] == "block 0 → 32x32x32  13,952 params"  # the same block without its shortcut
        assert "182,106" in screen_text(app)  # on screen at 80x24, not only in the widget

        # skip on again: the tree with skips and shortcuts, 205,338 parameters
        await choose_skip(pilot, app, "on")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.shown == ((2, 2, 2), True) and screen.root_info.params == 205_338, 30, "the 2,2,2 tree")
        labels = tree_labels(screen.query_one(Tree))
        assert labels[""] == "ResNet → 10  205,338 params"
        assert sum("⤷ skip" in label for label in labels.values()) == 6
        assert "shortcut: 3x3 conv + BN" in labels["layer2.0.downsample"] and "layer3.0.downsample" in labels
        assert "Total: 205,338 trainable parameters" in shown_text(screen.query_one("#model-summary"))
