"""The routes the dashboard draws from: a research run's ANOVA, sweep heatmap, Thompson
allocation, tiers, curves and templates (checked against the run's artifacts, recomputed
here with pandas); workers and queue; training days; the static files served without the
token while ``/api/v1`` still needs it."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research_helpers import SMALL, make_market
from stratforge.api.research_views import heatmap
from stratforge.config import configure
from stratforge.instruments import get_instrument
from stratforge.ops.operations import create_operation
from stratforge.ops.worker import Worker
from test_api_support import API, make_api

TOKEN = "dash-token"
RESEARCH = {**SMALL, "timeframes": "5m,15m", "executor": "serial"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One research run and one training run, run by a real worker; the app on them."""
    folder = tmp_path_factory.mktemp("dash_api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRATFORGE_HOME", str(folder / "home"))
        configure()
        make_market(folder / "home", "realistic", 20, seed=11)
        with make_api(f"sqlite:///{folder / 'home' / 'stratforge.db'}", patch) as api:
            research = api.post("/research/runs", json=RESEARCH).json()["id"]
            training = api.post("/training/runs", json={
                "templates": "warmup", "warmup_days": 10, "iterations": 12,
                "max_days": 2}).json()["id"]
            Worker(api.db, exit_when_idle=True).run()
            done = api.get(f"/operations/{research}").json()
            assert done["status"] == "completed", done["error"]  # training: its own test
            run_id = api.get(f"/operations/{research}").json()["result_summary"]["run_id"]
            yield api, folder / "home" / "runs" / run_id, research, training
        configure()


def test_anova_refinement_and_tiers_are_the_artifacts(finished):
    api, folder, op_id, _ = finished
    anova = api.get(f"/research/runs/{op_id}/anova").json()
    stored = json.loads((folder / "anova.json").read_text())
    assert [r["factor"] for r in anova["multi"]] == [r["factor"] for r in stored["multi"]]
    history = api.get(f"/research/runs/{folder.name}/refinement").json()
    assert history == json.loads((folder / "refine" / "history.json").read_text())
    phases = api.get(f"/research/runs/{op_id}/phases").json()
    state = json.loads((folder / "state.json").read_text())["phases"]
    assert phases["done"] == ["data", "discovery", "optimize", "matching", "sweep", "anova",
                              "refine", "validation", "report"]  # in run order
    assert sorted(phases["done"]) == sorted(state)
    assert phases["seconds"] == {p: state[p]["seconds"] for p in state}
    tiers = api.get(f"/research/runs/{folder.name}/tiers").json()
    frame = pd.read_parquet(folder / "validation.parquet")
    assert tiers["count"] == len(frame) == len(tiers["strategies"])
    assert sorted(s["strategy_id"] for s in tiers["strategies"]) == sorted(frame["strategy_id"])
    assert [s["tier"] for s in tiers["strategies"]] == sorted(frame["tier"].tolist())
    assert all(isinstance(s["params"], dict) for s in tiers["strategies"])


def _reference_grid(rows: pd.DataFrame, column: str) -> tuple[np.ndarray, int]:
    values = rows[column].to_numpy(float)
    n = min(6, len(np.unique(values)))
    if n <= 1:
        return np.zeros(len(values), int), 1
    edges = np.linspace(values.min(), values.max(), n + 1)
    return np.clip(np.digitize(values, edges) - 1, 0, n - 1), n


def test_sweep_heatmap_matches_a_pandas_recomputation(finished):
    api, folder, _, _ = finished
    rows = pd.concat([pd.read_parquet(folder / "sweep" / "summaries.parquet"),
                      pd.read_parquet(folder / "refine" / "trials.parquet")], ignore_index=True)
    sweep = api.get(f"/research/runs/{folder.name}/sweep").json()
    assert sweep["total_rows"] == len(rows)
    traded = rows[rows["trades"] > 0]
    assert {(c["template_id"], c["timeframe"]) for c in sweep["combos"]} == \
        set(map(tuple, traded[["template_id", "timeframe"]].drop_duplicates().to_numpy()))
    means = [c["mean_pnl_per_trade"] for c in sweep["combos"]]
    assert means == sorted(means, reverse=True)
    for combo in sweep["combos"][:3]:
        t, tf = combo["template_id"], combo["timeframe"]
        got = api.get(f"/research/runs/{folder.name}/sweep",
                      params={"template_id": t, "timeframe": tf}).json()["heatmap"]
        sub = traded[(traded["template_id"] == t) & (traded["timeframe"] == tf)]
        stop, n_stop = _reference_grid(sub, "stop_ticks")
        target, n_target = _reference_grid(sub, "target_ticks")
        assert got["rows"] == len(sub) == combo["rows"]
        assert len(got["stop_labels"]) == n_stop and len(got["target_labels"]) == n_target
        expected = sub.assign(s=stop, g=target).groupby(["g", "s"])["pnl_per_trade"].mean()
        for (g, s), mean in expected.items():
            assert got["z"][g][s] == pytest.approx(mean)
        assert sum(map(sum, got["counts"])) == len(sub)
    missing = api.get(f"/research/runs/{folder.name}/sweep",
                      params={"template_id": "T9999", "timeframe": "5m"})
    assert missing.status_code == 404
    # with no combo named, the heatmap opens on the first validated strategy of the tier
    # table (best tier, then in-sample Sharpe per trade) that the sweep traded
    validation = pd.read_parquet(folder / "validation.parquet")
    swept = set(map(tuple, traded[["template_id", "timeframe"]].drop_duplicates().to_numpy()))
    ordered = validation.sort_values(["tier", "is_sharpe_per_trade", "strategy_id"],
                                     ascending=[True, False, True], kind="stable")
    first = next((r.template_id, r.timeframe) for r in ordered.itertuples()
                 if (r.template_id, r.timeframe) in swept)
    opened = sweep["heatmap"]
    assert (opened["template_id"], opened["timeframe"]) == first


def test_curves_and_templates_follow_the_files(finished):
    api, folder, _, _ = finished
    curves = api.get(f"/research/runs/{folder.name}/curves").json()
    frame = pd.read_parquet(folder / "curves.parquet")
    assert sum(len(s["pnl"]) for s in curves["strategies"]) == len(frame)
    for s in curves["strategies"]:
        pnl = frame[frame["strategy_id"] == s["strategy_id"]]["pnl"].to_numpy()
        assert s["equity"] == pytest.approx(np.cumsum(pnl).tolist())
    library = pd.read_parquet(folder / "library" / "templates.parquet")
    templates = api.get(f"/research/runs/{folder.name}/templates").json()
    assert templates["count"] == len(library)
    assert sorted(t["template_id"] for t in templates["templates"]) == \
        sorted(library["template_id"])
    assert api.get(f"/research/runs/{folder.name}/templates/NOPE").status_code == 404


def test_a_templates_trades_sit_on_its_matches_and_candles(finished):
    api, folder, _, _ = finished
    validated = pd.read_parquet(folder / "validation.parquet").iloc[0]
    t, tf = validated["template_id"], validated["timeframe"]
    got = api.get(f"/research/runs/{folder.name}/templates/{t}",
                  params={"timeframe": tf}).json()
    assert got["params"] == json.loads(validated["params"])
    assert got["params_source"] == "validated"
    matches = pd.read_parquet(folder / "matches" / f"{tf}.parquet")
    matches = matches[matches["template_id"] == t]
    assert got["matches"] == len(matches) and got["trades"]
    stamps = set(pd.to_datetime(matches["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    side = dict(zip(pd.to_datetime(matches["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    matches["side"], strict=True))
    candles = set(got["candles"]["ts"])
    for trade in got["trades"]:  # fill "close": the entry is the signal bar's close
        assert trade["entry_time"] in stamps and trade["side"] == side[trade["entry_time"]]
        assert trade["entry_time"] in candles and trade["exit_time"] in candles
        assert trade["exit_time"] >= trade["entry_time"]
    assert len(got["trades"]) == validated["is_trades"] + validated["oos_trades"]


def test_training_days_and_platform_routes(finished):
    api, _, _, training = finished
    op = api.get(f"/operations/{training}").json()
    assert op["status"] == "completed", op["error"]
    days = api.get(f"/training/runs/{training}/days").json()
    log = api.get(f"/training/runs/{training}/log").json()
    assert [d["day"] for d in days["days"]] == [d["day"] for d in log["days"]]
    assert [d["pnl"] for d in days["days"]] == pytest.approx([d["pnl"] for d in log["days"]])
    assert days["strongest_states"] == log["strongest_states"] and days["status"] == "completed"
    assert days["strongest_from"] == "log"
    # without the log (as while the run goes) the states come from the checkpoint: the
    # finished checkpoint gives what the trainer wrote into the log
    folder = api.get(f"/training/runs/{training}").json()["folder"]
    log_path = Path(folder) / "training_log.json"
    kept = log_path.read_bytes()
    log_path.unlink()
    try:
        live = api.get(f"/training/runs/{training}/days").json()
    finally:
        log_path.write_bytes(kept)
    assert live["strongest_from"] == "checkpoint"
    assert live["strongest_states"] == pytest.approx(log["strongest_states"])
    workers = api.get("/workers").json()["workers"]
    assert len(workers) == 1 and workers[0]["status"] == "stopped"
    assert workers[0]["jobs_done"] >= 2 and workers[0]["heartbeat_age_seconds"] >= 0
    queue = api.get("/queue").json()
    assert queue["depth"] == 0 and queue["jobs"]["completed"] >= 2


def _price_format(block: dict) -> dict:
    return {k: block[k] for k in ("symbol", "currency", "tick_size", "point_value",
                                  "price_decimals")}


def test_the_market_route_and_every_view_state_the_runs_market(finished):
    api, folder, op_id, _ = finished
    block = json.loads((folder / "state.json").read_text())["phases"]["data"]["market"]
    market = api.get(f"/research/runs/{op_id}/market").json()
    assert market["source"] == "run" and market["symbol"] == "MNQ"
    assert (market["tick_size"], market["price_decimals"], market["currency"]) == \
        (0.25, 2, "USD")
    cost = market.pop("cost_model")
    assert cost.pop("per_fill_currency") == pytest.approx(
        (cost["per_fill_price"] * 2.0 + cost["commission"]) * cost["quantity"])  # 2 USD/pt
    assert cost == pytest.approx({k: v for k, v in block["cost_model"].items()
                                  if k != "per_fill_currency"})
    assert market["session"] == block["session"] and market["timeframes"] == ["5m", "15m"]
    for tf, frame in block["per_timeframe"].items():
        got = market["per_timeframe"][tf]
        assert "space_rows" not in got and got["resolved_space"] == frame["resolved_space"]
        assert got["yardstick_price"] == pytest.approx(frame["yardstick_ticks"] * 0.25)
    expected = _price_format(block)
    template = api.get(f"/research/runs/{folder.name}/templates").json()["templates"][0]
    for route in ("sweep", "tiers", "curves", "templates",
                  f"templates/{template['template_id']}"):
        assert api.get(f"/research/runs/{folder.name}/{route}").json()["market"] == expected


def _edges(labels: list[str]) -> list[tuple[str, str]]:
    return [tuple(label.split("–")) for label in labels]


def test_heatmap_bins_in_price_units_have_the_ticks_decimals(finished):
    api, folder, _, _ = finished
    rows = pd.concat([pd.read_parquet(folder / "sweep" / "summaries.parquet"),
                      pd.read_parquet(folder / "refine" / "trials.parquet")], ignore_index=True)
    mnq = get_instrument("MNQ")
    for combo in api.get(f"/research/runs/{folder.name}/sweep").json()["combos"][:3]:
        t, tf = combo["template_id"], combo["timeframe"]
        grid = api.get(f"/research/runs/{folder.name}/sweep",
                       params={"template_id": t, "timeframe": tf}).json()["heatmap"]
        sub = rows[(rows["template_id"] == t) & (rows["timeframe"] == tf) & (rows["trades"] > 0)]
        for axis in ("stop", "target"):
            labels = grid[f"{axis}_price_labels"]
            assert len(labels) == len(grid[f"{axis}_labels"])
            ticks = sub[f"{axis}_ticks"]
            if len(labels) == 1:
                assert labels == [mnq.format_price(ticks.min() * 0.25)]
                continue
            edges = _edges(labels)
            assert edges[0][0] == mnq.format_price(ticks.min() * 0.25)
            assert edges[-1][1] == mnq.format_price(ticks.max() * 0.25)
            assert all(a[1] == b[0] for a, b in pairwise(edges))
            assert all(len(x.split(".")[1]) == 2 for pair in edges for x in pair)


def test_fx_distances_are_written_with_five_decimals():
    # "trail widen points 0.0 for 0.00227": EURUSD distances of 67 to 402 ticks
    rows = pd.DataFrame({"stop_ticks": [67.0, 227.0, 402.0], "target_ticks": [134.0] * 3,
                         "trades": [5, 5, 5], "pnl_per_trade": [1.0, 2.0, 3.0]})
    grid = heatmap(rows, 0.00001, get_instrument("EURUSD").price_decimals)
    assert grid["target_price_labels"] == ["0.00134"]
    edges = _edges(grid["stop_price_labels"])
    assert edges[0][0] == "0.00067" and edges[-1][1] == "0.00402"
    assert len(edges) == 3 and edges[1] == ("0.00179", "0.00290")  # 67 + 111.67 x 1, x 2


def test_market_of_a_run_before_its_data_phase_and_of_training_runs(home, monkeypatch):
    run = home / "runs" / "run_20260101_000000_fx"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"symbol": "EURUSD"}}))
    with make_api(f"sqlite:///{home / 'stratforge.db'}", monkeypatch) as api:
        market = api.get(f"/research/runs/{run.name}/market").json()
        assert market["source"] == "instrument" and market["cost_model"] is None
        assert _price_format(market) == {"symbol": "EURUSD", "currency": "USD",
                                         "tick_size": 0.00001, "point_value": 100_000.0,
                                         "price_decimals": 5}
        for symbol, decimals in (("EURUSD", 5), ("MNQ", 2), (None, 2)):
            op = create_operation(api.db, "training_run", {"symbol": symbol} if symbol else {})
            got = api.get(f"/training/runs/{op.id}/days").json()
            assert got["days"] == [] and got["market"]["price_decimals"] == decimals
            assert got["market"]["symbol"] == (symbol or "MNQ")
            assert got["market"]["currency"] == "USD"


def test_workers_and_queue_on_each_backend(home, database_url, monkeypatch):
    with make_api(database_url, monkeypatch) as api:
        assert api.get("/workers").json() == {"workers": []}
        for _ in range(3):
            create_operation(api.db, "sleep", {"seconds": 1})
        queue = api.get("/queue").json()
        assert queue["depth"] == 3 and queue["jobs"]["queued"] == 3
        assert queue["jobs"]["running"] == 0


def test_static_files_need_no_token_and_the_api_still_does(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch, token=TOKEN) as api:
        client = api.client
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
        index = client.get("/ui/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert client.get("/ui/js/app.js").status_code == 200
        plotly = client.get("/ui/vendor/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        assert client.get("/ui/no-such-file.js").status_code == 404
        assert client.get("/ui/../api/v1/operations").status_code in (401, 404)
        assert client.get("/ui/%2e%2e/api/v1/operations").status_code in (401, 404)
        for path in ("/workers", "/queue", "/operations"):
            assert api.get(path).status_code == 401
            assert api.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert api.get("/health").json()["auth"] is True
        schema = api.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert not any(p == "/" or p.startswith("/ui") for p in schema["paths"])
    with make_api(f"sqlite:///{tmp_path / 'b.db'}", monkeypatch) as api:
        assert api.get("/health").json()["auth"] is False
        assert api.client.get(f"{API}/workers").status_code == 200
