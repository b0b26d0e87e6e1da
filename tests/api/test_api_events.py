"""The job event stream on fastapi.sse (issue 14 item 5): a missing job is a JSON 404 before any stream starts;
the stream opens with the reconnect delay, sends keepalive comments while nothing changes, and ends with the job."""

from __future__ import annotations

from fastapi.testclient import TestClient

from persistence import repo
from service_helpers import render_dataset, tiny


def test_missing_job_is_a_json_404_not_a_stream(client: TestClient) -> None:
    r = client.get("/jobs/987654/events")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    assert "job 987654 not found" in r.json()["detail"]


def test_stream_keeps_alive_while_idle_and_ends_with_the_job(client: TestClient) -> None:
    dataset = render_dataset(client)
    job = client.post("/jobs", json=tiny("pretrain", dataset["id"])).json()
    seen: list[str] = []
    with client.stream("GET", f"/jobs/{job['id']}/events", params={"poll_s": 0.1, "keepalive_s": 1}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        for line in r.iter_lines():
            seen.append(line)
            if line == ": keepalive":  # the queued job changed nothing for keepalive_s: now it is cancelled
                with client.app.state.sessions.begin() as s:
                    assert repo.request_cancel(s, job["id"]) is not None
    assert seen[0] == "retry: 2000"
    assert seen.index("event: status") < seen.index(": keepalive") < seen.index("event: end")
    assert seen[-2] == 'data: {"status": "cancelled"}'
