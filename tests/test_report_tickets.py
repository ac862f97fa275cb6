"""Report tickets: how a browser tab opens a run's report on a server with a token (a blob
URL would inherit the dashboard's Content-Security-Policy and leave the report's inline
plotly.js blank). A ticket opens one report path, for two minutes, and nothing else."""

from __future__ import annotations

import pytest

from stratforge.api.tickets import TICKET_SECONDS, is_report_path, make_ticket, valid_ticket
from test_api_support import make_api

TOKEN = "s3cret-token"
REPORT = "/api/v1/research/runs/run_20261205_101411_d3cbaaa9/report"


def test_a_ticket_is_valid_for_its_path_and_time_only():
    ticket = make_ticket(TOKEN.encode(), REPORT, now=1_000.0)
    assert valid_ticket(TOKEN.encode(), REPORT, ticket, now=1_000.0)
    assert valid_ticket(TOKEN.encode(), REPORT, ticket, now=1_000.0 + TICKET_SECONDS)
    assert not valid_ticket(TOKEN.encode(), REPORT, ticket, now=1_001.0 + TICKET_SECONDS)
    assert not valid_ticket(TOKEN.encode(), REPORT.replace("d3cb", "0000"), ticket, now=1_000.0)
    assert not valid_ticket(b"another token", REPORT, ticket, now=1_000.0)
    expiry, _, mac = ticket.partition(".")
    forged = f"{int(expiry) + 3600}.{mac}"  # a later expiry does not match the MAC
    assert not valid_ticket(TOKEN.encode(), REPORT, forged, now=1_000.0)
    for bad in ("", "abc", "123", "x.y", f"{expiry}."):
        assert not valid_ticket(TOKEN.encode(), REPORT, bad, now=1_000.0)


@pytest.mark.parametrize(("path", "ok"), [
    (REPORT, True), ("/api/v1/training/runs/op_training_run_x/report", True),
    ("/api/v1/research/runs//report", False), ("/api/v1/research/runs/a/b/report", False),
    ("/api/v1/research/runs/../report", False), ("/api/v1/operations", False),
    ("/api/v1/research/runs/x/tiers", False),
])
def test_only_a_runs_report_can_be_ticketed(path, ok):
    assert is_report_path(path) is ok


def test_the_server_lets_a_ticketed_get_of_that_report_through(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATFORGE_HOME", str(tmp_path))
    with make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", monkeypatch, token=TOKEN) as api:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert api.post("/report-tickets", json={"path": REPORT}).status_code == 401
        refused = api.post("/report-tickets", json={"path": "/api/v1/operations"},
                           headers=auth)
        assert refused.status_code == 422 and "report path" in refused.json()["detail"]
        answer = api.post("/report-tickets", json={"path": REPORT}, headers=auth).json()
        assert answer["url"].startswith(REPORT + "?ticket=") and TOKEN not in answer["url"]
        # without the token: the ticket passes the bearer check (404: no such run here),
        # while the same path without it, or another path with it, is a 401
        assert api.client.get(answer["url"]).status_code == 404
        assert api.client.get(REPORT).status_code == 401
        other = "/api/v1/research/runs/run_x/report?" + answer["url"].split("?")[1]
        assert api.client.get(other).status_code == 401
        tiers = REPORT.replace("/report", "/tiers") + "?" + answer["url"].split("?")[1]
        assert api.client.get(tiers).status_code == 401
        assert api.client.post(answer["url"], json={}).status_code == 401  # GET only


def test_without_a_token_the_url_is_the_plain_path(tmp_path, monkeypatch):
    monkeypatch.setenv("STRATFORGE_HOME", str(tmp_path))
    with make_api(f"sqlite:///{tmp_path / 'db.sqlite'}", monkeypatch) as api:
        assert api.post("/report-tickets", json={"path": REPORT}).json()["url"] == REPORT
