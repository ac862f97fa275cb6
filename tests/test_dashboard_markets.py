"""Numbers people can read, in a real browser, on an EURUSD-like market (tick 0.00001, price
about 1.08, hourly bars of the FX 24x5 week): the CSV is written here, ingested with
``stratforge data ingest``, the ATLAS built and ``stratforge run --quick --symbol EURUSD``
run in the test's home; then ``stratforge serve`` and Debian's chromium under Playwright.

The research run's page shows the market block (instrument, session, cost model per fill and
per round trip, per timeframe yardstick and stop/target ranges in price units) with the tick's
5 decimals, every PnL names its currency, and the template replay writes entry and exit prices
with 5 decimals. The MNQ-like market (tick 0.25, 2 decimals) is checked by
test_dashboard_browser.py. Screenshots go to the test artefacts.
"""

from __future__ import annotations

import json
import re

import pytest

from dashboard_helpers import (
    Console,
    artifacts_folder,
    browser_problem,
    chromium,
    serve,
    stratforge_cli,
    write_fx_hourly_csv,
)
from db_helpers import require_service
from stratforge.instruments import get_instrument

pytestmark = pytest.mark.slow
READY = "#page[data-state=ready]"
BAD_TEXT = re.compile(r"\b(undefined|NaN|null)\b")
ZERO_PRICE = re.compile(r"(?<![\d.,])0\.00(?![\d])")
"""A price or distance written with two decimals as zero ("0.00"), the FX bug."""
EURUSD = get_instrument("EURUSD")


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    """A home with a finished quick EURUSD research run, and the server on it."""
    problem = browser_problem()
    if problem:
        require_service(problem)
    folder = tmp_path_factory.mktemp("fx_dashboard")
    home = folder / "home"
    csv = write_fx_hourly_csv(folder / "eurusd_1h.csv")
    stratforge_cli(home, "data", "ingest", str(csv), "--symbol", "EURUSD")
    stratforge_cli(home, "data", "atlas", "--symbol", "EURUSD")
    stratforge_cli(home, "run", "--quick", "--symbol", "EURUSD", timeout=600)
    (run,) = sorted((home / "runs").iterdir())
    with serve(home, workers=0) as server:
        yield server, run


@pytest.fixture(scope="module")
def browser(fx):
    """One headless chromium for the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, fx):
    """A page of a fresh context (1440 px); fails on console errors or bad text."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = context.new_page()
    console = Console()
    console.watch(opened)
    yield opened
    text = _page_text(opened)
    context.close()
    assert console.errors == []
    assert not BAD_TEXT.search(text), BAD_TEXT.findall(text)


def _page_text(page) -> str:
    return page.evaluate("""() => { const copy = document.getElementById('page').cloneNode(true);
        copy.querySelectorAll('pre').forEach((p) => p.remove()); return copy.innerText; }""")


def _open(page, server, route: str) -> None:
    page.goto(f"{server.url}/ui/#/{route}")
    page.wait_for_selector(READY, timeout=30_000)


def _shot(page, name: str) -> None:
    path = artifacts_folder() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def _cells(page, selector: str) -> list[list[str]]:
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel + ' tbody tr')]
        .map((tr) => [...tr.children].map((td) => td.innerText))""", selector)


def _headers(page, selector: str) -> list[str]:
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel + ' thead th')]
        .map((th) => th.innerText)""", selector)


def test_the_research_run_shows_the_market_with_five_decimals(fx, page):
    server, run = fx
    summary = json.loads((run / "summary.json").read_text())
    market = summary["market"]
    assert market["symbol"] == "EURUSD" and market["price_decimals"] == 5
    _open(page, server, f"research/{run.name}")
    page.wait_for_selector("#run-results[data-state=ready]", timeout=60_000)
    page.wait_for_selector("#market-panel")
    panel = page.inner_text("#market-panel")
    cost = market["cost_model"]
    price = EURUSD.format_price
    assert "EURUSD" in panel and market["session"] in panel
    assert f"Tick size\n{price(0.00001)}" in panel or "0.00001" in panel
    per_fill = (cost["per_fill_price"] * 100_000 + cost["commission"]) * cost["quantity"]
    assert f"{price(cost['per_fill_price'])} price units = {per_fill:,.2f} USD" in panel
    assert (f"{price(cost['round_trip_price'])} price units = "
            f"{cost['round_trip_currency']:,.2f} USD") in panel
    assert cost["description"] in panel
    rows = {r[0]: r for r in _cells(page, "#market-timeframes")}
    headers = _headers(page, "#market-timeframes")
    assert sorted(rows) == sorted(market["per_timeframe"])
    for tf, frame in market["per_timeframe"].items():
        row = dict(zip(headers, rows[tf], strict=True))
        assert row["Yardstick (median true range)"].startswith(price(frame["yardstick_price"]))
        stop = frame["resolved_space"]["stop_ticks"]
        assert row["Stop"] == f"{price(stop['low_price'])}–{price(stop['high_price'])}"
        target = frame["resolved_space"]["target_ticks"]
        assert row["Target"] == f"{price(target['low_price'])}–{price(target['high_price'])}"
    assert not ZERO_PRICE.search(panel), ZERO_PRICE.findall(panel)
    # every PnL names its currency; parameters in price units with 5 decimals
    tiers = _headers(page, "#tiers-table")
    assert "IS PnL (USD)" in tiers and "OOS PnL (USD)" in tiers
    validation = server.api("GET", f"/research/runs/{run.name}/tiers").json()["strategies"]
    column = tiers.index("Parameters (price units)")
    params = [r[column] for r in _cells(page, "#tiers-table")]
    hints = page.evaluate(f"""() => [...document.querySelectorAll(
        '#tiers-table tbody tr td:nth-child({column + 1}) span')].map((s) => s.title)""")
    for strategy, text, hint in zip(validation, params, hints, strict=True):
        stop = strategy["params"]["stop_ticks"]
        assert text.startswith(f"stop {price(stop * 0.00001)}, target ")
        assert f"widen at {price(strategy['params']['trail_widen_points'])}" in text
        assert f"stop {price(stop * 0.00001)} ({stop:,.0f} ticks)" in hint
    assert not any(ZERO_PRICE.search(text) for text in params + hints), params
    layout = "(id) => document.getElementById(id).layout"
    assert page.evaluate(layout, "chart-equity")["yaxis"]["title"]["text"] == \
        "cumulative PnL (USD)"
    heat = page.evaluate("(id) => document.getElementById(id).data[0]", "chart-heatmap")
    sweep = server.api("GET", f"/research/runs/{run.name}/sweep").json()["heatmap"]
    assert heat["x"] == sweep["stop_price_labels"] and heat["y"] == sweep["target_price_labels"]
    assert all(re.fullmatch(r"\d\.\d{5}(–\d\.\d{5})?", label) for label in heat["x"])
    assert page.evaluate(layout, "chart-heatmap")["xaxis"]["title"]["text"] == \
        "stop (price units)"
    _shot(page, "research-run-eurusd")


def test_the_template_replay_writes_prices_with_five_decimals(fx, page):
    server, run = fx
    _open(page, server, f"templates/{run.name}")
    templates = server.api("GET", f"/research/runs/{run.name}/templates").json()
    assert templates["market"]["price_decimals"] == 5
    # the z-momentum chart: clipped as the documented rule says (format.js robustTop)
    chart = page.evaluate("(id) => { const d = document.getElementById(id); return "
                          "{y: d.data.flatMap((t) => t.y), range: d.layout.yaxis.range, "
                          "clipped: d.dataset.clipped}; }", "chart-templates")
    values = sorted(t["abs_momentum_strength"] for t in templates["templates"])
    q = values[int((len(values) - 1) * 0.9)]
    if len(values) >= 5 and values[-1] > 3 * q > 0:
        top = 1.25 * q
        assert int(chart["clipped"]) == sum(v > top for v in values) >= 1
        assert max(chart["y"]) == pytest.approx(top) and chart["range"][1] < values[-1]
        assert "drawn as open triangles" in page.inner_text("#templates-clip-note")
    else:
        assert chart["clipped"] == "0" and chart["range"][1] >= values[-1]
    headers = _headers(page, "#templates-table")
    assert "Best IS PnL (USD)" in headers and "Median MAE (price)" in headers
    for row in _cells(page, "#templates-table"):
        mae = dict(zip(headers, row, strict=True))["Median MAE (price)"]
        assert re.fullmatch(r"\d\.\d{5}", mae), mae
    validated = server.api("GET", f"/research/runs/{run.name}/tiers").json()["strategies"][0]
    page.click(f"#templates-table tr[data-key='{validated['template_id']}']")
    page.wait_for_selector("#trades-table")
    page.wait_for_function("document.getElementById('chart-trades')?.data?.length === 3")
    detail = server.api("GET", f"/research/runs/{run.name}/templates/"
                               f"{validated['template_id']}").json()
    trades = _cells(page, "#trades-table")
    head = _headers(page, "#trades-table")
    assert "PnL (USD)" in head and len(trades) == len(detail["trades"]) >= 1
    for row, trade in zip(trades, detail["trades"], strict=True):
        cells = dict(zip(head, row, strict=True))
        assert cells["Entry price"] == EURUSD.format_price(trade["entry_price"])
        assert cells["Exit price"] == EURUSD.format_price(trade["exit_price"])
        assert re.fullmatch(r"1\.\d{5}", cells["Entry price"])
    axis = page.evaluate("document.getElementById('chart-trades').layout.yaxis")
    assert axis["tickformat"] == ",.5f"
    assert "stop" in page.inner_text("#trade-params") and \
        not ZERO_PRICE.search(page.inner_text("#trade-params"))
    _shot(page, "templates-eurusd")
