"""The ATLAS store: build, incremental rebuild, interrupted build and resume, atomic commits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from conftest import random_bars
from stratforge.data import build_atlas, load_bars
from stratforge.data.ingest import write_base_bars
from stratforge.data.resample import BarArrays, resample_bars
from stratforge.data.store import MANIFEST, AtlasStore
from stratforge.errors import DataError
from stratforge.instruments import get_instrument
from stratforge.timeframes import ATLAS_TIMEFRAMES, parse_timeframe

ONE_MINUTE = parse_timeframe("1m")


def _store_bars(home, frame: pd.DataFrame, symbol: str = "MNQ", **kwargs):
    return write_base_bars(AtlasStore.open(symbol, home), BarArrays.from_frame(frame), ONE_MINUTE,
                           **kwargs)


def _file_state(store: AtlasStore) -> dict[str, tuple[int, str]]:
    return {rel: (os.stat(store.root / rel).st_mtime_ns, entry["sha256"])
            for rel, entry in store.manifest["files"].items()}


def test_build_and_load_match_direct_resampling(home):
    bars = random_bars(11, "2024-01-01", "2024-03-15", keep=0.3)
    _store_bars(home, bars)
    report = build_atlas("MNQ")
    assert report.skipped_timeframes == ["1s", "5s", "15s"]
    session = get_instrument("MNQ").session
    for tf in ATLAS_TIMEFRAMES[3:]:
        pd.testing.assert_frame_equal(load_bars("MNQ", tf), resample_bars(bars, tf, session))
    pd.testing.assert_frame_equal(load_bars("MNQ", "1m"), bars)


def test_load_bars_slices_half_open_ranges(home):
    bars = random_bars(12, "2024-01-01", "2024-03-01", keep=0.3)
    _store_bars(home, bars)
    start, end = "2024-01-20 13:00", pd.Timestamp("2024-02-03 09:30", tz="America/New_York")
    got = load_bars("MNQ", "1m", start, end)
    expected = bars[(bars["ts"] >= pd.Timestamp(start, tz="UTC")) & (bars["ts"] < end)]
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    assert len(load_bars("MNQ", "1m", "2030-01-01")) == 0


def test_load_bars_names_what_exists(home):
    with pytest.raises(DataError, match="no store for ES"):
        load_bars("ES", "1m")
    _store_bars(home, random_bars(13, "2024-01-01", "2024-01-10"))
    with pytest.raises(DataError, match=r"no 1h bars \(stored: base 1m; timeframes 1m\).*"
                       r"stratforge data atlas --symbol MNQ"):
        load_bars("MNQ", "1h")


def test_rebuild_touches_only_months_whose_input_changed(home):
    bars = random_bars(14, "2024-01-01", "2024-04-01", keep=0.3)
    early = bars[bars["ts"] < pd.Timestamp("2024-03-01", tz="UTC")]
    _store_bars(home, early)
    build_atlas("MNQ")
    store = AtlasStore.open("MNQ", home)
    before = _file_state(store)
    assert build_atlas("MNQ").months_rebuilt == []          # nothing changed: nothing to do

    _store_bars(home, bars[bars["ts"] >= pd.Timestamp("2024-03-01", tz="UTC")])
    report = build_atlas("MNQ")
    # February output reads March's first week (weekly bars), so it is recomputed too
    assert report.months_rebuilt == ["2024-02", "2024-03"]
    store.reload()
    after = _file_state(store)
    untouched = [rel for rel in before if "/2024-01" in rel or "/2023-12" in rel]
    assert untouched and all(after[rel] == before[rel] for rel in untouched)
    session = get_instrument("MNQ").session
    for tf in ("5m", "1D", "1W"):
        pd.testing.assert_frame_equal(load_bars("MNQ", tf),
                                      resample_bars(bars, parse_timeframe(tf), session))


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from stratforge.data import build_atlas

    def progress(phase, done, total, message=""):
        if done == int(sys.argv[1]):
            os.kill(os.getpid(), signal.SIGKILL)

    build_atlas("MNQ", progress=progress)
""")


def test_killed_build_leaves_store_intact_and_resumes(home, tmp_path):
    bars = random_bars(15, "2024-01-01", "2024-05-20", keep=0.3)
    _store_bars(home, bars)
    store = AtlasStore.open("MNQ", home)
    manifest_before = (store.root / MANIFEST).read_bytes()
    files_before = sorted(p.relative_to(store.root) for p in store.root.rglob("*.parquet")
                          if ".build" not in p.parts)

    env = {**os.environ, "STRATFORGE_HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", KILL_SCRIPT, "3"], env=env, check=False,
                            capture_output=True)
    assert result.returncode == -9, result.stderr.decode()
    assert (store.root / MANIFEST).read_bytes() == manifest_before
    assert sorted(p.relative_to(store.root) for p in store.root.rglob("*.parquet")
                  if ".build" not in p.parts) == files_before

    resumed = build_atlas("MNQ")
    assert resumed.months_resumed == 3
    assert len(resumed.months_rebuilt) == 6  # 2023-12 (first week of Jan) .. 2024-05

    other = tmp_path / "clean"
    _store_bars(other, bars)
    build_atlas("MNQ", home=other)
    store.reload()
    assert store.manifest == AtlasStore.open("MNQ", other).manifest
    assert not (store.root / ".build").exists()


@pytest.mark.parametrize("crash_while", ["staging", "moving"])
def test_crash_during_a_write_never_shows_half_a_change(home, monkeypatch, crash_while):
    first = random_bars(16, "2024-01-01", "2024-02-01")
    later = random_bars(17, "2024-02-01", "2024-04-01")
    _store_bars(home, first)
    calls = {"n": 0}
    real_replace = os.replace

    def crash_on_second(src, dst):
        moving = ".staging" in str(src) and ".staging" not in str(dst)
        if str(dst).endswith(".parquet") and moving == (crash_while == "moving"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        _store_bars(home, later)
    monkeypatch.setattr(os, "replace", real_replace)

    # before the journal: the old store; after it: readers see the committed state without
    # changing the store, and the next writer finishes the commit under the writer lock
    journal = AtlasStore.open("MNQ", home).root / ".journal.json"
    got = load_bars("MNQ", "1m")
    expected = first if crash_while == "staging" else pd.concat([first, later],
                                                                ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)
    assert journal.exists() == (crash_while == "moving")
    _store_bars(home, later, replace=True)      # and the store accepts the next write
    assert not journal.exists()
    pd.testing.assert_frame_equal(load_bars("MNQ", "1m"),
                                  pd.concat([first, later], ignore_index=True))


def test_second_writer_is_refused_while_one_holds_the_lock(home):
    _store_bars(home, random_bars(18, "2024-01-01", "2024-01-05"))
    store = AtlasStore.open("MNQ", home)
    with store.transaction(), pytest.raises(DataError, match="another process is writing"), \
            AtlasStore.open("MNQ", home).transaction():
        pass


@pytest.mark.parametrize(("symbol", "base", "built"), [
    ("EURUSD", "1h", ["4h", "1D", "1W"]),
    ("SPY", "1D", ["1W"]),
])
def test_atlas_builds_only_timeframes_at_or_above_the_base(home, symbol, base, built):
    session = get_instrument(symbol).session
    hourly = random_bars(19, "2024-01-01", "2024-03-10", step_seconds=3600, keep=0.8)
    bars = hourly if base == "1h" else resample_bars(hourly, parse_timeframe("1D"), session)
    write_base_bars(AtlasStore.open(symbol, home), BarArrays.from_frame(bars),
                    parse_timeframe(base))
    report = build_atlas(symbol)
    assert report.timeframes == built
    assert report.skipped_timeframes == [str(t) for t in ATLAS_TIMEFRAMES
                                         if t < parse_timeframe(base)]
    assert [str(t) for t in AtlasStore.open(symbol, home).timeframes()] == [base, *built]
    for tf in built:
        pd.testing.assert_frame_equal(load_bars(symbol, tf),
                                      resample_bars(hourly, parse_timeframe(tf), session))
    finer = "1m" if base == "1h" else "4h"
    with pytest.raises(DataError, match=rf"cannot build {finer} from its {base} base bars.*"
                                        rf"stored: {', '.join([base, *built])}"):
        build_atlas(symbol, [parse_timeframe(finer)])
