"""``/evolution``: settings refused with 422 naming the field, unknown ids 404, and a real run
(worker in-process) read back as runs, generations, lineage and promoted models, on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest

from stratforge.data.demo import synthesize_into_store
from stratforge.ops.operations import create_operation
from stratforge.ops.worker import Worker
from test_api_support import make_api

LOOSE = {"sqn_min": -1000, "sqn_max": 1000, "profit_factor_min": 0, "profit_factor_max": 1e6,
         "trades_min": 0, "trades_max": 10**9, "weekly_consistency_max": 1e6}
RUN = {"symbol": "MNQ", "timeframe": "1m", "algorithm": "random_forest",
       "hyperparameters": {"n_estimators": 5}, "max_generations": 2, "horizon": 3,
       "thresholds": [0.5, 1.0], "importance_repeats": 1, "importance_rows": 1000,
       "promotion": LOOSE}


@pytest.fixture
def api(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as client:
        yield client


@pytest.mark.parametrize(("body", "field"), [
    ({"prune_fraction": 2}, "prune_fraction"),
    ({"regimes": ["bad"]}, "regimes"),
    ({"algorithm": "magic"}, "algorithm"),
    ({"no_such_setting": 1}, "no_such_setting"),
    ({"symbol": "ZZZ"}, "symbol"),
    ({"thresholds": []}, "thresholds"),
    ({"thresholds": [1.0, 1.0]}, "thresholds"),
    ({"hyperparameters": {"x": 1}}, "hyperparameters"),
    ({"promotion": {"sqn_min": 6, "sqn_max": 5}}, "promotion"),
    ({"train_fraction": 0.7, "validation_fraction": 0.3}, None),
])
def test_bad_settings_answer_422_naming_the_field(api, body, field):
    response = api.post("/evolution/runs", json=body)
    assert response.status_code == 422, response.text
    locations = [tuple(d["loc"]) for d in response.json()["detail"]]
    if field is None:
        assert locations == [("body",)]
    else:
        assert any(field in loc for loc in locations), locations


def test_unknown_ids_answer_404_and_bad_ones_422(api):
    assert api.get("/evolution/runs/op_nope").status_code == 404
    assert api.get(f"/evolution/models/{'0' * 64}/lineage").status_code == 404
    assert api.get("/evolution/models/not-a-fingerprint/lineage").status_code == 422
    other = create_operation(api.db, "sleep", {"seconds": 0}, enqueue=False)
    response = api.get(f"/evolution/runs/{other.id}")
    assert response.status_code == 404 and "not an evolution run" in response.json()["detail"]


def test_a_run_is_read_back_with_generations_lineage_and_promotions(api, home):
    synthesize_into_store("MNQ", days=6, seed=2, kind="realistic", resolution="1m",
                          replace=True, home=home)
    started = api.post("/evolution/runs", json=RUN)
    assert started.status_code == 202, started.text
    run_id = started.json()["operation_id"]
    assert started.json()["grid_points"] == 2
    stats = Worker(api.db, concurrency=2, exit_when_idle=True, poll_interval=0.05,
                   types=["evolution_run", "evolution_simulation"]).run()
    assert stats.failed == 0
    listing = api.get("/evolution/runs").json()
    assert listing["total"] == 1
    item = listing["items"][0]
    assert {k: item[k] for k in ("operation_id", "status", "symbol", "timeframe",
                                 "algorithm")} == {
        "operation_id": run_id, "status": "completed", "symbol": "MNQ", "timeframe": "1m",
        "algorithm": "random_forest"}
    detail = api.get(f"/evolution/runs/{run_id}").json()
    gens = detail["generations"]
    assert item["generations"] == len(gens) >= 1 and detail["stop_reason"]
    assert item["best_sqn"] == max(g["best_sqn"] for g in gens if g["best_sqn"] is not None)
    for g in gens:
        assert g["jobs_done"] == g["jobs_total"] == 2
        assert len(g["top_results"]) >= 1
        assert {"threshold", "z_cutoff", "regime", "sqn", "profit_factor", "trades"} <= set(
            g["top_results"][0])
    last = gens[-1]["model_fingerprint"]
    lineage = api.get(f"/evolution/models/{last}/lineage").json()
    assert lineage["fingerprint"] == last
    assert [a["fingerprint"] for a in lineage["ancestors"]] == [
        g["model_fingerprint"] for g in reversed(gens)]
    assert lineage["ancestors"][-1]["parent_fingerprint"] is None
    promoted = api.get("/evolution/promoted").json()["items"]
    assert item["promoted"] == len(promoted) == sum(g["promoted"] for g in gens) >= 1
    top = promoted[0]
    assert top["run_operation_id"] == run_id and top["algorithm"] == "random_forest"
    assert {"sqn", "profit_factor", "trades", "weekly_consistency"} <= set(top["metrics"])
    assert top["lineage"][0] == top["fingerprint"]
