"""Learning quality: train on tinyshakespeare for a fixed wall-clock budget, natively (or inside Pyodide through
``bench.pyodide_bench --quality``); the held-out tenth's nats/char over time.

    python -m bench.quality                  # 300 s of training with TrainConfig()'s defaults
    python -m bench.quality --cell gru --set hidden_size=256 --set batch_size=32 --set seq_len=50 --set lr=0.003
    python -m bench.quality --quick          # 45 s
    python -m bench.quality --seconds 120 --set hidden_size=256 --set lr=0.003   # try other settings
    python -m bench.quality --cell lstm      # another cell (the same as --set cell=lstm)
    python -m bench.quality --cell gru --set hidden_size=256 --set batch_size=32 --set seq_len=50 --set lr=0.003 --decay-over-budget

The text is split as the issue asks: the first 90% trains, the last 10% validates (``val_fraction`` is
pinned to 0.1 whatever the defaults say).  Every other setting is ``tinyrnn.TrainConfig()``'s default (the
app's defaults) unless overridden with ``--set``.  The budget counts the time spent in ``Trainer.step()``
(which includes the trainer's own periodic evaluations, as in the app); the full-validation measurements
this script makes every ``--eval-every`` seconds are not counted.  Validation loss is measured on the whole
validation text as one stream with the hidden state carried through, with ``tinyrnn.forward``.

Writes ``bench/results/quality.json`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from bench.harness import shared_data

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = shared_data()  # ../shared/data/tinyshakespeare.txt (never copied into the repository)
DEFAULT_JSON = REPO / "bench" / "results" / "quality.json"
CALIBRATE_SECONDS = 10.0  # --decay-over-budget's trial run
TARGET_NATS = 1.55  # issue 17: natively within 5 minutes on this machine (the page's target is bench.page_quality's)


def validation_loss(tinyrnn, params, ids, window: int = 512, cell: str = "rnn") -> float:
    """Mean nats/char of predicting ids[1:] from ids[:-1], one stream, hidden state carried (float64 sums)."""
    H = params["W_yh"].shape[1]
    h = np.zeros((1, tinyrnn.ModelConfig(2, H, cell).state_size()), dtype=params["W_yh"].dtype)
    total, count = 0.0, 0
    for start in range(0, ids.size - 1, window):
        x = ids[start:start + window]
        y = ids[start + 1:start + window + 1]
        x = x[: y.size]
        logits, _, h = tinyrnn.forward_with_state(params, x[None, :], h, cell)
        z = logits[0].astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        log_p = z[np.arange(y.size), y] - np.log(np.exp(z).sum(axis=-1))
        total -= float(log_p.sum())
        count += y.size
    return total / count


def parse_overrides(pairs, config, kinds=None):
    """``--set FIELD=VALUE`` pairs as {field: value}, typed like the config's default (or ``kinds[field]``, the
    settings table's kind, for a setting whose default is None)."""
    kinds = kinds or {}
    fields = {f.name: f for f in dataclasses.fields(config)}
    out = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"--set: unknown TrainConfig field {key!r}; fields: {', '.join(fields)}")
        cur = getattr(config, key)
        if raw.lower() == "none":
            out[key] = None
        elif isinstance(cur, bool):
            out[key] = raw.lower() in ("1", "true", "yes")
        elif isinstance(cur, int) or (cur is None and kinds.get(key) == "int"):
            out[key] = int(raw)
        elif isinstance(cur, float) or cur is None:
            try:
                out[key] = float(raw)
            except ValueError:
                out[key] = raw
        else:
            out[key] = raw
    return out


def interpolate_at(log, seconds):
    """Validation loss at ``seconds`` of training, linearly interpolated between checkpoints."""
    pts = [(r["train_seconds"], r["val_nats"]) for r in log]
    if not pts or seconds < pts[0][0]:
        return None
    for (t0, v0), (t1, v1) in itertools.pairwise(pts):
        if t0 <= seconds <= t1:
            return v0 + (v1 - v0) * (seconds - t0) / max(t1 - t0, 1e-9)
    return pts[-1][1] if seconds <= pts[-1][0] * 1.05 else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="training text (default ../shared/data/tinyshakespeare.txt)")
    ap.add_argument("--seconds", type=float, default=None, help="training budget in seconds (default 300, quick 45)")
    ap.add_argument("--quick", action="store_true", help="45 s budget, validation every 10 s")
    ap.add_argument("--eval-every", type=float, default=None, help="seconds of training between full validations (default 30, quick 10)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a TrainConfig default (repeatable)")
    ap.add_argument("--max-chars", type=int, default=None,
                    help="also stop after this many training characters (compare settings at equal data)")
    ap.add_argument("--browser-ratio", type=float, default=None,
                    help="measured in-browser/native speed ratio: also report the loss after ratio×budget seconds")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (default 1, like the single-threaded browser; needs threadpoolctl)")
    ap.add_argument("--cell", default=None, choices=("rnn", "gru", "lstm"), help="the recurrent cell (default rnn)")
    ap.add_argument("--target", type=float, default=TARGET_NATS, help=f"nats/char to reach (default {TARGET_NATS})")
    ap.add_argument("--decay-over-budget", action="store_true",
                    help="cosine-decay the learning rate over the steps the budget gives (lr_decay_steps = the "
                         f"steps/s of a {CALIBRATE_SECONDS:.0f}-s trial run, not counted, × the budget)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=args.threads)  # kept alive for the whole run
    except ImportError:
        pass

    import tinyrnn

    budget = args.seconds if args.seconds is not None else (45.0 if args.quick else 300.0)
    eval_every = args.eval_every if args.eval_every is not None else (10.0 if args.quick else 30.0)
    if not args.data.is_file():
        print(f"data file not found: {args.data} (give --data)", file=sys.stderr)
        return 2
    text = tinyrnn.read_text_file(str(args.data)) if hasattr(tinyrnn, "read_text_file") else args.data.read_text("utf-8")
    defaults = tinyrnn.TrainConfig()
    overrides = parse_overrides(args.overrides, defaults, {k: v.kind for k, v in tinyrnn.SETTINGS.items()})
    overrides["val_fraction"] = 0.1
    if args.cell:
        overrides["cell"] = args.cell
    config = dataclasses.replace(defaults, **overrides).validate()
    from bench.harness import engine_of, make_trainer, native_installed

    if args.decay_over_budget:
        trial, _ = make_trainer(text, config, native=native_installed())
        trial.step()  # the first step pays for set-up
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < CALIBRATE_SECONDS:
            trial.step()
        rate = (trial.step_count - 1) / (time.perf_counter() - t0)
        config = dataclasses.replace(config, lr_decay_steps=max(1, round(rate * budget))).validate()
        print(f"trial run: {rate:.1f} steps/s over {CALIBRATE_SECONDS:.0f} s -> the learning rate decays over "
              f"{config.lr_decay_steps} steps")
        del trial
    trainer, opted_in = make_trainer(text, config, native=native_installed())
    val_ids = np.asarray(trainer.val_ids)

    try:
        from threadpoolctl import threadpool_info

        blas = [f"{d['internal_api']} {d.get('version')} {d.get('architecture')} threads={d['num_threads']}"
                for d in threadpool_info() if d["user_api"] == "blas"]
    except ImportError:
        blas = ["threadpoolctl not installed"]
    print(f"data {args.data} ({len(text):,} chars, V={trainer.vocab.size}); train {trainer.train_ids.size:,} / "
          f"validation {val_ids.size:,} chars")
    print(f"config {json.dumps(config.to_dict())}")
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print(f"budget {budget:.0f} s of training; full validation every {eval_every:.0f} s; BLAS {blas}; engine "
          f"{engine_of(trainer)}" + (" (native kernels opted in: not this tinyrnn's default)" if opted_in else "")
          + f"; load average {load}", flush=True)

    log = []
    train_seconds = 0.0
    next_eval = 0.0
    recent = []
    wall0 = time.perf_counter()
    diverged = None

    def checkpoint():
        t_eval = time.perf_counter()
        val = validation_loss(tinyrnn, trainer.params, val_ids, cell=config.cell)
        eval_s = time.perf_counter() - t_eval
        row = {"train_seconds": round(train_seconds, 2), "steps": trainer.step_count, "chars_seen": trainer.chars_seen,
               "epochs": round(trainer.epoch, 3),
               "train_nats_recent": (float(np.mean(recent[-50:])) if recent else None),
               "val_nats": val, "val_bits": val * tinyrnn.NATS_TO_BITS, "eval_seconds": round(eval_s, 2)}
        log.append(row)
        tr = "   —  " if row["train_nats_recent"] is None else f"{row['train_nats_recent']:.3f}"
        print(f"  t={train_seconds:6.1f}s  step {trainer.step_count:6d}  chars {trainer.chars_seen:>10,}  "
              f"train {tr}  val {val:.4f} nats/char = {row['val_bits']:.4f} bits/char", flush=True)

    checkpoint()
    next_eval = eval_every
    while train_seconds < budget and (args.max_chars is None or trainer.chars_seen < args.max_chars):
        t0 = time.perf_counter()
        try:
            m = trainer.step()
        except tinyrnn.TrainingDiverged as e:
            diverged = str(e)
            print("DIVERGED:", diverged)
            break
        train_seconds += time.perf_counter() - t0
        recent.append(m.train_loss)
        if train_seconds >= next_eval:
            checkpoint()
            next_eval += eval_every
    if not log or log[-1]["steps"] != trainer.step_count:
        checkpoint()
    wall = time.perf_counter() - wall0

    final = log[-1]
    reached = next((r for r in log if r["val_nats"] <= args.target), None)
    summary = {
        "final_val_nats": final["val_nats"], "final_val_bits": final["val_bits"],
        "best_val_nats": min(r["val_nats"] for r in log),
        "train_seconds": train_seconds, "wall_seconds": wall, "steps": trainer.step_count,
        "chars_seen": trainer.chars_seen, "epochs": trainer.epoch,
        "train_chars_per_sec": trainer.chars_seen / max(train_seconds, 1e-9),
        "target_nats": args.target, "target_reached": reached is not None,
        "seconds_to_target": None if reached is None else reached["train_seconds"],
        "diverged": diverged,
    }
    if args.browser_ratio:
        summary["browser_ratio"] = args.browser_ratio
        summary["val_nats_at_ratio_x_budget"] = interpolate_at(log, args.browser_ratio * budget)
    print()
    print(f"after {train_seconds:.0f} s of training ({trainer.step_count} steps, {trainer.chars_seen:,} chars, "
          f"{trainer.epoch:.2f} epochs, {summary['train_chars_per_sec']:,.0f} chars/s):")
    print(f"  validation {final['val_nats']:.4f} nats/char = {final['val_bits']:.4f} bits/char "
          f"(best {summary['best_val_nats']:.4f}); target <= {args.target} nats/char: "
          + (f"reached at {reached['train_seconds']:.0f} s" if reached else "NOT reached"))
    if args.browser_ratio:
        v = summary["val_nats_at_ratio_x_budget"]
        print(f"  at {args.browser_ratio:.2f}x speed (in-browser), {budget:.0f} s of training ≈ "
              f"{args.browser_ratio * budget:.0f} native s → val ≈ {'n/a' if v is None else f'{v:.4f}'} nats/char")

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
    payload = {"max_chars": args.max_chars, "machine": {"date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                           "cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
                           "numpy": np.__version__, "blas": blas, "engine": engine_of(trainer),
                           "native_opt_in": opted_in, "loadavg_start": load,
                           "loadavg_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                           "tinyrnn": getattr(tinyrnn, "__version__", "?")},
               "data": str(args.data), "budget_seconds": budget, "config": config.to_dict(),
               "overrides": overrides, "summary": summary, "log": log}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")
    return 0 if diverged is None else 1


if __name__ == "__main__":
    sys.exit(main())
