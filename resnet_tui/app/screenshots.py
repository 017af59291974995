"""Screenshots of the app: `screen_text(app)` (what the terminal shows, as plain text; tests read it) and
`python -m resnet_tui.app.screenshots` (SVGs of every screen into assets/, from a short real training run
on the data given with --data and a real evaluation of its checkpoint)."""

from __future__ import annotations

import io

from rich.console import Console


def screen_text(app) -> str:
    """The current screen as plain text, line by line (the same rendering as App.export_screenshot)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def _wait(pilot, condition, timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


async def take_screenshots(data: str, out: str, size: tuple[int, int], work_dir: str) -> list[str]:
    """Train a short real run, evaluate it, and save an SVG of every screen. Returns the files written."""
    from pathlib import Path

    from resnet_tui.app.app import ResNetApp
    from resnet_tui.core.config import TrainConfig

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = Path(work_dir) / "runs"
    cfg = TrainConfig(data=data, epochs=3, batch_size=64, lr=0.05, momentum=0.9, limit_train=1280, limit_eval=500, device="cpu")
    app = ResNetApp(mode="train", config=cfg, run_dir=runs / "20261128-100000", runs_root=runs)
    written: list[str] = []

    def save(name: str) -> None:
        app.save_screenshot(name, str(out_dir))
        written.append(str(out_dir / name))

    async with app.run_test(size=size) as pilot:
        end = await app.wait_for_run_end(timeout=1800)
        if end is None or end.status != "finished":
            raise RuntimeError(f"the training run did not finish: {end} {app.last_error}")
        await pilot.pause(0.5)
        save("screen-train.svg")

        await pilot.press("2")
        await _wait(pilot, lambda: getattr(app.screen, "root_info", None) is not None, 60, "the model tree")
        await pilot.pause(0.2)
        save("screen-model.svg")

        await pilot.press("3")
        await _wait(pilot, lambda: getattr(app.screen, "split", None) is not None, 300, "the data")
        app.screen.show(7)
        await pilot.pause(0.2)
        save("screen-data.svg")

        await pilot.press("4")
        await pilot.pause(0.5)
        await pilot.press("e")  # the run's newest checkpoint is chosen already
        await _wait(pilot, lambda: getattr(app.screen, "result", None) is not None, 600, "the evaluation")
        await pilot.pause(0.5)
        save("screen-evaluate.svg")

        await pilot.press("5")
        await pilot.pause(0.5)
        save("screen-runs.svg")
        await pilot.press("enter")
        await pilot.pause(1.0)
        save("screen-run.svg")
    return written


async def take_lens_screenshot(runs: str, out: str, size: tuple[int, int], quantity: str = "grad") -> str:
    """The Lens view of the runs in `runs` (the first two, side by side), saved as out/screen-lens.svg."""
    from pathlib import Path

    from resnet_tui.app.app import ResNetApp
    from resnet_tui.app.screens.lens import LensScreen

    app = ResNetApp(device_label="CPU", runs_root=Path(runs))
    async with app.run_test(size=size) as pilot:
        await pilot.press("5")
        await _wait(pilot, lambda: len(getattr(app.screen, "summaries", [])) >= 2, 30, "two runs")
        await pilot.press("space", "space", "l")
        await _wait(pilot, lambda: isinstance(app.screen, LensScreen) and app.screen.loaded, 60, "the lens")
        while app.screen.quantity != quantity:
            await pilot.press("n")
        await pilot.pause(0.5)
        app.save_screenshot("screen-lens.svg", out)
    return str(Path(out) / "screen-lens.svg")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import asyncio
    import os
    import tempfile

    parser = argparse.ArgumentParser(description="Save SVG screenshots of every screen (a short real run on --data).")
    parser.add_argument("--data", default="sample", help="auto, sample or an image-folder path (default: the bundled sample)")
    parser.add_argument("--out", default="assets", help="folder for screen-*.svg (default: assets)")
    parser.add_argument("--size", default="120x40", help="terminal size, WIDTHxHEIGHT (default: 120x40)")
    parser.add_argument("--lens", metavar="RUNS", help="only the Lens view of the first two runs in RUNS (screen-lens.svg)")
    parser.add_argument("--quantity", default="grad", help="the Lens view's quantity: ratio, grad, mean or std (default: grad)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.lens:
        here, runs, out = os.getcwd(), os.path.abspath(args.lens), os.path.abspath(args.out)
        os.chdir(os.path.dirname(runs))  # the screen shows the runs folder's name, not its path
        try:
            print(asyncio.run(take_lens_screenshot(os.path.basename(runs), out, (width, height), args.quantity)))
        finally:
            os.chdir(here)
        return 0
    data = args.data if args.data in ("auto", "sample", "cifar10") else os.path.abspath(args.data)
    out = os.path.abspath(args.out)
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="resnet-tui-screens-") as work:
        os.chdir(work)  # the screens then show runs/<name>, not a temporary path
        try:
            for path in asyncio.run(take_screenshots(data, out, (width, height), ".")):
                print(path)
        finally:
            os.chdir(here)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
