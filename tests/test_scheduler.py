"""The scheduler: a job per scheduled source, jobs kept in the database, one active scheduler."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from feedback.db import session_factory
from feedback.migrate import check
from feedback.models import JobRun, SchedulerLease
from jobs.scheduler import JOBSTORE_TABLE, job_specs, run_job, run_scheduler


@pytest.fixture
def scheduled(settings, tmp_path):
    """Settings declaring sources in the config file: scheduled, on demand, disabled, push."""
    path = tmp_path / "survey.csv"
    path.write_text(
        "external_id,text,created_at\ns1,Quick delivery,2026-09-01\ns2,Rude driver,2026-09-02\n"
    )
    return settings.model_copy(
        update={
            "scheduler": settings.scheduler.model_copy(
                update={"lease_seconds": 5, "tag_interval_seconds": 3600}
            ),
            "sources": [
                {
                    "name": "survey",
                    "connector": "file",
                    "schedule": "every 1s",
                    "options": {"path": str(path)},
                },
                {
                    "name": "nightly",
                    "connector": "file",
                    "schedule": "30 2 * * *",
                    "options": {"path": str(path)},
                },
                {"name": "adhoc", "connector": "file", "options": {"path": str(path)}},
                {
                    "name": "off",
                    "connector": "file",
                    "schedule": "every 5m",
                    "enabled": False,
                    "options": {"path": str(path)},
                },
                {"name": "app-push", "connector": "push", "schedule": "every 5m"},
            ],
        }
    )


def _wait(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _job_runs(engine, job: str) -> list[JobRun]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(JobRun).where(JobRun.job == job)))


def test_a_job_per_scheduled_source(scheduled) -> None:
    specs = {spec.name: spec for spec in job_specs(scheduled)}
    assert {"tag", "source:survey", "source:nightly"} <= set(specs)
    assert not {"source:adhoc", "source:off", "source:app-push"} & set(specs)
    assert isinstance(specs["source:survey"].trigger, IntervalTrigger)
    assert specs["source:survey"].trigger.interval.total_seconds() == 1
    assert isinstance(specs["source:nightly"].trigger, CronTrigger)
    assert "hour='2'" in str(specs["source:nightly"].trigger)


def test_jobs_list_and_run_from_the_cli(scheduled, engine, monkeypatch) -> None:
    from jobs import cli

    monkeypatch.setattr(cli, "_settings", lambda: scheduled)
    runner = CliRunner()
    listed = runner.invoke(cli.app, ["jobs", "list"])
    assert (
        listed.exit_code == 0
        and "source:survey" in listed.output
        and "source:nightly" in listed.output
    )
    ran = runner.invoke(cli.app, ["jobs", "run", "source:adhoc"])  # on demand works too
    assert ran.exit_code == 0, ran.output
    assert '"new": 2' in ran.output
    assert [r.status for r in _job_runs(engine, "source:adhoc")] == ["succeeded"]
    assert run_job(scheduled, "source:survey")["unchanged"] == 0  # the same file: not even read
    with pytest.raises(KeyError, match="no job named 'nope'"):
        run_job(scheduled, "nope")


def _start(settings, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=run_scheduler,
        args=(settings,),
        kwargs={"stop": stop, "poll_seconds": 0.2},
        daemon=True,
    )
    thread.start()
    return thread


def _stored_jobs(engine) -> dict[str, float]:
    with engine.connect() as conn:
        return {
            row.id: row.next_run_time
            for row in conn.execute(text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}"))
        }


def test_jobs_persist_in_the_database_and_survive_a_restart(
    scheduled, engine, light_client
) -> None:
    stop = threading.Event()
    thread = _start(scheduled, stop)
    try:
        assert _wait(
            lambda: (
                JOBSTORE_TABLE in inspect(engine).get_table_names()
                and "source:nightly" in _stored_jobs(engine)
            )
        )
        assert _wait(
            lambda: any(r.status == "succeeded" for r in _job_runs(engine, "source:survey"))
        )
        health = light_client.get("/health").json()["scheduler"]
        assert health["running"] is True and health["seconds_since_heartbeat"] < 5
    finally:
        stop.set()
        thread.join(10)
    before = _stored_jobs(engine)
    assert {"tag", "source:survey", "source:nightly"} <= set(before)
    check(scheduled.database_url)  # the job store's table is not model drift
    # The nightly pull fell due while the service was down ...
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)
    store.start(BackgroundScheduler(), "default")
    job = store.lookup_job("source:nightly")
    job._modify(next_run_time=datetime.now(UTC) - timedelta(hours=1))
    store.update_job(job)
    before = _stored_jobs(engine)

    stop = threading.Event()
    thread = _start(scheduled, stop)
    try:
        assert _wait(lambda: _job_runs(engine, "source:nightly"))
        time.sleep(0.3)
        after = _stored_jobs(engine)
    finally:
        stop.set()
        thread.join(10)
    # ... so it ran once when the scheduler came back, and is due again tomorrow at 02:30.
    assert [r.status for r in _job_runs(engine, "source:nightly")] == ["succeeded"]
    assert (
        after["source:nightly"] > time.time() and after["source:nightly"] % 86400 == 2 * 3600 + 1800
    )
    # Unchanged triggers keep their next run time across the restart.
    assert after["tag"] == before["tag"]


def _leaders(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "holds the lease" in r.getMessage()]


def _lease_holder(engine) -> str | None:
    with session_factory(engine)() as session:
        lease = session.get(SchedulerLease, "scheduler")
        return (
            lease.holder
            if lease is not None and lease.expires_at.timestamp() > time.time()
            else None
        )


def test_only_one_scheduler_runs_and_another_takes_over(scheduled, engine, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobs.scheduler")
    first_stop, second_stop = threading.Event(), threading.Event()
    first = _start(scheduled, first_stop)
    assert _wait(lambda: _lease_holder(engine) is not None)
    holder = _lease_holder(engine)
    second = _start(scheduled, second_stop)
    try:
        assert _wait(lambda: len(_leaders(caplog)) == 1)
        time.sleep(1.0)  # the second process keeps standing by
        assert len(_leaders(caplog)) == 1 and _lease_holder(engine) == holder
        first_stop.set()  # a clean stop releases the lease: the standby takes over at once
        first.join(10)
        assert _wait(lambda: _lease_holder(engine) not in (None, holder), timeout=5)
        assert _wait(lambda: len(_leaders(caplog)) == 2, timeout=10)
    finally:
        first_stop.set()
        second_stop.set()
        first.join(10)
        second.join(10)
