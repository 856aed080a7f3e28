"""Log lines are what an operator reads when something went wrong in a long-running process."""

from __future__ import annotations

import json

import pytest
import structlog

from fairsub.bootstrap import configure_logging


def test_a_logged_exception_says_what_went_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    # The worker and the relay log failures with log.exception(): a pass that failed because
    # the database went away must say so, not only `"exc_info": true`.
    configure_logging("info")
    log = structlog.get_logger("test")
    try:
        raise ConnectionError("connection to server at 127.0.0.1 failed")
    except ConnectionError:
        log.exception("worker_pass_failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1  # still one JSON line
    entry = json.loads(lines[0])
    assert entry["event"] == "worker_pass_failed"
    assert "ConnectionError: connection to server at 127.0.0.1 failed" in entry["exception"]
    assert "exc_info" not in entry
