"""Clocks. All 'now' in fairsub comes from one of these."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetFileClock:
    """The test clock (FAIRSUB_CLOCK=test): real time plus an offset kept in a file, so the
    CLI, the web server and the worker — separate processes — agree on what day it is, and
    time still flows between moves. `advance` and `set` only ever move the offset."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> timedelta:
        try:
            seconds = json.loads(self.path.read_text())["offset_seconds"]
        except (FileNotFoundError, ValueError, KeyError):
            return timedelta(0)
        return timedelta(seconds=float(seconds))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset()

    def _save(self, offset: timedelta) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".clock-")
        with os.fdopen(handle, "w") as file:
            json.dump({"offset_seconds": offset.total_seconds()}, file)
        os.replace(temporary, self.path)  # atomic: readers never see half a file

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the test clock only moves forward")
        self._save(self.offset() + delta)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("give the time with its zone, e.g. 2027-01-31T09:00:00+00:00")
        if moment < self.now():
            raise ValueError("the test clock only moves forward")
        self._save(moment - datetime.now(UTC))
        return self.now()
