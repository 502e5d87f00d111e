"""Options several sub-commands share."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """A positive integer argument."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def add_page_options(parser: argparse.ArgumentParser, after: str = "ID") -> None:
    """--limit and --after of a listing (newest first); after is the metavar of a row's id (an
    integer unless it is JOB_ID)."""
    parser.add_argument("--limit", type=positive, default=100, help="at most this many (100)")
    parser.add_argument(
        "--after",
        metavar=after,
        type=str if after == "JOB_ID" else int,
        help="continue the listing after this one (the last of the previous page)",
    )
