"""Runs whose process is gone: found and marked failed, so they stop holding the queue.

A run launched by ``playbook run`` executes in that command's own process. When the process is
killed (SIGKILL, a closed terminal, an out-of-memory kill) nothing reports the run's end: it
stays ``STARTED`` for ever, counts against ``concurrency.runs.max_concurrent_runs`` and its
pool's limit, and runs launched from the UI then wait in the queue indefinitely. Dagster's run
monitoring cannot see these runs (it asks the run launcher about the run's worker, and a
command-line run has none; Dagster's default run launcher cannot tell either for the runs it
launches), so each command-line run carries its process (``process_tags``), a playbook's op
tags a run launched from the UI with its run worker's process when it runs in it (the
in-process executor), and ``reap_dead_runs`` marks failed, through Dagster's API, every run
whose process no longer exists on this host, and frees its concurrency slots.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dagster as dg
import psutil

TAG_PID = "playbook/pid"
TAG_HOST = "playbook/host"
TAG_PROCESS_STARTED = "playbook/process_started"

# Statuses of a run that has not ended.
_UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# psutil gives a process's start time in seconds since the epoch, computed from the boot time
# and the process's start tick: the same process always reads the same value, a process that
# reused the pid reads a later one.
_START_TIME_TOLERANCE_SECONDS = 1.0


@dataclass(frozen=True)
class ProcessIdentity:
    """A process, told apart from a later one that reuses its pid."""

    pid: int
    host: str
    started: float

    @classmethod
    def current(cls) -> ProcessIdentity:
        """This process."""
        process = psutil.Process()
        return cls(pid=process.pid, host=socket.gethostname(), started=process.create_time())

    @classmethod
    def from_tags(cls, tags: dg.TagsDict | dict[str, str]) -> ProcessIdentity | None:
        """The process recorded in a run's tags, if the run has one."""
        try:
            return cls(
                pid=int(tags[TAG_PID]),
                host=tags[TAG_HOST],
                started=float(tags[TAG_PROCESS_STARTED]),
            )
        except (KeyError, ValueError):
            return None

    def tags(self) -> dict[str, str]:
        """Run tags recording this process."""
        return {
            TAG_PID: str(self.pid),
            TAG_HOST: self.host,
            TAG_PROCESS_STARTED: f"{self.started:.3f}",
        }

    def is_alive(self) -> bool:
        """Whether this very process still runs (a zombie has ended; a reused pid is another
        process). Only meaningful on the process's own host."""
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(process.create_time() - self.started) <= _START_TIME_TOLERANCE_SECONDS
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            # AccessDenied on a pid means another user's process: not ours, which has ended.
            return False


def process_running_since(pid: int, timestamp: float) -> bool:
    """Whether process ``pid`` runs on this host and started before ``timestamp`` (seconds
    since the epoch): a process started later only reuses the pid of the one that ended."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= timestamp + _START_TIME_TOLERANCE_SECONDS
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # it exists, and its start cannot be read: assume it is the owner


def process_tags() -> dict[str, str]:
    """Tags for a run executed in this process (see ``reap_dead_runs``)."""
    return ProcessIdentity.current().tags()


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose recorded process has ended on this host, and
    free its concurrency slots; return their run ids.

    Runs without a recorded process (launched from the UI, a schedule or a sensor) are left
    to Dagster's run monitoring; runs recorded on another host are left alone, since their
    process cannot be checked from here.
    """
    host = socket.gethostname()
    reaped: list[str] = []
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=_UNFINISHED))
    for record in records:
        run = record.dagster_run
        process = ProcessIdentity.from_tags(run.tags)
        if process is None or process.host != host or process.is_alive():
            continue
        instance.report_run_failed(
            run,
            message=(
                f"The process that ran this run (pid {process.pid} on {process.host}) ended "
                "without reporting the run's end (it was killed); marked as failed."
            ),
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped
