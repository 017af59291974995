"""The machine, live: per GPU its utilisation, memory, power and temperature, and the process's and the host's CPU
and RAM, in 2-4 lines that fit a 40-column panel and use the room of a wide one.

Sampling (psutil, NVML) runs in a SystemMonitor's own thread once a second; the UI only reads its `latest`
sample on a 1 s timer, so neither the UI thread nor the training thread ever waits on a driver call.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from resnet_tui.core.events import GpuSample, SystemSample
from resnet_tui.core.system import MAX_GPU_LINES, SystemMonitor, SystemSampler, gib, gpu_text, ram_percent, size_text
from resnet_tui.plain_text import printable

SAMPLE_SECONDS = 1.0
BAR_MAX = 30  # a bar wider than this says nothing more
BAR_MIN = 4


def _bar(percent: float, width: int) -> Text:
    full = round(max(0.0, min(100.0, percent)) / 100 * width)
    style = "green" if percent >= 80 else "yellow" if percent >= 30 else "red"  # an idle GPU in training is the news
    return Text.assemble(("█" * full, style), ("░" * (width - full), "dim"))


def gpu_line(g: GpuSample, width: int) -> Text:
    """`GPU0 ██████░░ 97% 11.2/79.6 GiB 310 W 64°C  NVIDIA H200`: the bar takes what the figures leave, the name
    comes last when it fits."""
    label = f"GPU{g.index} "
    figures = gpu_text(g)
    line = Text(label, style="bold")
    bar = min(BAR_MAX, width - len(label) - 1 - len(figures))
    if g.util is not None and bar >= BAR_MIN:
        line.append_text(_bar(g.util, bar))
        line.append(" ")
    line.append(figures)
    name = printable(g.name)  # from the driver, or a record: text, never escape codes
    if len(line) + 2 + len(name) <= width:
        line.append(f"  {name}", style="dim")
    return line


def more_gpus_line(gpus: list[GpuSample]) -> Text:
    """The GPUs past MAX_GPU_LINES - 1, together: their count, mean utilisation and memory."""
    utils = [g.util for g in gpus if g.util is not None]
    used = sum(g.mem_used or 0 for g in gpus)
    total = sum(g.mem_total or 0 for g in gpus)
    text = f"+{len(gpus)} GPUs"
    if utils:
        text += f" {sum(utils) / len(utils):.0f}% mean"
    if total:
        text += f" {gib(used)}/{gib(total)} GiB"
    return Text(text, style="bold")


def host_line(s: SystemSample, width: int) -> Text:
    """The training process's CPU (percent of one core) and RSS, the machine's CPU and RAM; shorter when narrow."""
    if s.process_cpu is None and s.process_rss is None:  # a watched run's trainer that has ended
        return Text.assemble(("process ", "bold"), ("ended", "dim"), ("  ·  ", "dim"), ("host ", "bold"),
                             f"cpu {s.host_cpu:.0f}% ram {ram_percent(s):.0f}%")
    cpu = "?" if s.process_cpu is None else f"{s.process_cpu:.0f}%"
    rss = "?" if s.process_rss is None else size_text(s.process_rss)
    ram = f"{gib(s.host_ram_used)}/{gib(s.host_ram_total)} GiB"
    wide = Text.assemble(("process ", "bold"), f"cpu {cpu} rss {rss}", ("  ·  ", "dim"),
                         ("host ", "bold"), f"cpu {s.host_cpu:.0f}% ram {ram} ({ram_percent(s):.0f}%)")
    if len(wide) <= width:
        return wide
    return Text.assemble(("proc ", "bold"), f"{cpu} {rss}", (" · ", "dim"),
                         ("host ", "bold"), f"{s.host_cpu:.0f}% ram {ram_percent(s):.0f}%")


def note_and_host_lines(s: SystemSample, width: int) -> list[Text]:
    """The note on the GPUs (when there is one) and the host line; one line for a CPU-only machine where it fits."""
    if not s.gpu_note:
        return [host_line(s, width)]
    note = Text.assemble(("GPU: ", "bold"), (printable(s.gpu_note), "dim"))
    beside = host_line(s, width - len(note) - 3)
    if not s.gpus and len(note) + 3 + len(beside) <= width:
        return [Text.assemble(note, (" · ", "dim"), beside)]
    return [note, host_line(s, width)]


def panel_text(s: SystemSample | None, width: int) -> Text:
    if s is None:
        return Text("reading the machine…", style="dim")
    lines: list[Text] = []
    gpus = s.gpus
    if len(gpus) > MAX_GPU_LINES:
        lines += [gpu_line(g, width) for g in gpus[:MAX_GPU_LINES - 1]]
        lines.append(more_gpus_line(gpus[MAX_GPU_LINES - 1:]))
    else:
        lines += [gpu_line(g, width) for g in gpus]
    lines += note_and_host_lines(s, width)
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)


class SystemPanel(Static):
    """Shows the machine, refreshed once a second. sampler: what to read (default: this process and machine;
    tests pass one with a fake NVML). The sampling thread starts on mount and stops on unmount."""

    DEFAULT_CSS = """
    SystemPanel { height: auto; }
    """

    def __init__(self, sampler: SystemSampler | Any = None, **kwargs: Any) -> None:
        super().__init__(Text("reading the machine…", style="dim"), **kwargs)
        self.monitor = SystemMonitor(sampler if sampler is not None else SystemSampler(), SAMPLE_SECONDS)
        self.shown: SystemSample | None = None

    def on_mount(self) -> None:
        self.monitor.start()
        self.set_interval(SAMPLE_SECONDS / 2, self.show_latest)  # a new sample shows within half a second

    def on_unmount(self) -> None:
        self.monitor.stop(timeout=0.5)

    def show_latest(self) -> None:
        """Show the monitor's latest sample if it is new (reads an attribute; never samples here)."""
        latest = self.monitor.latest
        if latest is not None and latest is not self.shown:
            self.shown = latest
            self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self.shown is None:
            return
        text = panel_text(self.shown, max(self.content_size.width, 20))
        old = self.content
        if isinstance(old, Text) and old.plain == text.plain and old.spans == text.spans:
            return
        # a layout pass re-renders much of the screen (time a training thread could use): only when the height changes
        relayout = not isinstance(old, Text) or old.plain.count("\n") != text.plain.count("\n")
        self.update(text, layout=relayout)
