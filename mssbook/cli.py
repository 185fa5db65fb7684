"""The ``mssbook`` command line (also ``python -m mssbook``).

One entry point with subcommands; each is a thin layer over the library function a script would
call. Errors the user can fix (:class:`mssbook.errors.MSSBookError`) print one clear line and exit
with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import __version__
from .errors import MSSBookError


# --------------------------------------------------------------------------------------------
# doctor
def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import collect, format_report

    report = collect()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


# --------------------------------------------------------------------------------------------
# toy: generate the embedded dataset
def _add_toy_size_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=None,
                   help="where to write the dataset (default: the data dir's toy/ folder)")
    p.add_argument("--train", type=int, default=None, help="training songs (besides validation)")
    p.add_argument("--valid", type=int, default=None, help="validation songs (under train/, listed in mus.yaml)")
    p.add_argument("--test", type=int, default=None, help="test songs")
    p.add_argument("--duration", type=float, default=None, help="seconds per song")
    p.add_argument("--seed", type=int, default=None, help="dataset seed")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="replace an existing toy dataset with other settings")


def _toy_settings(args: argparse.Namespace) -> dict:
    from .data.toy import toy_sizes

    settings = dict(toy_sizes())
    for key, arg in (("n_train", "train"), ("n_valid", "valid"), ("n_test", "test"),
                     ("duration", "duration"), ("seed", "seed")):
        value = getattr(args, arg)
        if value is not None:
            settings[key] = value
    return settings


def _default_toy_root() -> Path:
    from . import profile
    from .paths import data_dir

    return data_dir() / profile.choose(default="toy", ci="toy-ci")


def _generate_toy(args: argparse.Namespace) -> dict:
    from .data.toy import generate_toy_dataset

    root = args.root or _default_toy_root()
    return generate_toy_dataset(root=root, workers=args.workers, overwrite=args.force, **_toy_settings(args))


def cmd_toy(args: argparse.Namespace) -> int:
    from .data.toy import format_summary

    print(format_summary(_generate_toy(args)))
    return 0


# --------------------------------------------------------------------------------------------
# demo: the README's main job
def cmd_demo(args: argparse.Namespace) -> int:
    """Generate (or reuse) the toy dataset, then read it back through the real musdb package."""
    from .data.musdb import describe_musdb, open_musdb
    from .data.toy import format_summary

    start = time.perf_counter()
    print("== 1. toy dataset (MUSDB18 layout: train/, test/, <Artist - Title>/<stem>.wav)")
    summary = _generate_toy(args)
    print(format_summary(summary))
    root = Path(summary["root"])
    print("\n== 2. the same dataset read by the musdb package")
    for subsets, split in (("train", "train"), ("train", "valid"), ("test", None)):
        db = open_musdb(root, subsets=subsets, split=split, is_wav=True)
        info = describe_musdb(db)
        label = f"{subsets}/{split}" if split else subsets
        first = db.tracks[0]
        print(f"{label:<12} {info['n_tracks']:>3} tracks, {info['total_seconds']:.0f} s; "
              f"e.g. '{first.name}': {first.audio.shape[0] / first.rate:.1f} s, "
              f"{first.audio.shape[1]} channels, sources {', '.join(first.sources)}")
    print(f"\ndone in {time.perf_counter() - start:.1f} s. Next: open notebooks/ in Jupyter, "
          "or `mssbook doctor` to check your setup.")
    return 0


# --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mssbook", description="Music source separation: datasets, models, training, evaluation."
    )
    parser.add_argument("--version", action="version", version=f"mssbook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("doctor", help="report versions, ffmpeg, torchaudio, GPU, datasets, memory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("toy", help="generate the toy multitrack dataset (MUSDB18 WAV layout)")
    _add_toy_size_args(p)
    p.set_defaults(func=cmd_toy)

    p = sub.add_parser("demo", help="the main job: build the toy dataset and show it through musdb")
    _add_toy_size_args(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MSSBookError as exc:
        print(f"mssbook {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mssbook {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
