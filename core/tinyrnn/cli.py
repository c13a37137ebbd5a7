"""Command line: ``python -m tinyrnn train|sample|gradcheck``. User mistakes print one line and exit 2."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import dataclasses
import functools
import json
import math
import re
import signal
import sys
import threading
import warnings

import numpy as np

from . import corpora
from .checkpoint import load_checkpoint, save_checkpoint
from .checkpoint_rules import file_bytes_bound, planned_sizes, size_problem
from .errors import ConfigError, TinyRNNError, TrainingDiverged
from .files import check_writable
from .gradcheck import MAX_CHECK_PARAMETERS, gradient_check
from .model import CELLS, ENGINES, NATS_TO_BITS, ModelConfig, init_params
from .optim import OPTIMIZERS
from .sampling import sample
from .config import DTYPES, SETTINGS, TrainConfig
from .engines import blas_threads
from .trainer import HISTORY_LIMIT, STREAM_SETTINGS, Trainer
from .vocab import Vocabulary, read_text_file

DEFAULTS = TrainConfig()
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))  # no SIGHUP on Windows
# train's flags (argparse dest -> TrainConfig field): those that fix the model and its data, which --resume takes
# from the checkpoint (given, they must match it), and those a resumed run may change
FIXED_ON_RESUME = {"cell": "cell", "hidden": "hidden_size", "dtype": "dtype", "optimizer": "optimizer",
                   "val_fraction": "val_fraction", "seed": "seed"}
CHANGEABLE_ON_RESUME = {"lr": "lr", "lr_decay_steps": "lr_decay_steps", "clip_norm": "clip_norm",
                        "eval_every": "eval_every", "engine": "engine", "seq_len": "seq_len", "batch": "batch_size"}
RESUME_CHANGES = ", ".join(f"--{flag.replace('_', '-')}" for flag in CHANGEABLE_ON_RESUME) + ", --steps"
# of those, the ones that change the stream of windows: another value starts the text from its beginning
RESUME_RESTARTS = " or ".join(f"--{flag.replace('_', '-')}" for flag, field in CHANGEABLE_ON_RESUME.items()
                              if field in STREAM_SETTINGS)


def _train(args) -> int:
    with blas_threads(args.threads if args.threads > 0 else None), _signals_stop_training():  # without --threads: the library's one thread
        return _train_loop(args)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP while training: handled like Ctrl-C (the model so far is saved)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.name, self.exit_code = signal.Signals(signum).name, 128 + signum


def _stop(signum, frame):
    raise Stopped(signum)


@contextlib.contextmanager
def _signals_stop_training():
    """SIGTERM (kill, timeout, systemd, batch schedulers) and SIGHUP (a closed terminal) stop training the way
    Ctrl-C does; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _config_for_new_run(args) -> TrainConfig:
    values = {field: getattr(args, flag) for flag, field in {**FIXED_ON_RESUME, **CHANGEABLE_ON_RESUME}.items()}
    values = {k: getattr(DEFAULTS, k) if v is None else v for k, v in values.items()}
    values["clip_norm"] = values["clip_norm"] or None  # --clip-norm 0 disables clipping
    return TrainConfig(**values)


def _config_for_resume(args, checkpoint) -> TrainConfig:
    """The checkpoint's config with the flags that may change on resume applied; ``ConfigError`` naming every
    flag given that differs from the checkpoint and cannot change."""
    saved = checkpoint.config
    differing = [f"--{flag.replace('_', '-')} {getattr(args, flag)} (the checkpoint's: {getattr(saved, field)})"
                 for flag, field in FIXED_ON_RESUME.items()
                 if getattr(args, flag) is not None and getattr(args, flag) != getattr(saved, field)]
    if differing:
        raise ConfigError(f"--resume {args.resume}: these flags differ from the checkpoint and cannot change on "
                          f"resume: {', '.join(differing)}; leave them out (may change: {RESUME_CHANGES})")
    changes = {field: getattr(args, flag) for flag, field in CHANGEABLE_ON_RESUME.items()
               if getattr(args, flag) is not None}
    if "clip_norm" in changes:
        changes["clip_norm"] = changes["clip_norm"] or None
    return dataclasses.replace(saved, **changes).validate()


def _check_saveable(config, vocab, history_rows: int) -> int:
    """The most bytes the checkpoint of this run takes on disk, after refusing (``ConfigError``) settings whose
    checkpoint ``load_checkpoint`` would refuse."""
    meta_bytes = len(json.dumps(vocab.to_dict(), ensure_ascii=False).encode("utf-8")) + 4096
    sizes = planned_sizes(config, vocab.size, history_rows, meta_bytes)
    problem = size_problem(sizes)
    if problem:
        raise ConfigError(f"a model with --cell {config.cell} --hidden {config.hidden_size} --dtype {config.dtype} "
                          f"--optimizer {config.optimizer} (vocabulary {vocab.size}) cannot be saved: {problem} "
                          f"(a checkpoint holds at most 512 MiB per array and 1 GiB in all); choose a smaller "
                          f"--hidden, --dtype float32 or --optimizer sgd")
    return file_bytes_bound(sizes)


def _train_loop(args) -> int:
    text = read_text_file(args.file) if args.file else corpora.load_corpus(args.corpus)
    checkpoint = load_checkpoint(args.resume) if args.resume else None
    if checkpoint is not None:
        config, vocab, rows = _config_for_resume(args, checkpoint), checkpoint.vocab, len(checkpoint.history)
    else:
        config, vocab, rows = _config_for_new_run(args).validate(), Vocabulary.from_text(text), 0
    needed = _check_saveable(config, vocab, min(rows + args.steps, HISTORY_LIMIT))
    protect = [args.file] if args.file else []
    # before training: a bad --out, a read-only or immutable file or a full disk must not waste the run
    check_writable(args.out, protect, replace_read_only=args.force, needed_bytes=needed)
    trainer = Trainer.from_checkpoint(checkpoint, text, config) if checkpoint else Trainer(text, config)
    save = functools.partial(save_checkpoint, path_or_file=args.out, protect=protect, force=args.force)
    print(f"text: {len(text):,} characters, vocabulary {trainer.vocab.size}; model {trainer.config.cell} "
          f"H={trainer.config.hidden_size}, "
          f"{sum(p.size for p in trainer.params.values()):,} parameters", file=sys.stderr)
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: plain progress lines instead
        tqdm = None
    bar = tqdm(total=args.steps, unit="step", disable=args.quiet) if tqdm else None
    val = None
    warned = False
    try:
        for _ in range(args.steps):
            m = trainer.step()
            if not warned and m.step % 100 == 0:
                warned = _warn_if_diverging(trainer)
            val = m.val_loss if m.val_loss is not None else val
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{m.train_loss:.3f}", val=f"{val:.3f}" if val else "-",
                                chars_s=f"{m.chars_per_sec:,.0f}", refresh=False)
            elif not args.quiet and m.step % 100 == 0:
                print(f"step {m.step} loss {m.train_loss:.3f} chars/s {m.chars_per_sec:,.0f}", file=sys.stderr)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        save(trainer.state())
        print(f"saved the last good model to {args.out}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        if bar is not None:
            bar.close()
        return _save_after_interrupt(trainer, args.out, save, stop)
    finally:
        if bar is not None:
            bar.close()
    save(trainer.state())
    _warn_if_diverging(trainer)
    if trainer.val_ids.size >= 2:
        val = trainer.evaluate()
        print(f"validation loss {val:.4f} nats/char ({val * NATS_TO_BITS:.4f} bits/char)")
    print(f"saved {args.out} (step {trainer.step_count})")
    return 0


def _warn_if_diverging(trainer) -> bool:
    warning = trainer.divergence_warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return warning is not None


def _save_after_interrupt(trainer, out, save, stop=None) -> int:
    """Ctrl-C, SIGTERM or SIGHUP while training: keep the model so far (atomically); a second one abandons the
    save."""
    name = stop.name if isinstance(stop, Stopped) else "Ctrl-C"
    again = "press Ctrl-C again" if name == "Ctrl-C" else f"send {name} again"
    print(f"\ninterrupted{'' if name == 'Ctrl-C' else ' by ' + name} at step {trainer.step_count}: saving the model "
          f"so far to {out} ({again} to abort)", file=sys.stderr)
    code = stop.exit_code if isinstance(stop, Stopped) else 130
    try:
        save(trainer.state())
    except KeyboardInterrupt:
        print(f"aborted: nothing was saved; {out} is unchanged", file=sys.stderr)
        return code
    print(f"saved {out} (step {trainer.step_count})", file=sys.stderr)
    return code


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|[0-7]{1,3}|[\x00-\x7f])")


def decode_escapes(text: str) -> str:
    """``text`` with Python's backslash escapes (\\n, \\t, \\xhh, \\uXXXX, \\N{name}, ...) replaced; every other
    character, non-ASCII ones included, is kept as it is. ``ConfigError`` for an incomplete or unknown escape."""
    def one(match):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "\\q" stays "\\q", as in Python, without a DeprecationWarning
                return codecs.decode(match.group(0), "unicode_escape")
        except UnicodeDecodeError as e:
            raise ConfigError(f"--prime has an invalid escape {match.group(0)!r} ({e.reason}); use e.g. \\n, "
                              f"\\t, \\xhh, \\uXXXX or \\\\ for a backslash") from None

    decoded = _ESCAPE.sub(one, text)
    if re.search(r"(?<!\\)(\\\\)*\\$", text):
        raise ConfigError("--prime ends with a lone backslash; write \\\\ for a backslash")
    return decoded


def _sample(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    prime = decode_escapes(args.prime) if args.escapes else args.prime
    text = sample(checkpoint.params, checkpoint.vocab, args.length, prime=prime, temperature=args.temperature,
                  seed=args.seed, cell=checkpoint.config.cell)
    sys.stdout.write(prime + text + "\n")
    return 0


GRADCHECK_ALL_ENTRIES = 5_000  # up to this many parameters every entry is checked by finite differences
GRADCHECK_PROBES = 200  # beyond it, this many random entries per array
GRADCHECK_PROGRESS = 100_000  # beyond this many parameters, one progress line per array


def _gradcheck(args) -> int:
    model_config = ModelConfig(args.vocab, args.hidden, args.cell)
    SETTINGS["batch_size"].check(args.batch)
    SETTINGS["seq_len"].check(args.seq_len)
    SETTINGS["seed"].check(args.seed)
    size = sum(math.prod(shape) for shape in model_config.param_shapes().values()) + args.batch * model_config.state_size()
    if size > MAX_CHECK_PARAMETERS:
        raise ConfigError(f"gradcheck takes at most {MAX_CHECK_PARAMETERS:,} parameters; --vocab {args.vocab} "
                          f"--hidden {args.hidden} --batch {args.batch} has {size:,}: choose a smaller model")
    rng = np.random.default_rng(args.seed)
    params = init_params(model_config, seed=args.seed)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}
    inputs = rng.integers(0, args.vocab, (args.batch, args.seq_len))
    targets = rng.integers(0, args.vocab, (args.batch, args.seq_len))
    h0 = 0.5 * rng.standard_normal((args.batch, model_config.state_size()))
    n_probes = None if size <= GRADCHECK_ALL_ENTRIES else GRADCHECK_PROBES
    if n_probes:
        print(f"{size:,} parameters: finite differences on {n_probes} random entries per array", file=sys.stderr)

    def progress(name, index, count):
        print(f"finite differences: {name} ({index + 1} of {count})", file=sys.stderr, flush=True)

    report = gradient_check(params, inputs, targets, h0, n_probes=n_probes, cell=args.cell,
                            progress=progress if size > GRADCHECK_PROGRESS else None)
    print(report.summary())
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model on a UTF-8 text file (or a built-in corpus)",
                           epilog="A checkpoint holds at most 512 MiB per array (member) and 1 GiB in all, the "
                           "limits load_checkpoint enforces (docs/checkpoint-format.md): settings whose model "
                           "exceeds them are refused before training. SIGTERM and SIGHUP save the model so far, "
                           "as Ctrl-C does.")
    train.add_argument("file", nargs="?", help="UTF-8 text file (default: the built-in corpus)")
    train.add_argument("--corpus", default=corpora.corpus_names()[0], choices=corpora.corpus_names())
    kept = " (with --resume: the checkpoint's)"
    changed = " (with --resume: applied; training continues where it stopped)"
    restarts = " (with --resume: another value starts again at the beginning of the text, with a zero state)"
    train.add_argument("--cell", choices=CELLS, help=f"the recurrent cell (default {DEFAULTS.cell}: tanh){kept}")
    train.add_argument("--hidden", type=int, help=f"hidden size H (default {DEFAULTS.hidden_size}){kept}")
    train.add_argument("--seq-len", type=int, help=f"BPTT window T (default {DEFAULTS.seq_len}){restarts}")
    train.add_argument("--batch", type=int, help=f"batch size B (default {DEFAULTS.batch_size}){restarts}")
    train.add_argument("--lr", type=float, help=f"learning rate (default {DEFAULTS.lr:g}){changed}")
    train.add_argument("--lr-decay-steps", type=int, help="cosine-decay the learning rate to a tenth over N steps "
                       f"(counted from the model's first step; default: constant){changed}")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {DEFAULTS.optimizer}){kept}")
    train.add_argument("--clip-norm", type=float, help=f"clip the gradient norm; 0 disables (default "
                                                          f"{DEFAULTS.clip_norm:g}){changed}")
    train.add_argument("--val-fraction", type=float, help=f"(default {DEFAULTS.val_fraction:g}){kept}")
    train.add_argument("--engine", choices=ENGINES, help=f"(default {DEFAULTS.engine}){changed}")
    train.add_argument("--dtype", choices=DTYPES, help=f"(default {DEFAULTS.dtype}){kept}")
    train.add_argument("--eval-every", type=int, help=f"validate every N steps (default {DEFAULTS.eval_every}){changed}")
    train.add_argument("--seed", type=int, help=f"(default {DEFAULTS.seed}){kept}")
    train.add_argument("--steps", type=int, default=1000, help="steps to train (default 1000; with --resume: more "
                                                                "steps)")
    train.add_argument("--resume", help="continue from this checkpoint. It fixes --cell, --hidden, --dtype, "
                       "--optimizer, --val-fraction and --seed: leave them out (given, they must match it); "
                       f"{RESUME_CHANGES} may change and are applied, and training continues at the window and "
                       f"with the state where it stopped (another {RESUME_RESTARTS} starts again at the beginning "
                       "of the text)")
    train.add_argument("--out", default="model.npz", help="checkpoint to write (default model.npz); checked before "
                       "training: writable, not immutable, enough free space")
    train.add_argument("--force", action="store_true", help="replace --out even if it is a read-only file")
    train.add_argument("--threads", type=int, default=1, help="BLAS threads while training (default 1; 0 leaves BLAS as it is)")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(run=_train)
    samp = sub.add_parser("sample", help="generate text from a checkpoint")
    samp.add_argument("checkpoint")
    samp.add_argument("--prime", default="")
    samp.add_argument("--escapes", action="store_true", help="interpret backslash escapes such as \\n in --prime")
    samp.add_argument("--temperature", type=float, default=1.0)
    samp.add_argument("--length", type=int, default=500)
    samp.add_argument("--seed", type=int, default=None)
    samp.set_defaults(run=_sample)
    check = sub.add_parser("gradcheck", help="compare autograd, manual BPTT and finite differences")
    for name, default in (("vocab", 7), ("hidden", 6), ("batch", 3), ("seq-len", 5), ("seed", 0)):
        check.add_argument(f"--{name}", type=int, default=default)
    check.add_argument("--cell", default=DEFAULTS.cell, choices=CELLS)
    check.set_defaults(run=_gradcheck)
    return parser


def _escape_unencodable_output() -> None:
    """Characters the terminal's encoding cannot show (e.g. PYTHONIOENCODING=ascii) print as \\u escapes."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")


def main(argv=None) -> int:
    _escape_unencodable_output()
    args = build_parser().parse_args(argv)
    if getattr(args, "steps", 1) < 0:
        print("error: --steps must be 0 or more", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except TinyRNNError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print("interrupted", file=sys.stderr)
        return stop.exit_code if isinstance(stop, Stopped) else 130


if __name__ == "__main__":
    sys.exit(main())
