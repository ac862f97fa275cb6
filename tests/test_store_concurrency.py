"""Readers and a writer of one store in separate processes: readers never change the store,
never fail, and always see the bars before or after a commit, never a mix."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import random_bars

READERS = 3
SWAPS = 3

READER = textwrap.dedent("""
    import hashlib, sys, time, traceback
    from pathlib import Path
    import numpy as np
    from stratforge.data import load_bars

    home, stop, allowed = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3].split(","))
    reads = 0
    try:
        while not stop.exists():
            frame = load_bars("MNQ", "5m", home=home)
            digest = hashlib.sha256(np.ascontiguousarray(
                frame["ts"].dt.as_unit("ns").array.asi8).tobytes()
                + np.ascontiguousarray(frame.iloc[:, 1:].to_numpy()).tobytes()).hexdigest()
            if digest not in allowed:
                print(f"MIXED READ: {len(frame)} rows, digest {digest}", file=sys.stderr)
                sys.exit(2)
            reads += 1
            time.sleep(0.005)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    print(reads)
""")


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        np.ascontiguousarray(frame["ts"].dt.as_unit("ns").array.asi8).tobytes()
        + np.ascontiguousarray(frame.iloc[:, 1:].to_numpy()).tobytes()).hexdigest()


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    out = frame.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)
    return path


def _ingest(home: Path, path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratforge.cli.main", "--home", str(home),
                           "data", "ingest", str(path), "--symbol", "MNQ", "--replace"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_readers_see_before_or_after_while_ingest_replace_commits(tmp_path):
    home = tmp_path / "home"
    # Two full 5m grids over the same three months: B replaces every bar of A and back.
    states = [random_bars(seed, "2024-01-01", "2024-04-01", step_seconds=300, keep=1.0,
                          drop_days=0) for seed in (1, 2)]
    assert len(states[0]) == len(states[1]) == 91 * 288
    files = [_write_csv(tmp_path / f"{name}.csv", frame)
             for name, frame in zip("ab", states, strict=True)]
    allowed = ",".join(_digest(frame) for frame in states)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    first = _ingest(home, files[0], env)
    assert first.returncode == 0, first.stderr

    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(home), str(stop), allowed],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(READERS)]
    try:
        time.sleep(1.5)  # let the readers start loading
        for swap in range(SWAPS):
            started = time.monotonic()
            result = _ingest(home, files[(swap + 1) % 2], env)
            print(f"ingest {swap + 1}: {time.monotonic() - started:.1f} s")
            assert result.returncode == 0, f"ingest {swap + 1} failed:\n{result.stderr}"
            if any(r.poll() is not None for r in readers):
                break  # a reader failed: its error is reported below
    finally:
        stop.touch()
        outputs = [r.communicate(timeout=60) for r in readers]
    for reader, (out, err) in zip(readers, outputs, strict=True):
        assert reader.returncode == 0, err
        assert int(out.strip()) > 0
    store = home / "atlas" / "MNQ"
    assert not (store / ".journal.json").exists()
    assert not list((store / ".staging").glob("*")) if (store / ".staging").exists() else True


WAITING_WRITER = textwrap.dedent("""
    import sys
    from stratforge.data.ingest import ingest_files
    ingest_files([sys.argv[1]], "MNQ", replace=True, home=sys.argv[2])
""")


def test_a_nested_read_does_not_wait_behind_a_commit_waiting_for_the_outer_read(tmp_path):
    from stratforge.data import load_bars
    from stratforge.data.ingest import ingest_files
    from stratforge.data.store import AtlasStore

    home = tmp_path / "home"
    states = [random_bars(seed, "2024-01-02", "2024-01-09", keep=1.0, drop_days=0)
              for seed in (3, 4)]
    paths = [_write_csv(tmp_path / f"{i}.csv", frame) for i, frame in enumerate(states)]
    ingest_files([paths[0]], "MNQ", home=home)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    store = AtlasStore.open("MNQ", home)
    with store.reading():
        writer = subprocess.Popen([sys.executable, "-c", WAITING_WRITER, str(paths[1]),
                                   str(home)], env=env)
        gate = store.root / ".gate.lock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and writer.poll() is None:
            # wait until the writer holds the gate and waits for the commit lock
            probe = os.open(gate, os.O_RDONLY)
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                break
            finally:
                os.close(probe)
            time.sleep(0.05)
        assert writer.poll() is None, "the writer committed through a held read"
        previous = signal.signal(signal.SIGALRM, _too_slow)
        signal.alarm(20)  # a deadlock fails the test instead of hanging it
        try:
            inner = load_bars("MNQ", "1m", home=home)  # another store object, same folder
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        pd.testing.assert_frame_equal(inner, states[0])
    assert writer.wait(timeout=60) == 0
    pd.testing.assert_frame_equal(load_bars("MNQ", "1m", home=home), states[1])


def _too_slow(signum, frame):
    raise TimeoutError("the nested read waited behind a commit waiting for the outer read")
