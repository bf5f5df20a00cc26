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
from typing import TYPE_CHECKING

import click

from reconcile import logs
from reconcile.config import LOG_FORMATS
from reconcile.errors import ExitCode, ReconcileError

if TYPE_CHECKING:
    from reconcile.config import Settings

log = logging.getLogger("reconcile")

INTERNAL_ERROR = 70  # EX_SOFTWARE


_log_format_option = click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    help="text (default), or json: one JSON object a line on stderr, for log collectors.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log lines on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@_log_format_option
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool, log_format: str | None) -> None:
    """Find and repair tutorial progress lost between localStorage and PostgreSQL."""
    logs.configure(verbose=verbose, quiet=quiet, fmt=log_format or "text")
    ctx.obj = {"debug": debug, "verbose": verbose, "quiet": quiet, "log_format": log_format}


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
@click.option(
    "--database-url",
    help="postgresql://user:pass@host/db (else $DATABASE_URL or [database] url).",
)
@click.option(
    "--exports",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Export files or folders (read recursively); repeat or list several.",
)
@click.argument("more_exports", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder that receives <run-id>/ and the run history (default: reports).",
)
@_config_option
@click.option(
    "--fail-on",
    metavar="POLICY",
    help="What makes the run exit 1: actionable (default), critical, never, or rules "
    "like 'at_risk>100,failed_critical_checks>0' (see README).",
)
@_log_format_option
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
@click.pass_context
def run(
    ctx: click.Context,
    database_url: str | None,
    exports: tuple[Path, ...],
    more_exports: tuple[Path, ...],
    out: Path | None,
    config_path: Path | None,
    fail_on: str | None,
    log_format: str | None,
    workers: int | None,
    partitions: int | None,
    scheduler: str | None,
    keep: int | None,
) -> None:
    """Compare the backend table with the exports; write report, diff and repair SQL.

    Prints the run folder on stdout. Exit code 1 means the run found what --fail-on
    names (by default: keys to repair or review, or a failed check).
    """
    from reconcile.partitions import Execution
    from reconcile.pipeline import run_job

    given = {
        "database.url": ("--database-url", database_url),
        "run.exports": ("--exports", [*exports, *more_exports] or None),
        "run.out": ("--out", out),
        "run.fail_on": ("--fail-on", fail_on),
        "run.log_format": ("--log-format", log_format or (ctx.obj or {}).get("log_format")),
    }
    settings = _settings(config_path, given)
    if not settings.exports:
        raise click.UsageError("Missing option '--exports' (or [run] exports in the config).")
    result = run_job(
        database_url=_database_url(settings),
        exports=list(settings.exports),
        out=settings.out,
        config=settings.config,
        execution=Execution(workers=workers, partitions=partitions, scheduler=scheduler),
    )
    click.echo(str(result.run_dir))
    if keep is not None:
        from reconcile.outputs.folder import prune_runs

        prune_runs(result.run_dir.parent, keep)
    log.info(
        "run %s exit %d: %d at risk, %d failed checks%s, run folder %s",
        result.run_id,
        result.exit_code,
        result.totals.at_risk,
        len(result.failed_checks),
        _rule(result.exit_policy["rule"]),
        result.run_dir,
        extra={
            "exit_code": int(result.exit_code),
            "at_risk": result.totals.at_risk,
            "failed_checks": len(result.failed_checks),
            "run_dir": str(result.run_dir),
        },
    )
    raise SystemExit(int(result.exit_code))


def _rule(rule: str | None) -> str:
    return "" if rule is None else f" (exit 1 by {rule})"


def _settings(config_path: Path | None, given: dict[str, tuple[str, object]]) -> Settings:
    """The layered settings; the log is set up again when they choose its format."""
    from reconcile.config import resolve_settings

    flags = {key: pair for key, pair in given.items() if pair[1] is not None}
    settings = resolve_settings(config_path, flags=flags)
    for secret in _passwords(settings.database_url):
        logs.add_secret(secret)
    obj = click.get_current_context().find_root().obj or {}
    if settings.config.log_format != (obj.get("log_format") or "text"):
        logs.configure(
            verbose=obj.get("verbose", 0),
            quiet=obj.get("quiet", False),
            fmt=settings.config.log_format,
        )
    return settings


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise click.UsageError(
            "Missing option '--database-url' (or $DATABASE_URL, or [database] url in the config)."
        )
    return settings.database_url


def _passwords(url: str | None) -> list[str]:
    """The URL's passwords (userinfo, ``?password=``, ``?sslpassword=``), to mask in the log."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url or "")
        query = parse_qsl(parts.query)
        found = [unquote(parts.password or "")]
    except ValueError:
        return []
    return [v for v in found + [v for k, v in query if "password" in k.lower()] if v]


@cli.command("config")
@_config_option
def show_config(config_path: Path | None) -> None:
    """Print the effective configuration and where each value came from (passwords masked).

    Sources, later winning: default, the TOML file (--config, else ./reconcile.toml),
    the environment (DATABASE_URL, RECONCILE_<SECTION>_<KEY>).
    """
    from reconcile.config import resolve_settings, show_settings

    click.echo(show_settings(resolve_settings(config_path)), nl=False)


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
    signal.signal(signal.SIGTERM, _terminate)  # exit 143; Ctrl-C (SIGINT) exits 130
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
