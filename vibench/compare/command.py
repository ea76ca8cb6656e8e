"""``vibench compare BASE NEW``: the CI regression gate (exit 1 on any regression, 0
otherwise; bad input is a :class:`~vibench.spec.SpecError`, which the CLI turns into a
one-line error with exit code 2)."""

from __future__ import annotations

import argparse
import math
import sys

from vibench.compare.pairing import compare
from vibench.compare.render import RENDERERS
from vibench.compare.verdict import Thresholds
from vibench.harness.store import NotResultsError, nested_results, skipped_files_as_lines
from vibench.spec import SpecError


def thresholds(args: argparse.Namespace) -> Thresholds:
    """The thresholds of ``args``, each checked: ``--z`` > 0, ``--factor`` > 1, 0 <
    ``--alpha`` < 1."""
    for option, value, ok, valid in (
        ("--z", args.z, args.z > 0, "a number > 0"),
        ("--factor", args.factor, args.factor > 1, "a number > 1"),
        ("--alpha", args.alpha, 0 < args.alpha < 1, "a number between 0 and 1"),
    ):
        if not (math.isfinite(value) and ok):
            raise SpecError(f"{option} must be {valid}; got {value:g}")
    return Thresholds(args.z, args.factor, args.alpha)


def cmd_compare(args: argparse.Namespace) -> int:
    limits = thresholds(args)
    with skipped_files_as_lines():
        try:
            comparison = compare(args.base, args.new, limits)
        except NotResultsError as err:
            raise SpecError(str(err)) from None
    for directory in (args.base, args.new):
        for nested in nested_results(directory):
            print(f"vibench: note: not read: {nested}/ holds results of its own", file=sys.stderr)
    print(RENDERERS[args.format](comparison))
    return comparison.exit_code
