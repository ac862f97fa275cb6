"""Issue 17, in a real browser: a page served from another origin (a second local HTTP
server) cannot start work on a ``stratforge serve`` without a token, by form or by fetch;
the dashboard and the API reference still work from the server's own origin, with and
without a token, under the Content-Security-Policy (a blocked script or style would be a
console error).

Without chromium or Playwright the tests skip, saying why; with
``STRATFORGE_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard_helpers import Console, browser_problem, chromium, serve
from db_helpers import require_service
from research_helpers import make_market

READY = "#page[data-state=ready]"
TOKEN = "origin-token"


def _evil_page(target: str) -> bytes:
    """A page that tries what a hostile site can: a cross-origin form post (text/plain, the
    JSON smuggled in a field name), no-cors text/plain fetches with an empty body (every
    setting at its default: what got 202 before) and with a JSON text, and JSON fetches
    (stopped by the browser's preflight anyway)."""
    return f"""<!DOCTYPE html><html><body>
<form id="f" method="POST" action="{target}/api/v1/agent/trigger" enctype="text/plain"
      target="sink"><input name='{{"bypass_gates": true, "x": "' value='"}}'></form>
<iframe name="sink"></iframe>
<script>
const base = {json.dumps(target)};
async function attack() {{
  const tries = [];
  for (const path of ["/api/v1/agent/trigger", "/api/v1/research/runs",
                      "/api/v1/training/runs"]) {{
    for (const body of ["", "{{}}"]) {{
      tries.push(fetch(base + path, {{method: "POST", mode: "no-cors",
        headers: {{"Content-Type": "text/plain"}}, body}}).catch(() => null));
    }}
    tries.push(fetch(base + path, {{method: "POST", headers: {{"Content-Type":
      "application/json"}}, body: "{{}}"}}).catch(() => null));
  }}
  await Promise.all(tries);
  document.getElementById("f").submit();
  document.title = "done";
}}
attack();
</script></body></html>""".encode()


class _Origin:
    """A second HTTP server on another port (so another origin) serving one page."""

    def __init__(self, page: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    problem = browser_problem()
    if problem:
        require_service(problem)
    folder = tmp_path_factory.mktemp("origins") / "home"
    make_market(folder, "realistic", 10, seed=3)
    return folder


@pytest.fixture(scope="module")
def browser(home):
    with chromium() as launched:
        yield launched


def _operations(server) -> list[dict]:
    return server.api("GET", "/operations?limit=100").json()["operations"]


def test_another_origin_cannot_start_work_without_a_token(home, browser):
    with serve(home, workers=0) as server:
        evil = _Origin(_evil_page(server.url))
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(evil.url)
            page.wait_for_function("document.title === 'done'", timeout=20_000)
            page.wait_for_timeout(1500)  # the form's post lands in the iframe
            assert _operations(server) == []
        finally:
            context.close()
            evil.close()


def _dashboard_works(browser, server, token: str | None) -> None:
    context = browser.new_context()
    if token:
        context.add_init_script(f"localStorage.setItem('stratforge.token', {json.dumps(token)})")
    page = context.new_page()
    console = Console()
    console.watch(page)
    try:
        for route in ("overview", "research", "agent", "operations"):
            page.goto(f"{server.url}/ui/#/{route}")
            page.wait_for_selector(READY, timeout=30_000)
        # work started from the dashboard's own origin is accepted
        statuses = page.evaluate("""async () => {
            const token = localStorage.getItem('stratforge.token');
            const headers = Object.assign({'Content-Type': 'application/json'},
                                          token ? {Authorization: 'Bearer ' + token} : {});
            const out = [];
            for (const [method, path] of [['POST', '/api/v1/agent/trigger'],
                                          ['DELETE', '/api/v1/agent/cancel']]) {
              out.push((await fetch(path, {method, headers, body: '{}'})).status);
            }
            return out; }""")
        assert statuses == [202, 200]
        page.goto(f"{server.url}/api/v1/docs" if not token else f"{server.url}/ui/api.html")
        page.wait_for_selector(READY, timeout=30_000)
        assert page.locator("code", has_text="POST /api/v1/agent/trigger").count() == 1
        assert plotly_loaded(page, server)
        assert console.errors == [], console.errors
    finally:
        context.close()


def plotly_loaded(page, server) -> bool:
    """plotly.js from the server runs under the policy and draws a chart."""
    page.goto(f"{server.url}/ui/#/overview")
    page.wait_for_selector(READY, timeout=30_000)
    return page.evaluate("""async () => { const s = document.createElement('script');
        s.src = '/ui/vendor/plotly.min.js'; document.head.append(s);
        await new Promise((ok, bad) => { s.onload = ok; s.onerror = bad; });
        const div = document.createElement('div'); document.body.append(div);
        await Plotly.newPlot(div, [{x: [1, 2, 3], y: [2, 1, 3]}]);
        return div.querySelectorAll('.main-svg').length > 0; }""")


def test_the_dashboard_works_from_its_own_origin_without_a_token(home, browser):
    with serve(home, workers=0) as server:
        _dashboard_works(browser, server, None)


def test_the_dashboard_works_from_its_own_origin_with_a_token(home, browser):
    with serve(home, token=TOKEN, workers=0) as server:
        _dashboard_works(browser, server, TOKEN)
        started = time.monotonic()
        assert server.api("GET", "/operations").status_code == 200
        assert time.monotonic() - started < 10
