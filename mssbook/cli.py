"""The ``mssbook`` command line (also ``python -m mssbook``).

One entry point with subcommands; each is a thin layer over the library function a script would
call. Errors the user can fix (:class:`mssbook.errors.MSSBookError`) print one clear line and exit
with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    """Toy dataset → train a tutorial UMX for vocals → separate → evaluate → report folder."""
    from .demo import run_demo

    run_demo(output=args.output, progress=not args.quiet)
    return 0


# --------------------------------------------------------------------------------------------
# train
# Model options of the seeds' train.py: CLI name → model config key. Given only when set, and only
# to models that have the option (the preset supplies the rest).
MODEL_OPTIONS = {"hidden_size": "hidden_size", "nb_channels": "nb_channels", "bandwidth": "bandwidth",
                 "nfft": "n_fft", "nhop": "n_hop", "unidirectional": "unidirectional", "nb_layers": "nb_layers"}


def _configure_train(p: argparse.ArgumentParser) -> None:
    from . import models

    p.add_argument("--model", default="umx", help="registered model name (default: umx)")
    p.add_argument("--preset", default=None,
                   help="model preset: paper (published sizes), tutorial (CPU-sized), seed (the U-Nets' README "
                        "command; their default), large ... (default: seed where a model has one, else paper)")
    p.add_argument("--target", "--targets", dest="targets", nargs="+", default=None,
                   help="source(s) to separate (default: the seed's, vocals for umx)")
    data = p.add_argument_group("data")
    data.add_argument("--root", default=None, help="MUSDB18 root (default: $MUSDB_PATH)")
    data.add_argument("--toy", action="store_true", help="train on the embedded toy dataset (generated if missing)")
    data.add_argument("--is-wav", action="store_true", default=None, help="the root holds WAV stems (MUSDB18-HQ layout)")
    data.add_argument("--seq-dur", type=float, default=None, help="excerpt seconds (UMX: 6.0)")
    data.add_argument("--samples-per-track", type=int, default=None, help="excerpts per track per epoch (UMX: 64)")
    data.add_argument("--source-augmentations", nargs="*", default=None, help="per-source augmentations (UMX: gain channelswap)")
    data.add_argument("--no-random-track-mix", dest="random_track_mix", action="store_false", default=None,
                      help="take all sources of an excerpt from the same track")
    data.add_argument("--valid-max-duration", type=float, default=None, help="crop validation tracks to this many seconds")
    data.add_argument("--fragments", default=None, metavar="SAD_FILE|auto",
                      help="draw the target's excerpts from salient fragments: a file of `mssbook prepare-sad`, "
                           "or auto (detected at start; BSRNN's default)")
    data.add_argument("--fragment-p", type=float, default=None, help="fraction of excerpts drawn from fragments (1.0)")
    data.add_argument("--silence-target-p", type=float, default=None,
                      help="probability of silencing the target in an excerpt (BSRNN: 0.1)")

    opt = p.add_argument_group("optimisation (defaults: the model's published recipe; UMX's shown)")
    opt.add_argument("--epochs", type=int, default=None, help="(1000)")
    opt.add_argument("--batch-size", type=int, default=None, help="(16)")
    opt.add_argument("--lr", type=float, default=None, help="(0.001)")
    opt.add_argument("--weight-decay", type=float, default=None, help="(0.00001)")
    opt.add_argument("--patience", type=int, default=None, help="early stopping epochs (140)")
    opt.add_argument("--lr-schedule", choices=("plateau", "step", "multistep", "cosine", "none"), default=None,
                     help="(plateau); cosine anneals to zero by --epochs or --time-budget, whichever comes first")
    opt.add_argument("--lr-warmup", type=float, default=None,
                     help="cosine only: share of the run whose learning rate rises linearly from 0 (0)")
    opt.add_argument("--lr-decay-patience", type=int, default=None, help="(80)")
    opt.add_argument("--lr-decay-gamma", type=float, default=None, help="(0.3)")
    opt.add_argument("--grad-clip", type=float, default=None, help="max gradient norm (off)")
    opt.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    opt.add_argument("--valid-metrics", nargs="+", choices=("usdr", "csdr", "si_sdr"), default=None,
                     help="also score the validation tracks with these cheap SDRs each epoch (logged)")
    opt.add_argument("--monitor", default=None,
                     help="what early stopping and best.pt follow: loss (default) or one of --valid-metrics")
    opt.add_argument("--nb-workers", type=int, default=None, help="data loader processes (0)")
    opt.add_argument("--seed", type=int, default=None, help="(42)")
    opt.add_argument("--device", default=None, help="auto (cuda, mps, cpu), or a torch device")
    opt.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="no mixed precision on GPU")
    model_opts = p.add_argument_group("model (defaults: the preset's; UMX paper shown)")
    model_opts.add_argument("--hidden-size", type=int, default=None, help="(512)")
    model_opts.add_argument("--nb-layers", type=int, default=None, help="(3)")
    model_opts.add_argument("--nb-channels", type=int, default=None, help="(2)")
    model_opts.add_argument("--bandwidth", type=float, default=None, help="Hz of input the network sees (16000)")
    model_opts.add_argument("--nfft", type=int, default=None, help="(4096)")
    model_opts.add_argument("--nhop", type=int, default=None, help="(1024)")
    model_opts.add_argument("--unidirectional", action="store_true", default=None, help="causal LSTM")
    models.add_family_arguments(p, ("model", "train"))
    p.add_argument("--output", "-o", type=Path, default=None, help="run folder (default: runs/<model>-<targets>)")
    p.add_argument("--no-resume", dest="resume", action="store_const", const="never", default="auto",
                   help="refuse to continue a run found in --output (default: resume from its last.pt)")
    p.add_argument("--resume", dest="resume", default="auto", metavar="CHECKPOINT",
                   help="start from this mssbook checkpoint: a run's last.pt (continues it) or one written by "
                        "`mssbook convert` (fine-tunes official weights); its model and configuration are used")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_train(args: argparse.Namespace) -> int:
    from . import models
    from .training import TrainConfig
    from .utils import seed_everything

    # seed before anything random happens (the model's initial weights first), so that two runs
    # with the same --seed give the same weights and history
    seed_everything(args.seed if args.seed is not None else TrainConfig.seed)
    if args.resume not in ("auto", "never"):
        return _train_from_checkpoint(args)
    entry = models.entry(args.model)
    if args.preset is None:
        args.preset = "seed" if "seed" in entry.presets else "paper"
    preset_config = models.presets(args.model).get(args.preset, {})
    overrides = {}
    for cli_name, key in MODEL_OPTIONS.items():
        value = getattr(args, cli_name)
        if value is None:
            continue
        if key not in preset_config:
            raise MSSBookError(f"model {args.model!r} has no option --{cli_name.replace('_', '-')}")
        overrides[key] = value
    family = models.family_values(args, args.model, ("model", "train"))
    overrides.update(family["model"])
    targets = args.targets or entry.training.get("targets")  # the seed's default (UMX: vocals)
    try:
        model = models.create(args.model, preset=args.preset, target=targets, **overrides)
    except (TypeError, ValueError) as exc:  # a configuration the model refuses: say so in one line
        raise MSSBookError(f"cannot build {args.model!r} ({args.preset}) with these options: {exc}") from None
    return _train(args, model, family)


def _train_from_checkpoint(args: argparse.Namespace) -> int:
    """``--resume CHECKPOINT``: the model and its configuration come from the file."""
    from . import models
    from .checkpoints import read_checkpoint

    state = read_checkpoint(args.resume)
    name, config = state["model_name"], state["model_config"]
    clashing = [f"--{k.replace('_', '-')}" for k in (*MODEL_OPTIONS, "preset")
                if getattr(args, k, None) not in (None, False)]
    if args.model not in ("umx", name):
        clashing.append("--model")
    if args.targets and list(args.targets) != list(config["targets"]):
        clashing.append("--targets")
    if clashing:
        raise MSSBookError(f"{args.resume} fixes the model ({name}, targets {', '.join(config['targets'])}); "
                           f"drop {', '.join(clashing)} or train a new model without --resume.")
    args.model, args.preset = name, "checkpoint"
    model = models.from_config(name, config)
    return _train(args, model, models.family_values(args, name, ("model", "train")))


def _train(args: argparse.Namespace, model, family: dict) -> int:
    from dataclasses import fields

    from . import models
    from .training import DataConfig, TrainConfig, train_model

    recipe = models.training_recipe(args.model, model.config["targets"])  # the model's recipe, then explicit args
    recipe.pop("targets")
    train_fields = {f.name for f in fields(TrainConfig)}
    data_fields = {f.name for f in fields(DataConfig)}
    for key in train_fields | data_fields:
        value = getattr(args, key, None)
        if value is not None:
            recipe[key] = value
    recipe.update(family["train"])
    if args.toy:
        from .data.toy import ensure_toy_dataset

        recipe["root"], recipe["is_wav"] = str(ensure_toy_dataset()), True
    else:
        recipe["root"] = args.root
    data = DataConfig(**{k: v for k, v in recipe.items() if k in data_fields})
    config = TrainConfig(progress=not args.quiet, **{k: v for k, v in recipe.items() if k in train_fields})
    output = args.output or Path("runs") / f"{args.model}-{'-'.join(model.targets)}"
    say = print if os.environ.get("RANK", "0") == "0" else (lambda *a, **k: None)  # torchrun: rank 0 speaks
    say(f"training {args.model} ({args.preset}) for {', '.join(model.targets)}: "
          f"{model.num_parameters():,} parameters, output {output}")
    trainer = train_model(model, data, config, output=output, resume=args.resume)
    last = trainer.history[-1] if trainer.history else {}
    say(f"stopped after epoch {trainer.epoch}: best loss {trainer.best_loss:.5g}; "
          f"last train {last.get('train_loss', float('nan')):.5g}; checkpoints in {output}")
    return 0


# --------------------------------------------------------------------------------------------
# convert: official weights → an mssbook checkpoint
def cmd_convert(args: argparse.Namespace) -> int:
    from . import hub
    from .checkpoints import save_checkpoint
    from .errors import OutputExistsError

    if args.list:
        print(hub.describe())
        print("\nno official weights: " + ", ".join(hub.NO_OFFICIAL) + " (see mssbook.hub.NO_OFFICIAL)")
        return 0
    if args.source is None or args.output is None:
        raise MSSBookError("pass SOURCE (a pretrained name such as d3net, or a weight file, zip or folder) and "
                           "-o OUTPUT.pt; --list shows the official releases.")
    if args.output.exists() and not args.force:
        raise OutputExistsError(f"{args.output} already exists; pass --force to replace it, or choose another path.")
    if args.source in hub.names() or args.source in hub.NO_OFFICIAL:
        if args.model or args.format:
            raise MSSBookError(f"{args.source} is a release name: its model and format are known; drop --model/--format.")
        model = hub.load_pretrained(args.source, targets=args.targets, progress=not args.quiet)
        origin = args.source
    else:
        model = hub.convert_source(args.source, model=args.model, fmt=args.format, targets=args.targets)
        origin = str(Path(args.source).resolve())
    save_checkpoint(args.output, model, converted_from=origin)
    print(f"wrote {args.output}: {model.name} for {', '.join(model.targets)}, {model.num_parameters():,} parameters "
          f"(from {origin}). Use it like any checkpoint: mssbook separate SONG --model {args.output}")
    return 0


# --------------------------------------------------------------------------------------------
# exercises: a teacher's view
def cmd_exercises(args: argparse.Namespace) -> int:
    from . import exercises

    if args.check is not None:
        verdicts = exercises.grade_file(args.check, args.chapter)
        print(exercises.format_grades(verdicts))
        return 0 if all(verdicts) else 1
    if args.solution is not None:
        try:
            print(exercises.solution(args.solution, run=False)._repr_markdown_())
        except KeyError as exc:
            raise MSSBookError(str(exc.args[0])) from None
        return 0
    items = exercises.chapter_exercises(args.chapter) if args.chapter is not None else exercises.all_exercises()
    if not items:
        where = f"chapter {args.chapter}" if args.chapter is not None else "any chapter"
        raise MSSBookError(f"no exercises for {where}; the chapters with exercises are 00 to 07.")
    for item in items:
        print(f"{item.id:6s} {item.title}  (hand in: {item.answer})")
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

    p = sub.add_parser("train", help="train a model (Open-Unmix's train.py arguments)")
    _configure_train(p)
    p.set_defaults(func=cmd_train)

    from . import evaluation, oracles, separation

    p = sub.add_parser("separate", help="separate audio files with a trained or pretrained model")
    separation.configure_parser(p)

    p = sub.add_parser("evaluate", help="separate a MUSDB18 subset and score it (BSSEval v4, museval-exact)")
    evaluation.configure_parser(p)

    p = sub.add_parser("oracle", help="score an oracle baseline (IBM, IRM, MWF, the mixture) on MUSDB18")
    oracles.configure_parser(p)

    from .data import sad

    p = sub.add_parser("prepare-sad", help="source activity detection (BSRNN's prepare_dataset.py): "
                                           "the salient fragments of a target, one file per target")
    sad.configure_parser(p)

    from .weights import FORMATS

    p = sub.add_parser("convert", help="convert official weights (a release name, or a file, zip or folder in an "
                                       "official format) into an mssbook checkpoint")
    p.add_argument("source", nargs="?", default=None,
                   help="a pretrained name (downloaded; see --list) or a weight file, zip or folder")
    p.add_argument("--output", "-o", type=Path, default=None, help="the checkpoint to write (.pt)")
    p.add_argument("--model", default=None, help="model family, when the files do not tell (umx, xumx, d3net, ...)")
    p.add_argument("--format", default=None, choices=FORMATS, help="weight format (default: detected)")
    p.add_argument("--target", "--targets", dest="targets", nargs="+", default=None, help="convert only these targets")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--list", action="store_true", help="list the official releases mssbook knows")
    p.add_argument("--quiet", action="store_true", help="no download progress bar")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("exercises", help="list the course's exercises, show a solution, or grade a file of answers")
    p.add_argument("--chapter", default=None, help="only this chapter's exercises (e.g. 02)")
    p.add_argument("--check", type=Path, default=None, metavar="ANSWERS.py",
                   help="grade a student's answers file (ANSWERS = {'02.4': ...} or ex_02_4 = ...); "
                        "exit status 1 unless every answer is right")
    p.add_argument("--solution", default=None, metavar="ID", help="print the worked solution of one exercise")
    p.set_defaults(func=cmd_exercises)

    from . import course

    p = sub.add_parser("course", help="the course's prepared models: train each model chapter's tutorial model "
                                      "longer, once (prepare), and list them (status)")
    course.configure_parser(p)

    p = sub.add_parser("demo", help="the main job: toy songs → train Open-Unmix → separate → evaluate → report")
    p.add_argument("--output", "-o", type=Path, default=None,
                   help="report folder, must not exist (default: a new data/reports/demo-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
