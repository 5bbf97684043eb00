"""The ``alliancestats`` command.

``alliancestats report [DATA] --out DIR``
    Fit the PRN analysis (growth, truth-and-bias, lagged RSA by condition) to a data file
    (default: the bundled simulated ``prn`` data set) and write ``report.html``,
    ``estimates.csv`` and ``figures/`` to DIR. Column options map the roles to the
    file's column names.
``alliancestats power --out DIR ...``
    Monte-Carlo power grid (see ``alliancestats power --help``).

Input errors (missing file, unknown column, unreadable data, an output directory that
cannot be written) print one line on stderr and exit with status 2; no traceback. A
report in which a model section failed is still written, but the command says which
section failed on stderr and exits with status 1 unless ``--keep-going`` is given.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["build_parser", "main"]

_ROLE_OPTIONS = ("therapist", "patient", "session", "condition", "alliance_therapist",
                 "alliance_patient", "wellbeing")


def _add_report(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser(
        "report", help="fit the PRN models and write an HTML report",
        description="Fit growth, truth-and-bias and lagged RSA models to PRN data and "
                    "write report.html, estimates.csv and figures/ to --out.")
    rep.add_argument("data", nargs="?", default=None, metavar="DATA",
                     help="data file (.csv, .tsv, .xlsx, .sav, .dta, .parquet); default: "
                          "the bundled simulated 'prn' data set")
    rep.add_argument("--out", required=True, metavar="DIR", help="output directory")
    cols = rep.add_argument_group("column names (default: the role name)")
    for role in _ROLE_OPTIONS:
        cols.add_argument(f"--{role.replace('_', '-')}", dest=role, default=None,
                          metavar="COLUMN", help=f"column holding {role.replace('_', ' ')}")
    text = rep.add_argument_group("text files (.csv, .tsv)")
    text.add_argument("--sep", default=None, metavar="CHAR",
                      help="column separator (default: sniffed among , ; tab |)")
    text.add_argument("--decimal", default=None, metavar="CHAR",
                      help="decimal mark, e.g. ',' (default '.', or ',' for a ';'-separated "
                           "file with decimal commas)")
    text.add_argument("--encoding", default=None, metavar="NAME",
                      help="text encoding, e.g. latin-1 (default utf-8; a BOM is skipped)")
    rep.add_argument("--keep-going", action="store_true",
                     help="exit 0 even when a model section failed (the report says which)")
    rep.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``alliancestats`` command (with its subcommands)."""
    from .power import add_power_arguments

    parser = argparse.ArgumentParser(
        prog="alliancestats",
        description="Statistics of therapist-patient agreement in psychotherapy research.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_report(sub)
    power = sub.add_parser("power", help="Monte-Carlo power for a PRN trial design",
                           description="Monte-Carlo power grid for a PRN trial design.")
    add_power_arguments(power)
    return parser


_TEXT_OPTIONS = ("sep", "decimal", "encoding")


def _read(path: str, args: argparse.Namespace) -> pd.DataFrame:
    from .data import read_data

    options = {k: getattr(args, k) for k in _TEXT_OPTIONS if getattr(args, k) is not None}
    if options and Path(path).suffix.lower() not in {".csv", ".tsv", ".txt"}:
        given = ", ".join(f"--{k}" for k in options)
        raise ValueError(f"{given} only apply to text files (.csv, .tsv, .txt); "
                         f"{path!r} is read by its own format.")
    return read_data(path, **options)


def _report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .report import run_report

    roles = {r: getattr(args, r) for r in _ROLE_OPTIONS if getattr(args, r) is not None}
    data, source = None, None
    if args.data is not None:
        data, source = _read(args.data, args), str(args.data)
    call = shlex.join(["alliancestats", *argv])
    run = run_report(data, out=args.out, roles=roles, source=source, call=call,
                     progress=not args.quiet)
    if run.ok or args.keep_going:
        return 0
    for title, reason in run.failures:
        print(f"alliancestats report: failed: {title}: {reason}", file=sys.stderr)
    print(f"alliancestats report: {len(run.failures)} section(s) failed; the report "
          f"({run.path}) says why. Use --keep-going to exit 0 anyway.", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 success, 1 a report section failed,
    2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            return _report(args, argv)
        from .power import power_main

        return power_main(args)
    except (OSError, TypeError, ValueError) as exc:
        # Input problems (a missing or unreadable file, a bad column, an output directory
        # that cannot be written) are the user's to fix: one line, no traceback.
        message = " ".join(str(exc).split())
        print(f"alliancestats {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"alliancestats {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
