"""Errors a user can cause. Front ends show their message on one line (CLI: exit code 2), never a traceback."""


class UserError(Exception):
    """Bad input: a flag, config field, form field or file. The message names the field, the value and what is allowed."""

    exit_code = 2


class PeerRefused(UserError):
    """A rank of a run on several processes stops because another rank refused to start (that one says why)."""

    quiet = True  # the CLI prints nothing for it: the other rank's line is the one error


class TrainingFailed(Exception):
    """Training stopped on its own (diverged loss, out of memory). The message says what to change."""

    exit_code = 1
