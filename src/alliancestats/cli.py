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
from typing import TYPE_CHECKING, Any

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
    parser = argparse.ArgumentParser(
        prog="alliancestats",
        description="Statistics of therapist-patient agreement in psychotherapy research.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_report(sub)
    _add_power(sub)
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


# --------------------------------------------------------------------------- power


def _add_power(sub: argparse._SubParsersAction) -> None:
    from .power._designs import DESIGNS
    from .power._orchestration import ENGINES

    parser = sub.add_parser(
        "power", help="Monte-Carlo power for a PRN trial design",
        description="Monte-Carlo power grid for a PRN trial design. Writes power.csv, "
                    "required_size.csv, replicates.csv, failures.csv, summary.txt, "
                    "power.png and checkpoint/ (re-running the same command resumes).")
    parser.add_argument("--design", default="truth_bias", choices=sorted(DESIGNS),
                        help="research question to power (default: truth_bias)")
    parser.add_argument("--therapists", default=None, metavar="N[,N...]",
                        help="numbers of therapists, comma-separated (a grid; default 40)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--patients", default=None, metavar="N[,N...]",
                      help="numbers of patients in all, comma-separated (default 117)")
    size.add_argument("--patients-per-therapist", type=float, default=None, metavar="X",
                      help="patients per therapist instead of --patients (a fixed "
                           "caseload: the grid then runs over therapists)")
    size.add_argument("--caseloads", default=None, metavar="N,N[,N...]",
                      help="patients of each therapist (unequal caseloads; fixes the "
                           "therapists and patients)")
    parser.add_argument("--sessions", default="6", metavar="N[,N...]",
                        help="sessions per patient, comma-separated")
    parser.add_argument("--missing", type=float, default=0.0, metavar="P",
                        help="probability of a missed session (MCAR)")
    parser.add_argument("--sims", type=int, default=1000, help="replicates per grid cell")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=None,
                        help="root seed (default: fresh, or the checkpoint's when resuming)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers (-1: all)")
    parser.add_argument("--backend", default=None,
                        help="joblib backend, 'dask' or a dask scheduler address")
    parser.add_argument("--engine", default="fast", choices=ENGINES)
    model = parser.add_argument_group(
        "fitted model (default: the analysis' own; see power() in the documentation)")
    model.add_argument("--random", default=None, metavar="NAME",
                       help="random-effects structure, e.g. auto, intercept (truth_bias) "
                            "or rater_slopes, slopes (growth)")
    model.add_argument("--residual", default=None, metavar="NAME",
                       help="residual structure: iid, ar1; rater, rater_ar1 (growth)")
    model.add_argument("--nesting", default="full", choices=("full", "partial"),
                       help="partial: therapists in the trained arm only")
    model.add_argument("--ddf", default=None, choices=("satterthwaite", "z"),
                       help="test of each term (default: satterthwaite, as the analysis)")
    model.add_argument("--test", action="append", default=None, metavar="TERM",
                       dest="targets", help="a built-in target to test instead of the "
                                            "design's default terms (repeatable)")
    parser.add_argument("--effect", action="append", default=[], metavar="NAME=VALUE",
                        help="override a simulator parameter (repeatable), e.g. gamma13=0.1")
    parser.add_argument("--null", action="store_true",
                        help="simulate under the null (type-I error) instead")
    parser.add_argument("--target", type=float, default=0.8,
                        help="power for the required-size table, in (0, 1) (default 0.8)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory (table, plot, checkpoint for resuming)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _parse_sizes(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"`{name}` must be comma-separated integers; got {text!r}.") from None


def _parse_effects(items: Sequence[str], null: bool, design: str) -> dict[str, float]:
    from .power import null_effects

    effects: dict[str, float] = null_effects(design) if null else {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            effects[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"`--effect` must look like NAME=NUMBER; got {item!r}.")
    return effects


def _power(args: argparse.Namespace) -> int:
    """Run ``alliancestats power``; write the outputs to ``--out``.

    Every option is checked before the first replicate is simulated (``--target``
    included), so a typo costs no simulation time.
    """
    import pandas as pd

    from ._format import csv_safe
    from ._validation import check_probability
    from .power import power

    check_probability(args.target, "--target")
    therapists = (None if args.therapists is None
                  else _parse_sizes(args.therapists, "--therapists"))
    caseloads = None if args.caseloads is None else _parse_sizes(args.caseloads, "--caseloads")
    sessions = _parse_sizes(args.sessions, "--sessions")
    # None = not given: power() then uses 117 patients, or the fixed caseload.
    patients = None if args.patients is None else _parse_sizes(args.patients, "--patients")
    effects = _parse_effects(args.effect, args.null, args.design)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = power(
        args.design,
        effects=effects,
        n_therapists=therapists,
        n_patients=patients,
        n_sessions=sessions,
        patients_per_therapist=args.patients_per_therapist,
        caseloads=caseloads,
        p_missing=args.missing,
        n_sims=args.sims,
        alpha=args.alpha,
        rng=args.seed,
        n_jobs=args.jobs,
        backend=args.backend,
        progress=not args.no_progress,
        checkpoint=out / "checkpoint",
        engine=args.engine,
        random=args.random,
        residual=args.residual,
        nesting=args.nesting,
        ddf=args.ddf,
        targets=args.targets,
    )
    # every CSV through csv_safe: term names and failure messages may carry user text
    csv_safe(res.power).to_csv(out / "power.csv", index=False)
    csv_safe(res.required_size(args.target)).to_csv(out / "required_size.csv", index=False)
    tables = {"estimate": res.estimates, "std_error": res.std_errors, "p_value": res.pvalues}
    long = {k: v.rename_axis(columns="term").stack() for k, v in tables.items()}
    csv_safe(pd.concat(long, axis=1).reset_index()).to_csv(out / "replicates.csv",
                                                           index=False)
    csv_safe(res.failures).to_csv(out / "failures.csv", index=False)
    text = str(res.summary())
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    _save_power_plot(res, out / "power.png")
    return 0


def _save_power_plot(res: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A figure of its own on the Agg canvas: the user's pyplot state and backend stay
    # untouched.
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    res.plot(ax=fig.add_subplot())
    fig.savefig(path, dpi=150, bbox_inches="tight")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 success, 1 a report section failed,
    2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "report":
            return _report(args, argv)
        return _power(args)
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
