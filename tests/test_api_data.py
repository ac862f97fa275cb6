"""``/data`` and ``/templates``: the ATLAS symbols, timeframes and per-symbol summary, and a
symbol's template library, compared with what the store and the library files hold."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest

from research_helpers import make_market
from stratforge.data import atlas_info
from stratforge.data.atlas import build_atlas
from stratforge.discovery.library import FeatureScaler, Template, TemplateLibrary, library_folder
from stratforge.features.vectors import FEATURE_NAMES
from stratforge.timeframes import ATLAS_TIMEFRAMES
from test_api_support import make_api


@pytest.fixture
def api(home, tmp_path, monkeypatch):
    with make_api(f"sqlite:///{tmp_path / 'data.db'}", monkeypatch) as client:
        yield client


def test_symbols_timeframes_and_atlas_info(api, home):
    assert api.get("/data/symbols").json() == {"symbols": []}
    missing = api.get("/data/symbols/MNQ")
    assert missing.status_code == 404 and "stratforge data ingest" in missing.json()["detail"]
    make_market(home, "realistic", 6, seed=3)
    build_atlas("MNQ", home=home)
    assert api.get("/data/symbols").json() == {"symbols": ["MNQ"]}
    timeframes = api.get("/data/timeframes").json()["timeframes"]
    assert [t["name"] for t in timeframes] == [str(tf) for tf in ATLAS_TIMEFRAMES]
    assert timeframes[0] == {"name": "1s", "seconds": 1, "intraday": True}
    assert timeframes[-1] == {"name": "1W", "seconds": 7 * 86_400, "intraday": False}
    info = api.get("/data/symbols/mnq").json()
    assert info["symbol"] == "MNQ"
    assert info["timeframes"] == [asdict(row) for row in atlas_info("MNQ", home)]
    assert {"1m", "5m", "1h"} <= {row["timeframe"] for row in info["timeframes"]}
    assert api.get("/data/symbols/M%20Q").status_code == 422
    assert api.get("/data/symbols/ES").status_code == 404


def _library() -> TemplateLibrary:
    n = len(FEATURE_NAMES)
    templates = [
        Template("t_000", ["5m", "15m"], [0.1 * i for i in range(n)], [1.0 + i for i in range(n)],
                 2, ["p1", "p2"], -1, oracle_win_rate=0.6, mfe_percentiles=[1.0, 2.0, 3.0],
                 params={"stop_ticks": 8}),
        Template("t_001", ["5m"], [0.0] * n, [2.0] * n, 1, ["p3"], 1, parent_id="t_000"),
    ]
    scaler = FeatureScaler([0.0] * n, [1.0] * n, n_fit=3)
    return TemplateLibrary(templates, {"5m": scaler, "15m": scaler},
                           {"symbol": "MNQ", "hierarchy": ["15m", "5m"]})


def test_the_template_library_of_a_symbol(api, home):
    missing = api.get("/templates/MNQ")
    assert missing.status_code == 404 and "stratforge discover" in missing.json()["detail"]
    library = _library()
    folder = library.save(library_folder("MNQ", home))
    body = api.get("/templates/mnq").json()
    assert body["symbol"] == "MNQ" and body["folder"] == str(folder)
    assert body["feature_names"] == list(FEATURE_NAMES) and body["count"] == 2
    assert body["timeframes"] == ["15m", "5m"] and body["metadata"] == library.metadata
    first, second = body["templates"]
    expected = asdict(library.get("t_000"))
    assert first == {**expected, "member_ids": None, "oracle_direction_share": None,
                     "mae_percentiles": [None] * 3, "long_share": None,
                     "physics_variance": None}
    assert math.isnan(expected["long_share"])  # NaN statistics come back as null
    assert second["parent_id"] == "t_000" and second["direction"] == 1
    with_members = api.get("/templates/MNQ", params={"members": True}).json()
    assert [t["member_ids"] for t in with_members["templates"]] == [["p1", "p2"], ["p3"]]


def test_a_damaged_library_is_422_not_500(api, home):
    folder = _library().save(library_folder("MNQ", home))
    (folder / "templates.parquet").write_bytes(b"not parquet")
    response = api.get("/templates/MNQ")
    assert response.status_code == 422 and "run discovery again" in response.json()["detail"]
