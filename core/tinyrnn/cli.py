"""Command line: ``python -m tinyrnn train|sample|gradcheck``. User mistakes print one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np

from . import corpora
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import TinyRNNError, TrainingDiverged
from .gradcheck import gradient_check
from .model import ENGINES, NATS_TO_BITS, ModelConfig, init_params
from .optim import OPTIMIZERS
from .sampling import sample
from .config import DTYPES, TrainConfig
from .trainer import Trainer
from .vocab import read_text_file

DEFAULTS = TrainConfig()


def _blas_threads(n: int, quiet: bool):
    """Limit BLAS to ``n`` threads while training (0: leave it). These products are small: on a machine with
    other work, a multi-threaded BLAS made training 2-25x slower here (docs/performance.md)."""
    if n <= 0:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if not quiet:
            print("note: BLAS threads not limited (pip install threadpoolctl, or tinyrnn[cli])", file=sys.stderr)
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def _train(args) -> int:
    with _blas_threads(args.threads, args.quiet):
        return _train_loop(args)


def _train_loop(args) -> int:
    text = read_text_file(args.file) if args.file else corpora.load_corpus(args.corpus)
    config = TrainConfig(hidden_size=args.hidden, seq_len=args.seq_len, batch_size=args.batch, lr=args.lr,
                         optimizer=args.optimizer, clip_norm=args.clip_norm or None, val_fraction=args.val_fraction,
                         seed=args.seed, engine=args.engine, dtype=args.dtype, eval_every=args.eval_every)
    if args.resume:
        trainer = Trainer.from_checkpoint(load_checkpoint(args.resume), text)
    else:
        trainer = Trainer(text, config)
    print(f"text: {len(text):,} characters, vocabulary {trainer.vocab.size}; model H={trainer.config.hidden_size}, "
          f"{sum(p.size for p in trainer.params.values()):,} parameters", file=sys.stderr)
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: plain progress lines instead
        tqdm = None
    bar = tqdm(total=args.steps, unit="step", disable=args.quiet) if tqdm else None
    val = None
    try:
        for _ in range(args.steps):
            m = trainer.step()
            val = m.val_loss if m.val_loss is not None else val
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{m.train_loss:.3f}", val=f"{val:.3f}" if val else "-",
                                chars_s=f"{m.chars_per_sec:,.0f}", refresh=False)
            elif not args.quiet and m.step % 100 == 0:
                print(f"step {m.step} loss {m.train_loss:.3f} chars/s {m.chars_per_sec:,.0f}", file=sys.stderr)
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        save_checkpoint(trainer.state(), args.out)
        print(f"saved the last good model to {args.out}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    save_checkpoint(trainer.state(), args.out)
    if trainer.val_ids.size >= 2:
        val = trainer.evaluate()
        print(f"validation loss {val:.4f} nats/char ({val * NATS_TO_BITS:.4f} bits/char)")
    print(f"saved {args.out} (step {trainer.step_count})")
    return 0


def _sample(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    prime = args.prime.encode().decode("unicode_escape") if args.escapes else args.prime
    text = sample(checkpoint.params, checkpoint.vocab, args.length, prime=prime, temperature=args.temperature,
                  seed=args.seed)
    sys.stdout.write(prime + text + "\n")
    return 0


def _gradcheck(args) -> int:
    rng = np.random.default_rng(args.seed)
    params = init_params(ModelConfig(args.vocab, args.hidden), seed=args.seed)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}
    inputs = rng.integers(0, args.vocab, (args.batch, args.seq_len))
    targets = rng.integers(0, args.vocab, (args.batch, args.seq_len))
    h0 = 0.5 * rng.standard_normal((args.batch, args.hidden))
    report = gradient_check(params, inputs, targets, h0)
    print(report.summary())
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyrnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model on a UTF-8 text file (or a built-in corpus)")
    train.add_argument("file", nargs="?", help="UTF-8 text file (default: the built-in corpus)")
    train.add_argument("--corpus", default=corpora.corpus_names()[0], choices=corpora.corpus_names())
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
    check.set_defaults(run=_gradcheck)
    return parser


def main(argv=None) -> int:
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
