"""Exit codes and the exceptions that map to them.

Data problems (bad records, failed checks) are never raised: they are results with
reasons. Exceptions here are for input the job cannot use at all.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, for cron (SPEC 5).

    * ``OK`` (0): the run completed and found nothing actionable.
    * ``ACTIONABLE`` (1): the run completed and found something actionable: a key whose
      status has a repair or a review, or a failed check.
    * ``USAGE`` (2): usage or configuration error (bad flag, missing path, bad config or
      expectation suite).
    * ``SOURCE`` (3): a source could not be read (database unreachable, table missing,
      exports unreadable).
    """

    OK = 0
    ACTIONABLE = 1
    USAGE = 2
    SOURCE = 3


class ReconcileError(Exception):
    """Base of the errors a person can act on; ``str(error)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.USAGE


class ConfigError(ReconcileError):
    """The command line, the config file or an expectation suite is unusable."""

    exit_code = ExitCode.USAGE


class SourceError(ReconcileError):
    """A source (database, exports path) could not be read."""

    exit_code = ExitCode.SOURCE


class LockError(ReconcileError):
    """Another run holds the output folder's lock."""

    exit_code = ExitCode.USAGE
