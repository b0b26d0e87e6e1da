"""Issue 9 items 3, 4 and 14 through HTTP: browser attacks on the loopback default (cross-site form posts,
DNS rebinding), reads behind tokens with scopes and expiry, and numbers beyond 64 bits. No worker needed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from api.cli.tokens import main as tokens_cli
from persistence import repo
from persistence.base import utcnow
from persistence.migrate import upgrade
from persistence.session import make_engine, make_sessionmaker
from persistence.settings import Settings, get_settings
from service_helpers import make_settings, render_dataset, tiny

EVIL = "http://evil.example"
BIG = "9999999999999999999"  # > 2**63 - 1


def _counts(c: TestClient, headers: dict[str, str] | None = None) -> tuple[int, int]:
    return (c.get("/jobs", headers=headers).json()["count"], c.get("/datasets", headers=headers).json()["count"])


@pytest.fixture
def ended_job(client: TestClient) -> dict[str, Any]:
    """A cancelled job on a tiny synthetic set (no worker: cancelled while queued)."""
    ds = render_dataset(client, classes=2, videos_per_class=2, frames=40)
    job = client.post("/jobs", json=tiny("pretrain", ds["id"])).json()
    assert client.post(f"/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    return job


# ------------------------------------------------------------------ item 3: cross-site requests, rebinding


def test_cross_site_form_post_to_demo_is_refused_and_creates_nothing(client: TestClient) -> None:
    before = _counts(client)
    r = client.post("/demo", data={"classes": "2"}, headers={"Origin": EVIL})  # what a hostile page's form sends
    assert r.status_code == 403 and r.headers["content-type"] == "application/json"
    assert "ALLOWED_ORIGINS" in r.json()["detail"] and "evil.example" in r.json()["detail"]
    r = client.post("/demo", headers={"Referer": f"{EVIL}/page.html"})  # no Origin: the Referer decides
    assert r.status_code == 403
    r = client.post("/demo", headers={"Origin": "null"})  # sandboxed iframes, file:// pages
    assert r.status_code == 403
    assert _counts(client) == before == (0, 0)


def test_cross_site_retry_is_refused_same_origin_and_headerless_pass(client: TestClient,
                                                                      ended_job: dict[str, Any]) -> None:
    url = f"/jobs/{ended_job['id']}/retry"
    before = _counts(client)
    for headers in ({"Origin": EVIL}, {"Origin": "http://testserver.evil.example"}, {"Origin": "http://testserver:8001"},
                    {"Origin": "https://127.0.0.1"}, {"Referer": f"{EVIL}/x"}):
        r = client.post(url, headers=headers)
        assert r.status_code == 403, (headers, r.text)
    assert _counts(client) == before
    # the dashboard's own fetches carry its origin; scripts and CLIs carry none
    assert client.post(url, headers={"Origin": "http://testserver"}).status_code == 201
    assert client.post(url, headers={"Referer": "http://testserver/#/jobs/1"}).status_code == 201
    assert client.post(url).status_code == 201
    assert _counts(client)[0] == before[0] + 3
    assert client.get(f"/jobs/{ended_job['id']}", headers={"Origin": EVIL}).status_code == 200  # reads: the SOP


def test_allowed_origins_and_every_mode(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", auth="on", allowed_origins="https://dash.example.com")
    with make_sessionmaker(make_engine(settings.database_url)).begin() as s:
        _, token = repo.create_token(s, name="t")
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as c:
        body = {"classes": 2, "videos_per_class": 2, "frames": 40, "width": 32, "height": 32}
        r = c.post("/datasets/synthetic", json=body, headers={**bearer, "Origin": EVIL})
        assert r.status_code == 403  # a valid token does not make a cross-site request acceptable
        r = c.post("/datasets/synthetic", json=body, headers={**bearer, "Origin": "https://dash.example.com"})
        assert r.status_code == 202, r.text


def test_dns_rebinding_host_is_400(client: TestClient) -> None:
    for method in ("GET", "POST"):
        r = client.request(method, "/jobs", headers={"Host": "evil.example:8000"})
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert "ALLOWED_HOSTS" in r.json()["detail"]
    assert client.post("/demo", headers={"Host": "evil.example"}).status_code == 400
    assert _counts(client) == (0, 0)
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "testserver"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host


def test_trusted_hosts_default_from_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(var_dir=tmp_path, host="127.0.0.1").trusted_hosts == ["localhost", "127.0.0.1", "::1"]
    assert Settings(var_dir=tmp_path, host="0.0.0.0").trusted_hosts == ["*"]  # tokens guard an exposed server
    monkeypatch.setenv("ALLOWED_HOSTS", "API.example.com, *.internal")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example")
    s = Settings(var_dir=tmp_path)
    assert s.trusted_hosts == ["api.example.com", "*.internal"] and s.allowed_origins == ["https://a.example"]


# ------------------------------------------------------------------ item 4: reads, scopes, expiry, health


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    settings = make_settings(tmp_path / "var", auth="on")
    tokens: dict[str, str] = {}
    with make_sessionmaker(make_engine(settings.database_url)).begin() as s:
        for scope in ("read", "submit", "admin"):
            tokens[scope] = repo.create_token(s, name=f"{scope}-token", scope=scope)[1]  # type: ignore[arg-type]
        tokens["expired"] = repo.create_token(s, name="old", scope="admin",
                                              expires_at=utcnow() - timedelta(minutes=1))[1]
        tokens["revoked"] = repo.create_token(s, name="gone", scope="admin")[1]
        repo.revoke_token(s, name="gone")
    with TestClient(create_app(settings)) as c:
        yield c, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


READS = ["/jobs", "/jobs/1", "/jobs/1/logs", "/jobs/1/checkpoint", "/jobs/1/metrics", "/jobs/1/events",
         "/jobs/defaults", "/datasets", "/datasets/1", "/models", "/experiments", "/experiments/1"]


def test_reads_need_a_token_when_auth_is_on(secured: Any) -> None:
    c, h = secured
    for path in READS:
        r = c.get(path)
        assert r.status_code == 401, (path, r.status_code)
        assert "Authorization: Bearer" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"
    for who in ("expired", "revoked"):
        r = c.get("/jobs", headers=h[who])
        assert r.status_code == 401 and ("expired at" in r.json()["detail"] if who == "expired"
                                         else "revoked" in r.json()["detail"])
    for path in READS:  # with a read token they reach their handler (404: nothing there yet)
        assert c.get(path, headers=h["read"]).status_code in (200, 404), path
    assert c.get("/", headers={}).status_code == 404  # no frontend dir in tests; static files are public


def test_scopes_nest_read_submit_admin(secured: Any) -> None:
    c, h = secured
    r = c.post("/datasets/synthetic", json={"classes": 2}, headers=h["read"])
    assert r.status_code == 403 and "scope 'read'" in r.json()["detail"] and "--scope submit" in r.json()["detail"]
    assert c.post("/jobs/1/cancel", headers=h["read"]).status_code == 403
    assert c.post("/jobs/1/cancel", headers=h["submit"]).status_code == 404  # allowed: reaches the handler
    assert c.post("/jobs/1/cancel", headers=h["admin"]).status_code == 404
    assert c.get("/tokens", headers=h["submit"]).status_code == 403
    listed = c.get("/tokens", headers=h["admin"])
    assert listed.status_code == 200
    states = {t["name"]: (t["scope"], t["state"]) for t in listed.json()}
    assert states == {"read-token": ("read", "active"), "submit-token": ("submit", "active"),
                      "admin-token": ("admin", "active"), "old": ("admin", "expired"), "gone": ("admin", "revoked")}
    assert "token_hash" not in listed.text


def test_health_without_token_says_only_ok_or_degraded(secured: Any) -> None:
    c, h = secured
    r = c.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "degraded", "problems": ["no live workers: jobs stay queued until one starts"],
                        "auth_required": True, "database": None, "broker": None, "workers": None}
    assert c.get("/health", headers={"Authorization": "Bearer wrong"}).json()["database"] is None
    full = c.get("/health", headers=h["read"]).json()
    assert full["database"] == {"ok": True, "detail": None} and full["broker"]["ok"] and full["workers"] == []


def test_tokens_cli_scopes_expiry_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path / "var", auth="on")
    monkeypatch.setenv("VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    try:
        assert tokens_cli(["create", "--name", "ci", "--scope", "read", "--expires-in", "30d"]) == 0
        raw = capsys.readouterr().out.strip()
        assert tokens_cli(["create", "--name", "ops", "--scope", "admin", "--expires-at", "2999-01-01"]) == 0
        capsys.readouterr()
        with pytest.raises(SystemExit):
            tokens_cli(["create", "--name", "x", "--expires-in", "soon"])
        assert "s, m, h, d or w" in capsys.readouterr().err
        assert tokens_cli(["list"]) == 0
        rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()[1:]]
        assert [(r[1], r[2], r[4]) for r in rows] == [("ci", "read", "active"), ("ops", "admin", "active")]
        assert rows[1][3] == "2999-01-01 00:00 UTC" and rows[0][3].startswith(str((utcnow() + timedelta(30)).date()))
        with TestClient(create_app(settings)) as c:
            bearer = {"Authorization": f"Bearer {raw}"}
            assert c.get("/jobs", headers=bearer).status_code == 200
            assert c.post("/demo", headers=bearer).status_code == 403
            assert tokens_cli(["revoke", "--id", rows[0][0]]) == 0
            assert c.get("/jobs", headers=bearer).status_code == 401
        assert tokens_cli(["revoke", "--name", "nobody"]) == 1
    finally:
        get_settings.cache_clear()


def test_migration_keeps_old_tokens_as_submit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_tokens (name, token_hash, created_at, revoked) "
                          "VALUES ('before', :h, '2026-01-01 00:00:00', 0)"), {"h": repo.hash_token("kdv_old")})
    upgrade(url)
    with make_sessionmaker(engine).begin() as s:
        token = repo.verify_token(s, "kdv_old")
        assert token is not None and token.scope == "submit" and token.expires_at is None
    engine.dispose()


# ------------------------------------------------------------------ item 14: numbers beyond 64 bits


@pytest.mark.parametrize("method,path,body", [
    ("GET", f"/jobs/{BIG}", None), ("POST", f"/jobs/{BIG}/cancel", None), ("POST", f"/jobs/{BIG}/resume", None),
    ("POST", f"/jobs/{BIG}/retry", None), ("GET", f"/jobs/{BIG}/logs", None), ("GET", f"/jobs/{BIG}/checkpoint", None),
    ("GET", f"/jobs/{BIG}/metrics", None), ("GET", f"/jobs/1/metrics?since_step={BIG}", None),
    ("GET", f"/jobs/{BIG}/events", None), ("GET", f"/jobs/1/events?after_id={BIG}", None),
    ("GET", f"/jobs?dataset_id={BIG}", None), ("GET", f"/jobs?offset={BIG}", None),
    ("GET", f"/experiments?offset=28181277151641413291", None), ("GET", f"/experiments/{BIG}", None),
    ("POST", f"/experiments/{BIG}/cancel", None), ("GET", f"/datasets/{BIG}", None), ("GET", f"/datasets?offset={BIG}", None),
    ("POST", "/jobs", {"kind": "pretrain", "dataset_id": int(BIG)}),
    ("POST", "/jobs", {"kind": "distill", "dataset_id": 1, "teacher_job_id": int(BIG)}),
    ("POST", "/jobs", {"kind": "finetune", "dataset_id": 1, "source_job_id": int(BIG)}),
    ("POST", "/jobs", {"kind": "pretrain", "dataset_id": 1, "after_job_id": int(BIG)}),
    ("POST", "/jobs", {"kind": "pretrain", "dataset_id": 1, "seed": int(BIG)}),
    ("POST", "/experiments", {"dataset_id": int(BIG)}), ("POST", "/experiments", {"dataset_id": 1, "seeds": [int(BIG)]}),
    ("POST", f"/predict?model={BIG}", None),
    ("POST", "/datasets", {"path": "x", "subset": 5e-324}),
])
def test_numbers_beyond_64_bit_are_4xx(client: TestClient, method: str, path: str, body: Any) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code in (404, 422), (r.status_code, r.text)
    if r.status_code == 422:
        assert isinstance(r.json()["detail"], list) and r.json()["detail"][0]["loc"]


def test_predict_form_model_beyond_64_bit_is_422(client: TestClient) -> None:
    r = client.post("/predict", files={"file": ("a.avi", b"RIFF....AVI LIST")}, data={"model": BIG})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "model"]
