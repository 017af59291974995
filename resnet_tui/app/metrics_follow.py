"""Following a run through its metrics.jsonl: read only new complete lines, as engine events (resnet_tui.core.records).

Used by watch mode and the Runs screen's run viewer. Another process may be writing the file, so a line
without its newline is left for the next poll (it may be half-written; a killed writer's torn line is ended
by the next writer and then skipped as damaged). When a resumed run's start record supersedes events already
read (or the file is replaced), the follower starts over: `restart` says the events replace all earlier ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from resnet_tui.core import events as ev
from resnet_tui.core.records import RunRecords, add_lines


@dataclass
class FollowUpdate:
    events: list[ev.Event] = field(default_factory=list)
    restart: bool = False  # forget what was read before: `events` is the whole run again


class MetricsFollower:
    def __init__(self, path: str | Path, run_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        self.run_dir = Path(run_dir) if run_dir is not None else self.path.parent
        self.offset = 0
        self.records = RunRecords()  # everything read so far, superseded records dropped

    @property
    def skipped(self) -> int:
        return self.records.skipped

    def read_new(self) -> FollowUpdate:
        """The events of the complete lines appended since the last call."""
        try:
            size = os.stat(self.path).st_size
        except OSError:  # not there yet, or gone
            return FollowUpdate()
        restart = size < self.offset  # the file was replaced or truncated: read it again from the start
        if restart:
            self.offset, self.records = 0, RunRecords()
        before = len(self.records.events)
        dropped = add_lines(self.records, self._complete_lines(size), self.run_dir)
        if restart or dropped:
            return FollowUpdate(list(self.records.events), restart=True)
        return FollowUpdate(self.records.events[before:])

    def _complete_lines(self, size: int) -> bytes:
        """The new bytes up to the last newline; the offset moves past them."""
        if size == self.offset:
            return b""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError:  # a folder, or unreadable
            return b""
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end]
