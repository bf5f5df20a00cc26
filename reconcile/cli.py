"""Command line: parse arguments, call the library, map the outcome to an exit code.

Exit codes (see :class:`reconcile.errors.ExitCode`): 0 nothing actionable, 1 something
actionable found, 2 usage or configuration error, 3 a source could not be read,
70 an internal error (a bug: rerun with ``--debug`` and report it).
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType

import click

from reconcile.errors import ExitCode, ReconcileError

log = logging.getLogger("reconcile")

INTERNAL_ERROR = 70  # EX_SOFTWARE


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if verbose == 0 and not quiet:
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel(level)
    for noisy in ("great_expectations", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.captureWarnings(True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Find and repair tutorial progress lost between localStorage and PostgreSQL."""
    _configure_logging(verbose, quiet)
    ctx.obj = {"debug": debug}


_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file with settings (table, schema, thresholds).",
)
_url_option = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    required=True,
    help="postgresql://user:pass@host/db (default: $DATABASE_URL).",
)


@cli.command()
@_url_option
@click.option(
    "--exports",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path),
    help="Export files or folders (read recursively); repeat or list several.",
)
@click.argument("more_exports", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--out",
    default=Path("reports"),
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder that receives <run-id>/ and the run history.",
)
@_config_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes for the per-key work (default: 1, this process; see README).",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    help="Hash partitions of user_id (default: one per worker); outputs do not depend on it.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run the partitions on this Dask cluster (tcp://host:8786) instead of locally.",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    metavar="N",
    help="After the run, delete the oldest run folders beyond the newest N (history kept).",
)
def run(
    database_url: str,
    exports: tuple[Path, ...],
    more_exports: tuple[Path, ...],
    out: Path,
    config_path: Path | None,
    workers: int | None,
    partitions: int | None,
    scheduler: str | None,
    keep: int | None,
) -> None:
    """Compare the backend table with the exports; write report, diff and repair SQL.

    Prints the run folder on stdout. Exit code 1 means the run found keys to repair or
    review, or a failed check.
    """
    from reconcile.config import load_config
    from reconcile.partitions import Execution
    from reconcile.pipeline import run_job

    result = run_job(
        database_url=database_url,
        exports=[*exports, *more_exports],
        out=out,
        config=load_config(config_path),
        execution=Execution(workers=workers, partitions=partitions, scheduler=scheduler),
    )
    click.echo(str(result.run_dir))
    if keep is not None:
        from reconcile.outputs.folder import prune_runs

        prune_runs(result.run_dir.parent, keep)
    raise SystemExit(int(result.exit_code))


@cli.command()
@click.option(
    "--workdir",
    default=Path("reports/demo-data"),
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the embedded PostgreSQL and the generated exports live.",
)
@click.option(
    "--out",
    default=Path("reports"),
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder that receives the run.",
)
@click.option("--users", default=3000, show_default=True, help="Users to generate.")
@click.option("--seed", default=20260120, show_default=True, help="Random seed.")
def demo(workdir: Path, out: Path, users: int, seed: int) -> None:
    """Start an embedded PostgreSQL, fill it and an exports folder, and run the job.

    Exits 0 when the run completed: its findings are the point of a demo.
    """
    from reconcile.demo.run import run_demo

    result = run_demo(workdir, out, users=users, seed=seed)
    summary = result.summary
    counts = summary["counts"]
    click.echo(
        f"run {result.run_id}: {counts['backend_rows']} backend rows, "
        f"{counts['local_records']} local records, {counts['quarantined']} quarantined"
    )
    for name, value in counts.items():
        click.echo(f"  {name:<22} {value}")
    click.echo(
        f"migration success rate {summary['migration_success_rate']:.1%}, "
        f"{summary['at_risk']} keys at risk"
    )
    click.echo(f"report: {result.run_dir / 'index.html'}")


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@_url_option
@click.option(
    "--dry-run", is_flag=True, help="Run the repair in a transaction that is rolled back."
)
@_config_option
def apply(target: Path, database_url: str, dry_run: bool, config_path: Path | None) -> None:
    """Apply a run's repair.sql (TARGET: the run folder or the file) in one transaction."""
    from reconcile.config import load_config
    from reconcile.repair.apply import apply_repair, render_apply_report

    report = apply_repair(database_url, target, dry_run=dry_run, config=load_config(config_path))
    click.echo(render_apply_report(report))


@cli.command()
@click.argument("user_id")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    help="The run folder (default: the latest run in --out).",
)
@click.option(
    "--out",
    default=Path("reports"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder holding the runs (as given to `reconcile run --out`).",
)
@click.option("--color/--no-color", default=None, help="Colour (default: when stdout is a TTY).")
def user(user_id: str, run_dir: Path | None, out: Path, color: bool | None) -> None:
    """Print USER_ID's card: each tutorial, both sides, what the repair does.

    Exit code 0 when the user is in the run, 1 when the id is not in it.
    """
    from reconcile.errors import ConfigError
    from reconcile.outputs.artifacts import latest_run, load_run
    from reconcile.outputs.cards import NOT_IN_RUN, render_text, user_card
    from reconcile.quoting import show

    if run_dir is None:
        try:
            run_dir = latest_run(out)
        except FileNotFoundError:
            raise ConfigError(
                f"no completed run in {show(str(out))}: pass --run DIR or --out DIR"
            ) from None
    if not run_dir.is_dir():
        raise ConfigError(f"no run folder at {show(str(run_dir))}: pass an existing --run DIR")
    try:
        run = load_run(run_dir)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{show(str(run_dir))} is not a readable run folder ({exc})") from None
    card = user_card(run, user_id)
    if card is None:
        click.echo(f"reconcile: user {show(user_id)} is {NOT_IN_RUN} {run.run_id}", err=True)
        raise SystemExit(1)  # a lookup that found nothing, like grep
    tty = sys.stdout.isatty()
    click.echo(render_text(card, color=tty if color is None else color), nl=False, color=color)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: the temporary run folder is removed


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command and turn every failure into an exit code.

    ``--debug`` changes no exit code: it only prints the traceback before the error line.
    """
    signal.signal(signal.SIGTERM, _terminate)
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="reconcile", standalone_mode=False)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 0
    except click.exceptions.Abort:
        _error("interrupted")
        return 130
    except click.ClickException as exc:
        _error(exc.format_message())  # a usage error: its traceback is click's
        return ExitCode.USAGE
    except ReconcileError as exc:
        _error(str(exc), debug=debug)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # a bug: say so in one line, the traceback with --debug
        hint = "" if debug else " (rerun with --debug)"
        _error(f"internal error: {type(exc).__name__}: {exc}{hint}", debug=debug)
        return INTERNAL_ERROR
    return ExitCode.OK


def _error(message: str, *, debug: bool = False) -> None:
    """The one error line on stderr; with ``debug``, the current traceback before it."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    line = " ".join(str(message).split())
    click.echo(f"reconcile: error: {line}", err=True)


if __name__ == "__main__":
    sys.exit(main())
