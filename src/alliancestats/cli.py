"""The ``alliancestats`` command.

``alliancestats report [DATA] --out DIR``
    Fit the PRN analysis (growth, truth-and-bias, lagged RSA by condition) to a data file
    (default: the bundled simulated ``prn`` data set) and write ``report.html``,
    ``estimates.csv`` and ``figures/`` to DIR. Column options map the roles to the
    file's column names.
``alliancestats power --out DIR ...``
    Monte-Carlo power grid (see ``alliancestats power --help``).

Input errors (missing file, unknown column, unreadable data, an output directory that
cannot be written) print one line on stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from . import __version__

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


def _report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .report import write_report

    roles = {r: getattr(args, r) for r in _ROLE_OPTIONS if getattr(args, r) is not None}
    data, source = None, None
    if args.data is not None:
        from .data import read_data

        data, source = read_data(args.data), str(args.data)
    call = shlex.join(["alliancestats", *argv])
    write_report(data, out=args.out, roles=roles, source=source, call=call,
                 progress=not args.quiet)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 success, 2 bad input)."""
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
