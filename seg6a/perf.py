"""Substep timer: every state times its substeps under the exact keys of SPEC §4."""
import time
from contextlib import contextmanager


class PerfRecorder:
    """Collects one event per timed substep: ``state, substep, seconds, rows``."""

    def __init__(self):
        self.events = []

    @contextmanager
    def substep(self, state, substep):
        """Time the body; the body may set ``event["rows"]`` to the rows it produced."""
        event = {"state": state, "substep": substep, "seconds": 0.0, "rows": 0}
        start = time.perf_counter()
        try:
            yield event
        finally:
            event["seconds"] = time.perf_counter() - start
            self.events.append(event)

    def state_seconds(self):
        """Total seconds per state, in first-seen order."""
        totals = {}
        for event in self.events:
            totals[event["state"]] = totals.get(event["state"], 0.0) + event["seconds"]
        return totals
