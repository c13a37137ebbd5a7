"""Command line: ``python -m tinyrnn train|sample|gradcheck``. User mistakes print one line and exit 2."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import math
import re
import sys
import warnings

import numpy as np

from . import corpora
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import ConfigError, TinyRNNError, TrainingDiverged
from .files import check_writable
from .gradcheck import MAX_CHECK_PARAMETERS, gradient_check
from .model import CELLS, ENGINES, NATS_TO_BITS, ModelConfig, init_params
from .optim import OPTIMIZERS
from .sampling import sample
from .config import DTYPES, SETTINGS, TrainConfig
from .engines import blas_threads
from .trainer import Trainer
from .vocab import read_text_file

DEFAULTS = TrainConfig()


def _train(args) -> int:
    with blas_threads(args.threads if args.threads > 0 else None):  # without --threads: the library's one thread
        return _train_loop(args)


def _train_loop(args) -> int:
    text = read_text_file(args.file) if args.file else corpora.load_corpus(args.corpus)
    config = TrainConfig(hidden_size=args.hidden, seq_len=args.seq_len, batch_size=args.batch, lr=args.lr,
                         optimizer=args.optimizer, clip_norm=args.clip_norm or None, val_fraction=args.val_fraction,
                         seed=args.seed, engine=args.engine, dtype=args.dtype, eval_every=args.eval_every,
                         cell=args.cell)
    if args.resume:
        trainer = Trainer.from_checkpoint(load_checkpoint(args.resume), text)
    else:
        trainer = Trainer(text, config)
    protect = [args.file] if args.file else []
    check_writable(args.out, protect)  # before training: a bad --out must not waste the run
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
        save_checkpoint(trainer.state(), args.out, protect=protect)
        print(f"saved the last good model to {args.out}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        return _save_after_interrupt(trainer, args.out, protect)
    finally:
        if bar is not None:
            bar.close()
    save_checkpoint(trainer.state(), args.out, protect=protect)
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


def _save_after_interrupt(trainer, out, protect) -> int:
    """Ctrl-C while training: keep the model so far (atomically); a second Ctrl-C abandons the save."""
    print(f"\ninterrupted at step {trainer.step_count}: saving the model so far to {out} "
          f"(press Ctrl-C again to abort)", file=sys.stderr)
    try:
        save_checkpoint(trainer.state(), out, protect=protect)
    except KeyboardInterrupt:
        print(f"aborted: nothing was saved; {out} is unchanged", file=sys.stderr)
        return 130
    print(f"saved {out} (step {trainer.step_count})", file=sys.stderr)
    return 130


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
    train = sub.add_parser("train", help="train a model on a UTF-8 text file (or a built-in corpus)")
    train.add_argument("file", nargs="?", help="UTF-8 text file (default: the built-in corpus)")
    train.add_argument("--corpus", default=corpora.corpus_names()[0], choices=corpora.corpus_names())
    train.add_argument("--cell", default=DEFAULTS.cell, choices=CELLS, help="the recurrent cell (default rnn: tanh)")
    train.add_argument("--hidden", type=int, default=DEFAULTS.hidden_size)
    train.add_argument("--seq-len", type=int, default=DEFAULTS.seq_len)
    train.add_argument("--batch", type=int, default=DEFAULTS.batch_size)
    train.add_argument("--lr", type=float, default=DEFAULTS.lr)
    train.add_argument("--optimizer", default=DEFAULTS.optimizer, choices=OPTIMIZERS)
    train.add_argument("--clip-norm", type=float, default=DEFAULTS.clip_norm, help="0 disables")
    train.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction)
    train.add_argument("--engine", default=DEFAULTS.engine, choices=ENGINES)
    train.add_argument("--dtype", default=DEFAULTS.dtype, choices=DTYPES)
    train.add_argument("--eval-every", type=int, default=DEFAULTS.eval_every)
    train.add_argument("--seed", type=int, default=DEFAULTS.seed)
    train.add_argument("--steps", type=int, default=1000)
    train.add_argument("--resume", help="continue from this checkpoint, with its own hyper-parameters (--hidden, --lr, ... are then ignored)")
    train.add_argument("--out", default="model.npz", help="checkpoint to write (default model.npz)")
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
