"""The ``wdnorm`` command line (console script ``wdnorm = "wdnorm.cli:main"``).

Sub-commands:

``wdnorm audit RESULTS_DIR [--config config.yaml] [--replay K] [--seed S] [--json]
[--data-dir DIR] [--remove-stale] ...``
    Check a results directory made somewhere else (see :mod:`wdnorm.audit`). Exit status
    0 when every check passes (skipped checks do not fail), 1 when one fails, 2 when the
    audit cannot run (bad arguments, no such directory, unreadable config).
    ``--remove-stale`` (needs ``--config``) first deletes the run directories the config
    no longer contains (listing each), then audits what is left.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command cannot run as asked (printed, exit status 2)."""


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .audit import CHECKS, DEFAULT_ATOL, DEFAULT_REPLAY_STEPS, DEFAULT_RTOL

    parser = argparse.ArgumentParser(
        prog="wdnorm", description="Replication pipeline for 'weight decay is useless "
                                   "without residual connections'.")
    parser.add_argument("--version", action="version", version=f"wdnorm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    audit = commands.add_parser(
        "audit", help="check that a results directory can be trusted",
        description="Check a results directory (possibly made elsewhere and copied): run "
                    "manifests and slab.json (integrity), the runs of a config "
                    "(completeness), provenance, a replay of K runs, and the claims' "
                    "verdicts. Exit status: "
                    "0 all checks pass, 1 a check failed, 2 the audit could not run.")
    audit.add_argument("results_dir", metavar="RESULTS_DIR", type=Path,
                       help="the results directory (holding runs/, tables/, claims.json)")
    audit.add_argument("--config", type=Path, metavar="YAML",
                       help="the config the results should have been made with (its "
                            "defaults come from the schema): enables the completeness "
                            "check and the config comparison of provenance and claims")
    audit.add_argument("--data-dir", type=Path, metavar="DIR",
                       help="data directory holding prepared/{dataset}.pt "
                            "(default: RESULTS_DIR/../data)")
    audit.add_argument("--replay", type=_non_negative, default=0, metavar="K",
                       help="re-train K randomly chosen runs for a prefix of their steps "
                            "and compare their loss trajectories (default 0: no replay)")
    audit.add_argument("--seed", type=int, metavar="S",
                       help="seed of the replay's choice of runs (default: drawn and "
                            "reported)")
    audit.add_argument("--replay-steps", type=_positive, default=DEFAULT_REPLAY_STEPS,
                       metavar="N", help=f"steps replayed per run (default "
                                         f"{DEFAULT_REPLAY_STEPS})")
    audit.add_argument("--rtol", type=float, default=DEFAULT_RTOL,
                       help=f"relative tolerance of the replayed losses (default "
                            f"{DEFAULT_RTOL:g})")
    audit.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                       help=f"absolute tolerance of the replayed losses (default "
                            f"{DEFAULT_ATOL:g})")
    audit.add_argument("--device", default="cpu",
                       help="torch device the replay trains on (default cpu)")
    audit.add_argument("--strict-code", action="store_true",
                       help="fail runs made at another commit or from a dirty tree even "
                            "when their training code is identical")
    audit.add_argument("--skip", action="append", choices=CHECKS, default=[],
                       metavar="CHECK", help=f"leave a check out (repeatable; one of "
                                             f"{', '.join(CHECKS)})")
    audit.add_argument("--remove-stale", action="store_true",
                       help="first delete the stale run directories: those the config's "
                            "grid does not contain and their slab.json does not list "
                            "(left by an earlier config; needs --config), printing each")
    audit.add_argument("--json", action="store_true",
                       help="print the full report as JSON instead of the summary")
    audit.add_argument("--max-lines", type=_non_negative, default=20, metavar="N",
                       help="problems and notes printed per check (0: all; default 20)")
    audit.set_defaults(func=run_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help/--version (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    return args.func(args)


# --------------------------------------------------------------------------- audit

def read_config(path: Path) -> dict:
    """The user's YAML config (the one named on the command line, never an implicit
    one)."""
    try:
        import yaml
    except ImportError:
        raise UsageError("--config needs PyYAML: pip install pyyaml") from None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read the config {path}: {error}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"the config {path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise UsageError(f"the config {path} is not a YAML mapping")
    return config


def run_audit(args: argparse.Namespace) -> int:
    from . import audit

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        config = read_config(args.config) if args.config else None
        if args.remove_stale:
            _remove_stale(args, config)
        report = audit.audit(
            args.results_dir, config=config, data_dir=args.data_dir, replay=args.replay,
            seed=args.seed, replay_steps=args.replay_steps, rtol=args.rtol, atol=args.atol,
            device=args.device, strict_code=args.strict_code,
            checks=tuple(c for c in audit.CHECKS if c not in args.skip), log=progress)
    except (UsageError, audit.AuditError) as error:
        print(f"wdnorm audit: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(format_report(report, max_lines=args.max_lines))
    return EXIT_OK if report.ok else EXIT_FAILED


def _remove_stale(args: argparse.Namespace, config: dict | None) -> None:
    """Delete the stale run directories, one line each (on stderr with --json, whose
    stdout is the report)."""
    from . import audit

    if config is None:
        raise UsageError("--remove-stale needs --config: only the config tells a stale "
                         "run directory from a damaged slab")
    out = sys.stderr if args.json else sys.stdout
    try:
        removed = audit.remove_stale_runs(
            args.results_dir, config, log=lambda rel: print(f"removed {rel}", file=out))
    except OSError as error:
        raise UsageError(f"stopped removing stale run directories: {error}") from None
    if not removed:
        print(f"nothing stale in {args.results_dir}", file=out)
    out.flush()


def format_report(report, max_lines: int = 20) -> str:
    """The readable summary of an :class:`wdnorm.audit.AuditReport`."""
    lines = [f"wdnorm audit of {report.results_dir} ({report.n_runs} run directories; "
             f"data: {report.data_dir})"]
    width = max(len(c.name) for c in report.checks) if report.checks else 0
    for check in report.checks:
        lines.append(f"{check.name:<{width}}  {check.status.upper():<4}  {check.summary}")
        lines += _capped([f"    - {p}" for p in check.problems], max_lines)
        lines += _capped([f"    note: {n}" for n in check.notes], max_lines)
    if report.ok:
        skipped = [c.name for c in report.checks if c.status == "skip"]
        lines.append("result: PASS" + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    else:
        lines.append(f"result: FAIL ({', '.join(report.failed)})")
    return "\n".join(lines)


def _capped(lines: list[str], max_lines: int) -> list[str]:
    if max_lines and len(lines) > max_lines:
        return lines[:max_lines] + [f"    ... and {len(lines) - max_lines} more "
                                    "(--max-lines 0 or --json for all)"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
