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
