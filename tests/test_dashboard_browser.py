"""The dashboard in a real browser: ``stratforge serve`` (with a token) on a free loopback port
against a small synthetic market, driven by Debian's chromium under Playwright. Each page
loads without console errors; a research run started from the page shows live progress and
then its results; cancel from the page cancels; charts hold as many points as the artifacts
(read here with pandas) or the API say; screenshots of every page go to the test artefacts.

Without chromium or Playwright the tests skip, saying why; with
``STRATFORGE_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from dashboard_helpers import Console, artifacts_folder, browser_problem, chromium, serve
from db_helpers import require_service
from research_helpers import SMALL, make_market
from stratforge.instruments import get_instrument
from stratforge.ops.db import Database
from stratforge.ops.operations import create_operation
from stratforge.research.runs import PHASES as RUN_PHASES
from test_api_support import parse_sse

pytestmark = pytest.mark.slow
TOKEN = "browser-token"
RESEARCH_SETTINGS = {**SMALL, "executor": "serial"}
TRAINING = {"templates": "warmup", "warmup_days": 10, "iterations": 12}
READY = "#page[data-state=ready]"
BAD_TEXT = re.compile(r"\b(undefined|NaN|null)\b(?! twins)")  # "null twins": the audit's words


def wait_for(page, expression: str, arg=None, timeout: float = 30_000,
             show: str | None = None) -> None:
    """Poll ``expression`` (a JavaScript expression, or a function of ``arg``) until it is
    truthy. Playwright's ``wait_for_function`` compiles its predicate with ``eval`` inside the
    page, which the dashboard's Content-Security-Policy (``script-src 'self'``) refuses;
    ``page.evaluate`` runs through the DevTools protocol and is not subject to it. ``show``:
    an expression whose value a timeout reports."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        if page.evaluate(expression, arg):
            return
        if time.monotonic() > deadline:
            seen = f"; {show} = {page.evaluate(show)!r}" if show else ""
            raise AssertionError(f"timed out after {timeout / 1000:.0f} s waiting for "
                                 f"{expression!r} ({arg!r}){seen}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server on a 20-day synthetic MNQ market (token on, one worker with two slots)."""
    problem = browser_problem()
    if problem:
        require_service(problem)
    home = tmp_path_factory.mktemp("dashboard") / "home"
    make_market(home, "realistic", 20, seed=11)
    with serve(home, token=TOKEN, workers=1, concurrency=2) as running:
        _wait(lambda: running.api("GET", "/workers").json()["workers"], 60,
              "the pool's worker to register")
        yield running


@pytest.fixture(scope="module")
def browser(server):
    """One headless chromium for the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def state():
    """What one test leaves for the next (the research run started from the page)."""
    return {}


class Tab:
    """A page of a fresh browser context, its console, and the server."""

    def __init__(self, browser, server, *, token: bool = True, width: int = 1440,
                 height: int = 900) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        if token:
            self.context.add_init_script(
                f"localStorage.setItem('stratforge.token', {json.dumps(TOKEN)})")
        self.page = self.context.new_page()
        self.console = Console()
        self.console.watch(self.page)
        self.server = server
        self.allow: list[str] = []
        """Console errors a test expects (a substring each), such as a refused request."""

    def open(self, route: str, timeout: float = 30_000):
        """Go to ``#/<route>`` and wait until the page says it is rendered."""
        self.page.goto(f"{self.server.url}/ui/#/{route}")
        self.page.wait_for_selector(READY, timeout=timeout)
        self.check_text()
        return self.page

    def check_text(self) -> None:
        """The page shows no ``undefined``, ``NaN`` or bare ``null`` (JSON blocks aside)."""
        text = self.page.evaluate(
            """() => { const copy = document.getElementById('page').cloneNode(true);
                 copy.querySelectorAll('pre').forEach((p) => p.remove());
                 return copy.innerText; }""")
        assert not BAD_TEXT.search(text), BAD_TEXT.findall(text)

    def shot(self, name: str) -> Path:
        """A full-page screenshot in the test artefacts."""
        path = artifacts_folder() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        return path

    def points(self, chart: str) -> list[int]:
        """Points per trace of a plotly chart (x values; z rows x columns for a heatmap)."""
        return self.page.evaluate(
            """(id) => document.getElementById(id).data.map((t) => t.type === 'heatmap'
                 ? t.z.length * (t.z[0] || []).length : (t.x || []).length)""", chart)

    def close(self) -> None:
        """Close the context; the page must not have logged any error."""
        errors = [e for e in self.console.errors if not any(a in e for a in self.allow)]
        if not self.page.is_closed() and self.page.url.startswith(self.server.url):
            self.check_text()
        self.context.close()
        assert errors == [], errors


@pytest.fixture
def tab(browser, server):
    """A fresh tab with the token already stored; fails on console errors."""
    opened = Tab(browser, server)
    yield opened
    opened.close()


def _wait(condition, timeout: float, what: str, explain=None):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out waiting for {what}" + (f": {explain()}" if explain else ""))
        time.sleep(0.2)


def _situation(server, op_id: str) -> str:
    """The operation as the API sees it and the end of the server's log (for a failure)."""
    op = server.api("GET", f"/operations/{op_id}").json()
    return (f"operation {op.get('status')} at {op.get('progress')}, error {op.get('error')}; "
            f"workers {server.api('GET', '/workers').json()}; log: "
            f"{server.log.read_text()[-2000:]}")


def test_the_token_is_asked_once_and_kept(browser, server):
    tab = Tab(browser, server, token=False)
    page = tab.page
    page.goto(f"{server.url}/ui/")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", TOKEN)
    page.click("#token-save")
    page.wait_for_selector(READY)
    assert page.evaluate("localStorage.getItem('stratforge.token')") == TOKEN
    page.reload()
    page.wait_for_selector(READY)
    assert not page.is_visible("#token-dialog")
    workers = server.api("GET", "/workers").json()["workers"]
    assert page.locator("#workers-table tbody tr").count() == len(workers) >= 1
    tab.shot("overview")
    tab.close()


def test_overview_shows_live_progress_of_an_active_operation(tab, server):
    page = tab.open("overview")
    db = Database(f"sqlite:///{server.home / 'stratforge.db'}")
    op = create_operation(db, "sleep", {"seconds": 4})
    db.dispose()
    row = f"#active-body tr[data-id='{op.id}']"
    page.wait_for_selector(row, timeout=20_000)  # added from the event stream, no reload
    seen = set()

    def finished() -> bool:
        seen.add(float(page.get_attribute(f"{row} [role=progressbar]", "aria-valuenow")))
        return page.inner_text(f"{row} .status") == "completed"

    _wait(finished, 40, "the sleep operation to complete on the page",
          lambda: _situation(server, op.id))
    assert any(0 < v < 100 for v in seen), seen  # the bar moved while it ran
    assert 100.0 in seen or float(page.get_attribute(f"{row} [role=progressbar]",
                                                     "aria-valuenow")) == 100.0
    for width, name in ((1366, "overview-laptop"), (1920, "overview-wide")):
        page.set_viewport_size({"width": width, "height": 900})
        tab.shot(name)


def test_the_training_and_evolution_forms_show_refused_settings(tab, server):
    before_training = server.api("GET", "/operations", params={"type": "training_run"}).json()
    before_evolution = server.api("GET", "/operations", params={"type": "evolution_run"}).json()
    tab.allow.append("status of 422")  # chromium logs each refused POST itself
    page = tab.open("training")
    page.wait_for_selector("#train-form")
    page.fill("#train-iterations", "1000000")  # above the documented bound
    page.click("#train-start")
    wait_for(page, "document.querySelector('#train-error').innerText.startsWith("
                   "'refused: iterations')")
    page.fill("#train-iterations", "")
    page.fill("#train-settings", "[1, 2]")
    page.click("#train-start")
    wait_for(page, "document.querySelector('#train-error').innerText.startsWith('settings:')")
    page = tab.open("evolution")
    page.wait_for_selector("#evolve-form")
    page.fill("#evolve-settings", "{not json")
    page.click("#evolve-start")
    wait_for(page, "document.querySelector('#evolve-error').innerText.startsWith('settings:')")
    page.fill("#evolve-settings", json.dumps({"max_generations": -1}))
    page.click("#evolve-start")
    wait_for(page, "document.querySelector('#evolve-error').innerText.startsWith('refused: ')")
    # nothing was started by a refused form
    assert server.api("GET", "/operations", params={"type": "training_run"}).json() == \
        before_training
    assert server.api("GET", "/operations", params={"type": "evolution_run"}).json() == \
        before_evolution
    tab.shot("forms-refused")


def test_the_research_form_shows_refused_settings(tab, server):
    before = server.api("GET", "/operations", params={"type": "research_run"}).json()
    tab.allow.append("status of 422")  # chromium logs each refused POST itself
    page = tab.open("research")
    page.fill("#run-timeframes", "5m,7x")
    page.click("#run-start")
    wait_for(page, "document.querySelector('#run-error').innerText.length > 0")
    assert page.inner_text("#run-error").startswith("refused: timeframes: ")
    assert "7x" in page.inner_text("#run-error")
    page.fill("#run-timeframes", "5m")
    page.fill("#run-settings", json.dumps({"mc_iters": 0}))
    page.click("#run-start")
    wait_for(page, "document.querySelector('#run-error').innerText.startsWith("
                           "'refused: mc_iters: ')")
    page.fill("#run-settings", "{not json")
    page.click("#run-start")
    wait_for(page, "document.querySelector('#run-error').innerText"
                           ".startsWith('settings:')")
    assert server.api("GET", "/operations", params={"type": "research_run"}).json() == before
    assert page.evaluate("location.hash") == "#/research"



def test_a_research_run_started_from_the_page(tab, server, state):
    page = tab.open("research")
    page.fill("#run-timeframes", "5m,15m")
    page.fill("#run-settings", json.dumps(RESEARCH_SETTINGS))
    page.click("#run-start")
    wait_for(page, "location.hash.startsWith('#/research/op_research_run_')")
    page.wait_for_selector(READY)
    op_id = page.evaluate("decodeURIComponent(location.hash.split('/')[2])")
    seen: set[tuple[str, str]] = set()

    def done() -> bool:
        seen.add((page.inner_text("#run-step"),
                  page.get_attribute("#run-progress", "aria-valuenow")))
        if "live" not in state and page.locator("#phase-timeline .phase.done").count() >= 1 \
                and page.locator("#phase-timeline .phase.current").count() == 1:
            state["live"] = tab.shot("research-run-live")
        return page.locator("#run-results[data-state=ready]").count() == 1

    _wait(done, 300, "the research run's results", lambda: _situation(server, op_id))
    op = server.api("GET", f"/operations/{op_id}").json()
    assert op["status"] == "completed", op["error"]
    steps = {step.split(" ")[0] for step, _ in seen if step}
    assert len(steps) >= 2, seen  # live: the page went through phases without a reload
    assert any(0 < float(p) < 100 for _, p in seen), seen
    run_id = op["result_summary"]["run_id"]
    folder = server.home / "runs" / run_id
    state.update(run_id=run_id, folder=folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert tab.points("chart-phases") == [len(summary["phases"])]
    done_phases = page.locator("#phase-timeline .phase.done").count()
    assert done_phases == len(RUN_PHASES)  # every phase of the run, optimize included
    anova = json.loads((folder / "anova.json").read_text())
    factors = [r for r in anova["multi"] if r["factor"] != "Residual"
               and r.get("eta_squared") is not None] or anova["one_way"]
    assert tab.points("chart-anova") == [len(factors)]
    heatmap = server.api("GET", f"/research/runs/{run_id}/sweep").json()["heatmap"]
    assert tab.points("chart-heatmap") == [len(heatmap["stop_labels"]) *
                                           len(heatmap["target_labels"])]
    history = json.loads((folder / "refine" / "history.json").read_text())
    combos = {c for r in history["rounds"] for c in r["allocation"]}
    assert tab.points("chart-thompson") == [len(history["rounds"])] * len(combos)
    curves = pd.read_parquet(folder / "curves.parquet")
    assert sum(tab.points("chart-equity")) == len(curves)
    validation = pd.read_parquet(folder / "validation.parquet")
    assert page.locator("#tiers-table tbody tr").count() == len(validation)
    # MNQ's numbers: tick 0.25 with two decimals, PnL in USD (EURUSD: test_dashboard_markets)
    market = summary["market"]
    panel = page.inner_text("#market-panel")
    assert re.search(r"Tick size\s+0\.25\b", panel) and market["session"] in panel
    mnq = get_instrument("MNQ")
    cost = market["cost_model"]
    assert (f"{mnq.format_price(cost['round_trip_price'])} price units = "
            f"{cost['round_trip_currency']:,.2f} USD") in panel
    headers = page.evaluate("[...document.querySelectorAll('#tiers-table thead th')]"
                            ".map((th) => th.innerText)")
    assert "IS PnL (USD)" in headers and "OOS PnL (USD)" in headers
    labels = page.evaluate("document.getElementById('chart-heatmap').data[0].x")
    assert labels == heatmap["stop_price_labels"]
    assert all(re.fullmatch(r"[\d,]+\.\d\d(–[\d,]+\.\d\d)?", label) for label in labels)
    with page.expect_popup() as popup:  # a ticket URL: the report's own policy, charts drawn
        page.click("#open-report")
    popup.value.wait_for_load_state()
    assert popup.value.title() == f"Research run {run_id}"
    popup.value.wait_for_selector("#fig-equity .main-svg", timeout=20_000)
    assert "ticket=" in popup.value.url and "token" not in popup.value.url
    popup.value.close()
    tab.shot("research-run")
    # another combo of the select redraws the heatmap with that combo's grid
    options = page.locator("#combo-select option")
    if options.count() > 1:
        value = options.nth(1).get_attribute("value")
        page.select_option("#combo-select", value)
        template, timeframe = value.split("|")
        other = server.api("GET", f"/research/runs/{run_id}/sweep",
                           params={"template_id": template, "timeframe": timeframe}).json()
        cells = len(other["heatmap"]["stop_labels"]) * len(other["heatmap"]["target_labels"])
        wait_for(page,
            "([id, n]) => { const d = document.getElementById(id).data[0];"
            " return d.z.length * d.z[0].length === n; }", arg=["chart-heatmap", cells])
    tab.open("research")
    assert page.locator("#research-runs tbody tr").count() == 1
    tab.shot("research-list")


def test_the_research_run_page_shows_its_null_twins(tab, server, state):
    from stratforge.research.null_audit import audit_null

    run_id = state["run_id"]
    block = audit_null(run_id, twins=1, home=server.home, executor="serial")
    page = tab.open(f"research/{run_id}")
    page.wait_for_selector("#null-twins-headline")
    tiers = block["tiers"]
    assert page.inner_text("#null-twins-headline").startswith(
        f"on 1 null twins of your data: PRODUCTION in {tiers['PRODUCTION']['twins_with_any']}, "
        f"CANDIDATE in {tiers['CANDIDATE']['twins_with_any']}")
    rows = page.evaluate("[...document.querySelectorAll('#null-twins-table tbody tr')]"
                         ".map((tr) => [...tr.children].map((td) => td.innerText))")
    assert rows == [[name, f"{tiers[name]['real']:,}", f"{tiers[name]['twins_with_any']} of 1",
                     f"{tiers[name]['strategies']:,}", str(tiers[name]["per_twin"][0])]
                    for name in ("PRODUCTION", "CANDIDATE", "UNPROVEN", "TOXIC")]
    assert page.locator("#null-twins-winners tbody tr").count() == block["beats_the_twins"]


def test_the_research_run_page_shows_its_lookahead_audit(tab, server, state):
    from dataclasses import replace

    from stratforge.audit import audit_lookahead
    from stratforge.audit.lookahead import write_lookahead_report

    if "run_id" not in state:
        pytest.skip("needs the research run of an earlier test")
    run_id = state["run_id"]
    page = tab.open(f"research/{run_id}")
    page.wait_for_selector("#null-twins-headline")
    assert page.locator("#lookahead-headline").count() == 0  # not audited yet: no section

    def peek(bars: pd.DataFrame) -> pd.Series:
        return bars["close"].shift(-1).rename("next_close")

    report = audit_lookahead("MNQ", timeframes=["15m"], features=[peek], cuts=2,
                             sources=["user"], home=server.home)
    write_lookahead_report(replace(report, run_id=run_id), server.home)
    page.reload()  # the same #/ route again is no navigation: load the page anew
    page.wait_for_selector(READY)
    page.wait_for_selector("#lookahead-table")
    assert page.inner_text("#lookahead-headline") == "lookahead in 1 feature series"
    [finding] = report.findings
    rows = page.evaluate("[...document.querySelectorAll('#lookahead-table tbody tr')]"
                         ".map((tr) => [...tr.children].map((td) => td.innerText))")
    short = lambda iso: iso.replace("T", " ").replace("+00:00", "")  # noqa: E731
    assert rows == [["user", "next_close", "15m", short(finding.first_bar),
                     f"{finding.first_bar_index:,}", short(finding.cut),
                     "truncated, mirrored, shuffled", "2/2"]]
    page.locator("#lookahead-headline").scroll_into_view_if_needed()
    page.locator("#lookahead-table").screenshot(path=str(artifacts_folder() /
                                                         "research-lookahead-table.png"))
    tab.shot("research-lookahead")


def test_templates_page_and_a_templates_trades(tab, server, state):
    if "run_id" not in state:
        pytest.skip("needs the research run of the previous test")
    page = tab.open(f"templates/{state['run_id']}")
    library = pd.read_parquet(state["folder"] / "library" / "templates.parquet")
    api_templates = server.api("GET", f"/research/runs/{state['run_id']}/templates"
                               ).json()["templates"]
    # coloured templates in the first trace, those without a value grey in a named second one
    with_pnl = [t for t in api_templates if t["best_is_pnl"] is not None]
    assert sum(tab.points("chart-templates")) == len(library)
    assert tab.points("chart-templates")[0] == len(with_pnl)
    chart = "document.getElementById('chart-templates')"
    ids = page.evaluate(f"{chart}.data.flatMap((t) => t.customdata)")
    sizes = dict(zip(ids, page.evaluate(f"{chart}.data.flatMap((t) => t.marker.size)"),
                     strict=True))
    members = {t["template_id"]: t["members"] for t in api_templates}
    order = sorted(members, key=lambda k: (members[k], k))
    assert [sizes[k] for k in order] == sorted(sizes[k] for k in order)  # bigger = more members
    if len(with_pnl) < len(api_templates):
        assert page.evaluate(f"{chart}.data[1].name").startswith("grey: ")
    marker = f"{chart}.data[0].marker"
    page.select_option("#templates-colour", "risk")
    wait_for(page, f"{marker}.colorbar.title.text === 'median MAE (price)'")
    assert page.evaluate(f"{marker}.color") == pytest.approx(
        [t["mae_median"] for t in api_templates if t["mae_median"] is not None])
    assert page.locator("#templates-table tbody tr").count() == len(library)
    validated = pd.read_parquet(state["folder"] / "validation.parquet").iloc[0]
    page.click(f"#templates-table tr[data-key='{validated['template_id']}']")
    page.wait_for_selector(f"#template-detail[data-template='{validated['template_id']}']")
    page.select_option("#template-timeframe", validated["timeframe"])
    wait_for(page,
        "(tf) => document.querySelector('#template-timeframe').value === tf && "
        "document.getElementById('chart-trades')", arg=validated["timeframe"])
    detail = server.api("GET", f"/research/runs/{state['run_id']}/templates/"
                               f"{validated['template_id']}",
                        params={"timeframe": validated["timeframe"]}).json()
    trades = int(validated["is_trades"] + validated["oos_trades"])
    wait_for(page, "(n) => document.querySelectorAll('#trades-table tbody tr')"
                           ".length === n", arg=trades)
    candles, entries, exits = tab.points("chart-trades")
    assert candles == len(detail["candles"]["ts"]) and entries == exits == trades
    shown = page.evaluate("[...document.querySelectorAll('#trades-table tbody tr')]"
                          ".map((tr) => tr.children[3].innerText)")
    mnq = get_instrument("MNQ")
    assert shown == [mnq.format_price(t["entry_price"]) for t in detail["trades"]]
    tab.shot("templates")


def test_a_training_run_updates_live(tab, server):
    started = server.api("POST", "/training/runs", json={**TRAINING, "max_days": 3})
    op_id = started.json()["id"]
    page = tab.open(f"training/{op_id}")
    _wait(lambda: page.inner_text("#training-status") == "completed", 180,
          "the training run to complete on the page", lambda: _situation(server, op_id))
    frame = pd.read_parquet(server.home / "training" / op_id / "days.parquet")
    wait_for(page, "(n) => document.querySelectorAll('#days-table tbody tr').length"
                           " === n", arg=len(frame))
    assert tab.points("chart-daily-pnl") == [len(frame), len(frame)]
    assert tab.points("chart-win-rate") == [len(frame), len(frame)]
    assert tab.points("chart-regret") == [len(frame)] * 3
    assert page.evaluate("document.getElementById('chart-daily-pnl').layout.yaxis.title.text"
                         ) == "PnL (USD)"
    assert "PnL (USD)" in page.inner_text("#days-table thead")
    page.wait_for_selector("#training-report:not([disabled])")
    with page.expect_popup() as popup:  # opened with a ticket: its charts are drawn
        page.click("#training-report")
    popup.value.wait_for_load_state()
    assert popup.value.title() == "Training run MNQ"
    popup.value.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
    popup.value.close()
    tab.shot("training-run")
    tab.open("training")
    assert page.locator(f"#training-runs a[href='#/training/{op_id}']").count() == 1
    tab.shot("training-list")


def test_cancel_from_the_operations_page(tab, server):
    db = Database(f"sqlite:///{server.home / 'stratforge.db'}")
    op = create_operation(db, "sleep", {"seconds": 120})
    db.dispose()
    page = tab.open(f"operations/{op.id}")
    page.wait_for_selector("#op-cancel")
    page.click("#op-cancel")
    wait_for(page, "document.querySelector('#op-status').innerText === 'cancelled'")
    assert server.api("GET", f"/operations/{op.id}").json()["status"] == "cancelled"
    assert "cancelled from the dashboard" in page.inner_text("#op-error")
    completed = server.api("GET", f"/operations/{op.id}").json()["completed_at"]
    shown = completed.replace("T", " ")[:19]
    wait_for(page, "(t) => document.querySelector('#op-details').innerText.includes(t)",
                           arg=shown)  # the details follow the cancel too
    tab.shot("operation-detail")
    tab.open("operations")
    page.select_option("#filter-status", "cancelled")
    page.click("#filter-apply")
    page.wait_for_selector(f"#operations-table a[href='#/operations/{op.id}']")
    listed = server.api("GET", "/operations", params={"status": "cancelled"}).json()
    assert page.locator("#operations-table tbody tr").count() == len(listed["operations"])
    tab.shot("operations")


def test_agent_trigger_and_cancel_from_the_page(tab, server):
    page = tab.open("agent")
    page.click("#agent-trigger")
    page.wait_for_selector("#agent-cancel:not([disabled])", timeout=20_000)
    cycle = server.api("GET", "/agent/status").json()["operation"]["id"]
    page.click("#agent-cancel")
    wait_for(page, "document.querySelector('#agent-note').innerText"
                   ".startsWith('cancelled')",
             show="document.querySelector('#agent-note').innerText")
    status = server.api("GET", "/agent/status").json()
    assert status["active"] is False
    assert server.api("GET", f"/operations/{cycle}").json()["status"] == "cancelled"
    assert page.is_enabled("#agent-trigger")
    children = server.api("GET", f"/operations/{cycle}/children").json()["operations"]
    shown = page.locator("#agent-children tbody tr")
    if children:  # whether the cycle got to start its child before the cancel is a race
        wait_for(page, "(n) => document.querySelectorAll('#agent-children tbody tr')"
                               ".length === n", arg=len(children))
    else:
        assert shown.count() == 0 and "no child operation" in page.inner_text("#page")
    tab.shot("agent")


def test_evolution_page_without_runs(tab, server):
    page = tab.open("evolution")
    assert page.is_visible("#evolution-empty")
    tab.shot("evolution")


def test_values_from_the_api_are_shown_as_text(tab, server):
    db = Database(f"sqlite:///{server.home / 'stratforge.db'}")
    op = create_operation(db, "sleep", {"seconds": 120, "note": "<b id='bold'>x</b>"})
    db.dispose()
    reason = "<img src=x id='injected' onerror=\"window.__xss = 1\">"
    assert server.api("DELETE", f"/operations/{op.id}", params={"reason": reason}
                      ).status_code == 200
    page = tab.open(f"operations/{op.id}")
    assert page.inner_text("#op-error") == reason
    assert page.locator("#injected, #bold").count() == 0
    assert page.evaluate("window.__xss") is None
    assert "<b id='bold'>x</b>" in page.inner_text("#page")


EVOLUTION_RUN = {"symbol": "MNQ", "timeframe": "1m", "algorithm": "random_forest",
                 "hyperparameters": {"n_estimators": 5}, "max_generations": 2, "horizon": 3,
                 "thresholds": [0.5, 1.0], "importance_repeats": 1, "importance_rows": 1000,
                 "promotion": {"sqn_min": -1000, "sqn_max": 1000, "profit_factor_min": 0,
                               "profit_factor_max": 1e6, "trades_min": 0,
                               "trades_max": 10**9, "weekly_consistency_max": 1e6}}
"""A small evolution run with promotion bounds loose enough that a model is promoted."""


def test_evolution_page_with_a_real_run(tab, server):
    started = server.api("POST", "/evolution/runs", json=EVOLUTION_RUN)
    assert started.status_code == 202, started.text
    run_id = started.json()["operation_id"]
    _wait(lambda: server.api("GET", f"/operations/{run_id}").json()["status"]
          not in ("pending", "running"), 300, "the evolution run",
          lambda: _situation(server, run_id))
    runs = server.api("GET", "/evolution/runs").json()
    detail = server.api("GET", f"/evolution/runs/{run_id}").json()
    promoted = server.api("GET", "/evolution/promoted").json()["items"]
    assert detail["status"] == "completed" and detail["generations"]
    page = tab.open("evolution")
    assert page.locator("#evolution-runs tbody tr").count() == runs["total"] == 1
    assert page.locator("#promoted-table tbody tr").count() == len(promoted) >= 1
    page.click("#evolution-runs tbody tr >> nth=0")
    page.wait_for_selector("#chart-generations .main-svg")
    generations = detail["generations"]
    assert tab.points("chart-generations") == [len(generations)] * 2
    assert page.locator("#generations-table tbody tr").count() == len(generations)
    page.click(f"#generations-table tbody tr >> nth={len(generations) - 1}")
    page.wait_for_selector("#chart-lineage .main-svg")
    lineage = server.api("GET", f"/evolution/models/"
                                f"{generations[-1]['model_fingerprint']}/lineage").json()
    edges, nodes = tab.points("chart-lineage")
    assert nodes == len(lineage["ancestors"])
    assert edges == 3 * sum(1 for a in lineage["ancestors"] if a["parent_fingerprint"])
    tab.shot("evolution-run")


def test_the_pages_event_parser_reads_the_servers_stream_in_any_chunks(tab, server):
    body = server.api("GET", "/events", params={"after": 0, "max_events": 200,
                                                "timeout": 5}).text
    expected, _ = parse_sse(body)
    expected = [m for m in expected if "data" in m]
    assert len(expected) >= 20  # the earlier tests left plenty of events
    page = tab.open("overview")
    for size in (1, 7, 64, 4096):  # the stream arrives in arbitrary pieces
        got = page.evaluate(
            """async ([text, size]) => {
                 const { parseBlocks } = await import('./js/api.js');
                 const out = []; let buffer = '';
                 for (let i = 0; i < text.length; i += size) {
                   buffer = parseBlocks(buffer + text.slice(i, i + size), (m) => out.push(
                     { id: m.id, event: m.event, data: JSON.parse(m.data.join('\\n')) }));
                 }
                 return out; }""", [body, size])
        assert [(m["id"], m["event"], m["data"]) for m in got] == \
            [(int(m["id"]), m["event"], m["data"]) for m in expected]


def test_the_event_feed_resumes_after_the_last_id_it_saw(tab, server):
    page = tab.page
    asked: list[str] = []
    event = {"id": 41, "ts": "2026-12-01T00:00:00Z", "kind": "job_ran",
             "operation_id": None, "payload": {}}

    def answer(route) -> None:
        asked.append(route.request.url)
        assert route.request.headers.get("authorization") == f"Bearer {TOKEN}"
        if len(asked) == 1:  # a stream that ends after one event, as a dropped one would
            route.fulfill(status=200, content_type="text/event-stream",
                          body=f"retry: 2000\n\nid: 41\nevent: job_ran\ndata: "
                               f"{json.dumps(event)}\n\n")
        else:
            route.continue_()

    page.route("**/api/v1/events*", answer)
    tab.open("overview")
    # page.wait_for_timeout hands control to Playwright, which runs the route handler
    _wait(lambda: page.wait_for_timeout(100) or len(asked) >= 2, 20, "the feed to reconnect")
    assert "after=" not in asked[0] and asked[1].endswith("/api/v1/events?after=41")
    wait_for(page, "document.getElementById('live').innerText === 'live'")


ROUTES = ("overview", "research", "templates", "training", "evolution", "agent", "operations")


@pytest.mark.parametrize("width", [1280, 1920])
def test_no_page_is_wider_than_the_window(browser, server, state, width):
    tab = Tab(browser, server, width=width, height=800)
    routes = [*ROUTES, *([f"research/{state['run_id']}"] if "run_id" in state else [])]
    for route in routes:
        page = tab.open(route)
        page.wait_for_timeout(300)  # charts settle to their container
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (route, width, overflow)
    tab.close()


GEOMETRY = """() => {
  const out = { narrow: [], overlaps: [], cut: [], charts: 0, tables: 0 };
  const inner = (el) => { const s = getComputedStyle(el);
    return el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); };
  const hit = (a, b) => a.left < b.right && b.left < a.right
    && a.top < b.bottom && b.top < a.bottom;
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!plot._fullLayout || !plot.offsetParent) continue;
    out.charts += 1;
    const card = plot.closest('.cell, section') || document.body;
    const ratio = plot._fullLayout._size.w / inner(card);
    if (ratio < 0.8) out.narrow.push([plot.id, Math.round(100 * ratio)]);
    const title = plot.querySelector('.gtitle'), legend = plot.querySelector('.legend');
    if (title && legend && hit(title.getBoundingClientRect(), legend.getBoundingClientRect()))
      out.overlaps.push(plot.id);
  }
  for (const table of document.querySelectorAll('table')) {
    if (!table.offsetParent) continue;
    out.tables += 1;
    const card = table.closest('.cell, section') || document.body;
    if (table.getBoundingClientRect().right <= card.getBoundingClientRect().right + 1) continue;
    const box = table.closest('.scroll');
    const scrolls = box && ['auto', 'scroll'].includes(getComputedStyle(box).overflowX)
      && box.getBoundingClientRect().right <= card.getBoundingClientRect().right + 1;
    if (!scrolls) out.cut.push(table.id || table.querySelector('th')?.innerText || '?');
  }
  return out; }"""
"""Per page: charts whose plot area is under 80% of their card's content width, charts whose
legend overlaps their title, tables wider than their card without a scrolling box."""


def _check_geometry(page, where: str) -> dict:
    page.wait_for_timeout(400)  # charts settle to their container
    found = page.evaluate(GEOMETRY)
    assert found["narrow"] == [], (where, "plot area under 80% of the card", found["narrow"])
    assert found["overlaps"] == [], (where, "legend over the title", found["overlaps"])
    assert found["cut"] == [], (where, "table cut off without a scroll bar", found["cut"])
    return found


@pytest.mark.parametrize("width", [1280, 1920])
def test_every_page_and_report_reads_at_a_glance(browser, server, state, width):
    if "run_id" not in state:
        pytest.skip("needs the research run of the earlier test")
    training = server.api("GET", "/operations", params={"type": "training_run"}
                          ).json()["operations"]
    routes = [*ROUTES, f"research/{state['run_id']}", f"templates/{state['run_id']}",
              *([f"training/{training[0]['id']}"] if training else [])]
    tab = Tab(browser, server, width=width, height=900)
    charts = 0
    for route in routes:
        page = tab.open(route)
        if route.startswith("research/"):
            page.wait_for_selector("#run-results[data-state=ready]", timeout=60_000)
        if route.startswith("templates/"):
            page.wait_for_selector("#chart-templates .main-svg")
        charts += _check_geometry(page, f"{route} at {width}")["charts"]
        tab.shot(f"glance-{route.replace('/', '-')}-{width}")
    assert charts >= 10
    tab.close()
    reports = [(f"/research/runs/{state['run_id']}/report", "research-report")]
    if training:
        reports.append((f"/training/runs/{training[0]['id']}/report", "training-report"))
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    page = context.new_page()
    try:
        for path, name in reports:
            page.goto(f"{server.url}/api/v1{path}")
            page.wait_for_selector(".js-plotly-plot .main-svg")
            found = _check_geometry(page, f"{name} at {width}")
            assert found["charts"] >= 3 and found["tables"] >= 2, found
            page.screenshot(path=str(artifacts_folder() / f"{name}-{width}.png"),
                            full_page=True)
    finally:
        context.close()
