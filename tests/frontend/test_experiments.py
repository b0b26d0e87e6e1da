"""The Experiments page in a real browser: the New experiment form (defaults shown, the job estimate, a 422 beside
its field), a tiny pair grid submitted from it and listed with its jobs, then cancelled from its Compare page."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_new_experiment_form_submit_and_cancel(page: Any, server: Any, console: Any, shots: Any) -> None:
    console.allow(r"Failed to load resource: the server responded with a status of 422")
    made = server.post("/datasets/synthetic", {"name": "grid_form_set", "classes": 3, "videos_per_class": 4,
                                               "frames": 64, "width": 48, "height": 36})  # default clips fit
    assert server.wait_job(made["job"]["id"], timeout=120)["status"] == "completed"  # rendered by the worker
    ds = made["dataset"]
    defaults = server.get("/jobs/defaults?kind=pretrain")["values"]
    page.goto("/#/experiments")
    page.get_by_role("button", name="New experiment").click()
    form = page.locator("#experiment-form")
    form.get_by_label("Dataset").select_option(str(ds["id"]))
    estimate = form.locator("[data-testid=experiment-estimate]")

    # defaults are shown; the estimate follows the grid (full: 3 teachers x 3 students, baselines, 3 fractions)
    assert form.get_by_label("Grid").input_value() == "pair"
    assert form.get_by_label("Epochs", exact=True).get_attribute("placeholder") == str(defaults["epochs"])
    assert form.get_by_label("Teacher", exact=True).input_value() == "r3d" and form.get_by_label("Student").input_value() == "r3d"
    assert form.get_by_label("Teacher epochs").get_attribute("placeholder") == str(defaults["epochs"])
    assert form.get_by_label("Distil").locator("option").first.inner_text() == "default (both)"  # the grid's KD target
    assert form.locator("[data-field=backbones]").is_hidden()
    form.get_by_label("Grid").select_option("full")
    assert form.get_by_label("c3d", exact=True).is_checked()
    page.wait_for_function("() => document.querySelector('[data-testid=experiment-estimate]').dataset.jobs === '42'")
    assert "42 jobs: 3 teachers, 12 KD students, 6 no-KD baselines and 21 fine-tunes" in estimate.inner_text()
    form.get_by_label("Grid").select_option("pair")

    form.get_by_label("Name").fill("form grid")
    form.get_by_label("Student").select_option("c3d")
    form.get_by_label("Width", exact=True).fill("5")  # over JobCreate's limit of 4: the 422 lands beside the field
    form.get_by_label("Clip", exact=True).select_option("tiny")
    for label, value in (("Epochs", "30"), ("Batch size", "4"), ("Max steps / epoch", "2"), ("NCE negatives", "16"),
                         ("Fine-tune epochs", "1"), ("Validation videos", "0"), ("Test clips / video", "1"),
                         ("Data loader workers", "0")):
        form.get_by_label(label, exact=True).fill(value)
    page.wait_for_function("() => document.querySelector('[data-testid=experiment-estimate]').dataset.jobs === '6'")
    assert "1 teacher, 1 KD student, 1 no-KD baseline and 3 fine-tunes" in estimate.inner_text()
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays at the top of a full-page shot
    shots(page, "15-new-experiment")
    form.get_by_role("button", name="Start experiment").click()
    err = form.locator("[data-error-for=width]")
    err.wait_for()
    assert "width" in err.inner_text() and "4" in err.inner_text()
    assert server.get("/experiments")["data"] == [] or all(e["name"] != "form grid"
                                                            for e in server.get("/experiments")["data"])
    page.evaluate("window.scrollTo(0, 0)")
    shots(page, "16-new-experiment-validation")

    form.get_by_label("Width", exact=True).fill("0.125")
    form.get_by_role("button", name="Start experiment").click()
    page.locator(".toast").filter(has_text="queued: 6 jobs").wait_for()
    exp = next(e for e in server.get("/experiments")["data"] if e["name"] == "form grid")
    row = page.locator(f"[data-testid=experiments-table] tr[data-experiment-id='{exp['id']}']")
    row.wait_for()
    assert page.locator("#new-experiment").is_hidden()
    assert row.locator("td").nth(5).inner_text().startswith("6")  # the Jobs column: 6 and their statuses
    request = server.get(f"/experiments/{exp['id']}")["request"]
    assert request["pair"] == ["r3d", "c3d"] and request["width"] == 0.125 and request["finetune_epochs"] == 1
    shots(page, "17-experiments-listed")

    row.get_by_role("link", name="form grid").click()
    page.wait_for_url(f"**/#/compare?experiment={exp['id']}*")
    page.get_by_role("button", name=f"Cancel experiment #{exp['id']}").click()
    page.locator(".toast").filter(has_text="unfinished jobs are cancelled").wait_for()
    page.locator(".lede .badge.status-cancelled").wait_for(timeout=90_000)  # the running teacher stopped too
    table = page.locator("[data-testid=experiment-table]")
    table.locator("tbody tr").first.wait_for()
    statuses = table.locator("tbody tr td:nth-child(7) .badge").all_inner_texts()
    assert statuses == ["Cancelled"] * 3, statuses
    page.wait_for_function("() => [...document.querySelectorAll('.run-list .badge')].every(b => b.matches('.status-cancelled'))")
    jobs = server.get(f"/experiments/{exp['id']}")
    assert jobs["counts"] == {"cancelled": 6} and jobs["status"] == "cancelled"
    assert page.get_by_role("button", name=f"Cancel experiment #{exp['id']}").is_hidden()
    shots(page, "18-experiment-cancelled")
