"""Issue 17, defect 10: a sweep checkpoint's key does not depend on where the home lies, so a
moved home keeps its checkpoints; it still changes with anything that changes a result."""

from __future__ import annotations

from dataclasses import replace

from stratforge.search.sweep import PairJob, _jobs_key


def _job(home: str) -> PairJob:
    return PairJob(symbol="MNQ", timeframe="5m", home=home,
                   matches_path=f"{home}/runs/run_x/matches/5m.parquet", template_id="t1",
                   n_sets=16, seed=7, space=(("stop_ticks", 4.0, 40.0, "float"),))


def test_moving_the_home_keeps_the_checkpoint_key():
    here = [_job("/data/old-home"), replace(_job("/data/old-home"), template_id="t2")]
    moved = [replace(j, home="/mnt/new-home",
                     matches_path=j.matches_path.replace("/data/old-home", "/mnt/new-home"))
             for j in here]
    assert _jobs_key(here, None) == _jobs_key(moved, None)


def test_the_key_still_changes_with_what_changes_a_result():
    base = [_job("/h")]
    assert _jobs_key(base, None) != _jobs_key([replace(base[0], seed=8)], None)
    assert _jobs_key(base, None) != _jobs_key([replace(base[0], n_sets=17)], None)
    other_matches = replace(base[0], matches_path="/h/runs/run_y/matches/5m.parquet")
    assert _jobs_key(base, None) != _jobs_key([other_matches], None)
    assert _jobs_key(base, None) != _jobs_key(base, {"phase": "refine"})
