"""Run locks (core/lock) with real processes, and the app's training state (app/job) as plain logic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from resnet_tui.app import job as job_module
from resnet_tui.app.job import TrainingJob, exit_code_for
from resnet_tui.core.errors import UserError
from resnet_tui.core.lock import RunLock, holder


def wait_for_exit(exits: list[int], timeout: float = 10.0) -> None:
    """Until hard_exit has been called (by the exit timer, in its own thread), then a grace period more:
    a second call (a timer on top of an immediate exit) would show in `exits` too."""
    deadline = time.monotonic() + timeout
    while not exits and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(job_module.EXIT_GRACE_SECONDS + 0.3)


@pytest.fixture
def short_grace(monkeypatch):
    """The exit timer's grace period, shortened: the tests are about what ends the process, not how long it waits."""
    monkeypatch.setattr(job_module, "EXIT_GRACE_SECONDS", 0.2)


def hold_lock_in_child(run_dir) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from resnet_tui.core.lock import RunLock
        lock = RunLock({str(run_dir)!r})
        lock.acquire()
        print("held", flush=True)
        time.sleep(120)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_held_lock_names_its_holder_and_refuses_a_second_one(tmp_path):
    child = hold_lock_in_child(tmp_path)
    try:
        who = holder(tmp_path)
        assert who is not None and who.pid == child.pid and who.here
        with pytest.raises(UserError, match=f"is being trained by pid {child.pid} on host"):
            RunLock(tmp_path).acquire()
    finally:
        child.kill()
        child.wait()


def test_a_sigkilled_holder_frees_the_lock_at_once(tmp_path):
    child = hold_lock_in_child(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert holder(tmp_path) is None  # the file is still there, naming the dead pid; the OS lock is not
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert holder(tmp_path).pid == os.getpid()
    finally:
        lock.release()
    assert holder(tmp_path) is None


def test_a_filesystem_without_file_locks_trains_with_the_lock_unenforced_and_not_as_busy(tmp_path, monkeypatch):
    """NFS without locking or Lustre without -o flock answer flock with ENOLCK: that is not another holder."""
    import errno

    from resnet_tui.core import lock as lock_module

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(lock_module.fcntl, "flock", no_locks)
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert lock.held and lock.unenforced == os.strerror(errno.ENOLCK)
        assert holder(tmp_path) is None  # nobody is known to hold it: a live run cannot be told from a dead one
        second = RunLock(tmp_path)
        second.acquire()  # not refused as busy (nothing can be enforced here; the trainer says so)
        second.release()
    finally:
        lock.release()


def test_no_lock_file_means_nobody_trains(tmp_path):
    assert holder(tmp_path) is None
    assert holder(tmp_path / "missing") is None


def test_a_double_start_is_one_start_and_a_key_stops_only_a_running_run():
    job = TrainingJob(hard_exit=lambda code: None)
    assert job.begin("continue") is True
    assert job.begin("continue") is False  # the second s of a double tap
    assert job.request_stop() is False  # s while the data loads: ignored
    assert not job.should_stop()
    job.started()
    assert job.request_stop() is True and job.should_stop()
    assert job.request_stop() is False  # already stopping
    job.ended()
    assert job.begin("continue") is True and not job.should_stop()


def test_a_quit_or_a_signal_stops_a_starting_run():
    job = TrainingJob(hard_exit=lambda code: None)
    job.begin("continue")
    assert job.request_stop(force=True) and job.should_stop()


def test_hangup_detaches_a_run_and_the_process_ends_with_the_runs_status(short_grace):
    exits: list[int] = []
    job = TrainingJob(hard_exit=exits.append)
    job.begin("continue")
    job.started()
    job.on_signal(signal.SIGHUP, quit_ui=lambda code: pytest.fail("the UI is not closed while the run goes on"))
    assert job.detached and not job.should_stop()  # training goes on
    assert job.run_ended("finished") == 0
    wait_for_exit(exits)
    assert exits == [0]


def test_hangup_with_on_hangup_stop_and_sigterm_stop_the_run_and_exit_with_the_signal():
    for sig, on_hangup in ((signal.SIGHUP, "stop"), (signal.SIGTERM, "continue")):
        job = TrainingJob(hard_exit=lambda code: None)
        job.begin(on_hangup)
        job.started()
        job.on_signal(sig, quit_ui=lambda code: None)
        assert job.should_stop()
        assert job.run_ended("interrupted") == 128 + sig


def test_a_signal_with_no_run_closes_the_ui_and_ends_the_process_anyway(short_grace):
    closed: list[int] = []
    exits: list[int] = []
    job = TrainingJob(hard_exit=exits.append)
    job.on_signal(signal.SIGTERM, quit_ui=closed.append)
    assert closed == [143]
    wait_for_exit(exits)
    assert exits == [143]


def test_exit_codes_follow_the_headless_cli():
    assert [exit_code_for(s) for s in ("finished", "interrupted", "diverged", "failed", None)] == [0, 130, 1, 1, 1]
