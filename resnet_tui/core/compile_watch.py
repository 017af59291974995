"""Notice when torch.compile gives up on a compiled run.

Past its recompile limit (8 graphs of one function), dynamo runs the function eagerly for the rest of the process
and says so only in a log warning. The trainer compiles one static shape and resets dynamo at each run's start, so
it should never come to that; if it does (a new shape, a guard that keeps failing), this catches the warning and
the trainer turns it into a notice on the run's next read-back, so a run that stopped being compiled says so.
"""

from __future__ import annotations

import logging

DYNAMO_LOGGER = "torch._dynamo.convert_frame"  # where torch 2.4-2.14 log "torch._dynamo hit config.recompile_limit (8)"
HIT = "torch._dynamo hit config."


class RecompileLimitWatch(logging.Handler):
    """Attached to dynamo's logger while a compiled run trains (use it as a context manager)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._hits: list[str] = []  # guarded by the handler's own lock, which logging holds around emit()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is dynamo's problem, not a reason to fail a training step
            return
        if message.startswith(HIT):
            lines = [line.strip() for line in message.splitlines()]
            function = next((line.removeprefix("function: ") for line in lines if line.startswith("function: ")), "")
            self._hits.append(lines[0].removeprefix(HIT) + (f" for {function}" if function else ""))

    def take(self) -> list[str]:
        """The notices since the last call: what dynamo hit, and what that means for the run."""
        with self.lock:  # type: ignore[union-attr]  # logging.Handler.createLock made it
            hits, self._hits = self._hits, []
        return [f"torch.compile hit dynamo's {hit}: from here on the model runs without compile (eager), slower; "
                "TORCH_LOGS=recompiles says why it kept compiling" for hit in hits]

    def __enter__(self) -> "RecompileLimitWatch":
        logging.getLogger(DYNAMO_LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(DYNAMO_LOGGER).removeHandler(self)
