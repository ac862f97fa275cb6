"""A worker stops on SIGTERM however many arrive at once.

`stratforge serve` gives its workers a death signal (SIGTERM) and also sends them SIGTERM when
it stops, so two signals often land together. The handler used to call ``Event.set()``, which
takes a lock: a second signal arriving inside the first handler re-entered it and waited
forever on that lock (a worker left running for good under PID 1). The handler now only sets
a flag that the main thread acts on."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest


def _registered(database) -> bool:
    """Whether a worker has registered in the home's database (it then runs its loop)."""
    if not database.exists():
        return False
    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("select count(*) from workers").fetchone()[0] > 0
    except sqlite3.Error:  # still migrating
        return False


@pytest.mark.parametrize("burst", [1, 200])
def test_a_worker_exits_on_a_burst_of_sigterms(tmp_path, burst):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "STRATFORGE_DATABASE_URL"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "stratforge.cli.main", "--home", str(home), "worker",
         "--concurrency", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 60
        while not _registered(home / "stratforge.db"):  # in its run loop, handlers set
            assert worker.poll() is None and time.monotonic() < deadline, \
                worker.communicate()
            time.sleep(0.1)
        time.sleep(0.5)
        for _ in range(burst):
            os.kill(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop within 20 s of {burst} SIGTERM(s)")
        assert worker.returncode == 0, worker.communicate()
    finally:
        if worker.poll() is None:
            worker.kill()


def test_the_signal_handler_takes_no_lock(tmp_path):
    # a handler runs between two bytecodes of the main thread, possibly inside Event.set or
    # while the running jobs' lock is held: if it took either lock it would wait forever.
    # Hold both, then call the installed handler from another thread: it must return.
    from stratforge.ops.db import Database
    from stratforge.ops.worker import Worker

    worker = Worker(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    returned = threading.Event()
    with worker._stop._cond, worker._lock:  # what a signal may interrupt
        caller = threading.Thread(
            target=lambda: (worker._on_signal(signal.SIGTERM, None), returned.set()),
            daemon=True)
        caller.start()
        assert returned.wait(2.0), "the signal handler waited for a lock"
    assert worker._signalled and not worker._stop.is_set()  # the main thread stops it
