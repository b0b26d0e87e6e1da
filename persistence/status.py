"""Job status and the one function that says which transitions are allowed."""

from __future__ import annotations

import enum


class JobStatus(str, enum.Enum):
    WAITING = "waiting"  # chained: starts when its predecessor completes
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.WAITING: frozenset({JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # running -> queued: re-queued after a lost worker, a graceful worker shutdown or a transient error
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}),
    # resume; -> waiting: a job abandoned because its dependency ended waits again when that dependency resumes
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.WAITING}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.WAITING}),
    JobStatus.COMPLETED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, old: JobStatus, new: JobStatus) -> None:
        allowed = ", ".join(sorted(s.value for s in _ALLOWED[old])) or "none (final)"
        super().__init__(f"a {old.value} job cannot become {new.value}; allowed from {old.value}: {allowed}")
        self.old = old
        self.new = new


def can_transition(old: JobStatus, new: JobStatus) -> bool:
    return new in _ALLOWED[old]


def check_transition(old: JobStatus, new: JobStatus) -> None:
    """Raise InvalidTransition unless ``old -> new`` is allowed."""
    if not can_transition(old, new):
        raise InvalidTransition(old, new)


def sources_for(new: JobStatus) -> frozenset[JobStatus]:
    """Every status that may move to ``new`` (used to build guarded UPDATE ... WHERE status IN (...))."""
    return frozenset(old for old, targets in _ALLOWED.items() if new in targets)
