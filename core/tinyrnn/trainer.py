"""Training: truncated BPTT over a text with B parallel streams, an optimiser, clipping, validation.

The loader is char-rnn's: the training ids are cut into B equal contiguous streams; step k reads the window
[k·T, k·T + T] of every stream, and the hidden state at the end of one window is the start of the next, so
the network sees each stream as one long sequence. After the last whole window the streams start again
from the beginning with a zero hidden state (a new epoch).
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np

from . import engines
from . import model as model_lib
from .bptt import gradient_reach, manual_bptt
from .checkpoint import Checkpoint, check_state
from .config import StepMetrics, TrainConfig, thin_history
from .errors import CheckpointError, ConfigError, TextError, TrainingDiverged
from .optim import scheduled_lr
from .vocab import Vocabulary, check_text

HISTORY_LIMIT = 20_000  # StepMetrics kept in memory (and in checkpoints): the newest as they are, older ones thinned
# the settings that, with the text, fix the stream of training windows: a resumed run with the same ones continues
# at the saved window with the saved state (from_checkpoint); the others (lr, clipping, engine, …) may change
STREAM_SETTINGS = ("batch_size", "seq_len", "val_fraction")


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


DIVERGENCE_FACTOR = 1.5  # a recent loss above this many times ln V (uniform guessing) means training diverges
DIVERGENCE_WINDOW = 10  # steps averaged


def is_diverging(loss: float, vocab_size: int) -> bool:
    """True if ``loss`` (nats/char) is not finite or above ``DIVERGENCE_FACTOR`` × ln V: far worse than guessing
    every one of the V characters uniformly, where a new model starts. The one rule the CLI and the page use."""
    return not (math.isfinite(loss) and loss <= DIVERGENCE_FACTOR * math.log(vocab_size))


def divergence_warning(history, vocab_size: int, config: TrainConfig) -> str | None:
    """What to change, as one sentence, if the mean training loss of the last ``DIVERGENCE_WINDOW`` steps (or
    the last step alone) is above ``DIVERGENCE_FACTOR`` × ln V — worse than guessing uniformly — else None."""
    if not history:
        return None
    recent = [m.train_loss for m in history[-DIVERGENCE_WINDOW:]]
    loss = max(sum(recent) / len(recent), recent[-1])
    if not is_diverging(loss, vocab_size):
        return None
    ln_v = math.log(vocab_size)
    advice = f"lower the learning rate (now {config.lr:g})"
    if config.clip_norm is None and config.clip_value is None:
        advice += " and turn gradient clipping on (clip_norm, e.g. 5)"
    elif config.clip_norm is not None:
        advice += f" or clip harder (clip_norm now {config.clip_norm:g})"
    return (f"training is diverging: the loss is {loss:,.3g} nats/char, far above ln V = {ln_v:.3g} (guessing "
            f"uniformly among {vocab_size} characters); {advice}")


def _check_params_fit(params, config: model_lib.ModelConfig) -> None:
    """``ConfigError`` unless ``params`` has exactly the shapes a model of ``config`` needs (e.g. a vocabulary
    that does not match the parameters)."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    shapes = config.param_shapes()
    if set(params) != set(shapes):
        raise ConfigError(f"params must have exactly the arrays {', '.join(shapes)}, got {', '.join(map(str, params))}")
    for name, shape in shapes.items():
        if np.shape(params[name]) != shape:
            raise ConfigError(f"parameter {name!r} has shape {np.shape(params[name])}, but the vocabulary "
                              f"({config.vocab_size} symbols) and hidden size ({config.hidden_size}) need {shape}")


class Trainer:
    """Trains a model on one text, one truncated-BPTT window at a time (``step``), resumable at any step."""

    def __init__(self, text: str, config: TrainConfig = TrainConfig(), *, vocab: Vocabulary | None = None,
                 params: dict | None = None):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config.validate()
        check_text(text)
        self.vocab = vocab if vocab is not None else Vocabulary.from_text(text)
        if not isinstance(self.vocab, Vocabulary):
            raise TypeError(f"vocab must be a Vocabulary, got {type(self.vocab).__name__}")
        self.text_sha256 = text_fingerprint(text)
        ids = self.vocab.encode(text)
        self.model_config = model_lib.ModelConfig(self.vocab.size, config.hidden_size, config.cell)
        self.dtype = np.dtype(config.dtype)
        n_val = int(len(ids) * config.val_fraction)
        self.train_ids, self.val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val:]
        B, T = config.batch_size, config.seq_len
        self.stream_len = (len(self.train_ids) - 1) // B  # each stream needs stream_len + 1 ids for its targets
        if self.stream_len < T:
            fit = max(0, (len(self.train_ids) - 1) // T)
            raise ConfigError(
                f"the training text has {len(self.train_ids):,} characters, too few for batch_size={B} × "
                f"seq_len={T} (needs at least {B * T + 1:,}); use a longer text"
                + (f" or batch_size ≤ {fit}" if fit >= 1 else " or a shorter seq_len")
            )
        streams = self.train_ids[: B * self.stream_len + 1]
        # stream b covers ids[b·L : (b+1)·L + 1]: inputs are its first L ids, targets its last L
        self._inputs = streams[:-1].reshape(B, self.stream_len)
        self._targets = streams[1:].reshape(B, self.stream_len)
        self.windows_per_epoch = self.stream_len // T
        params = params if params is not None else model_lib.init_params(self.model_config, config.seed, self.dtype)
        _check_params_fit(params, self.model_config)
        # what computes the steps (the fastest engine that applies here) owns the parameters and optimiser state
        self.engine = engines.pick(self.config, self.model_config, params)
        self.hidden = model_lib.init_hidden(self.model_config, B, self.dtype)
        self.window = 0  # index of the next window within the epoch
        self.step_count = 0
        self.chars_seen = 0
        self.elapsed = 0.0
        self.history: list[StepMetrics] = []

    # --- what trains: the engine owns the parameters and the optimiser state -----------------------------------
    @property
    def engine_choice(self) -> engines.EngineChoice:
        """Which engine computes the steps, and why not a faster one (a record)."""
        return self.engine.choice

    @property
    def params(self) -> dict:
        """{name: array} of the model; writing into an array changes it, assigning ``trainer.params = {...}``
        replaces them all (the optimiser state stays)."""
        return self.engine.params()

    @params.setter
    def params(self, params: dict) -> None:
        _check_params_fit(params, self.model_config)
        self.engine.load({k: np.asarray(v, self.dtype) for k, v in params.items()}, self.engine.optimizer_state())

    @property
    def optimizer(self):
        """The optimiser's hyper-parameters (``optim.Optimizer``); its state is ``optimizer_state``."""
        return self.engine.optimizer

    @property
    def optimizer_state(self) -> dict:
        return self.engine.optimizer_state()

    # --- data ---------------------------------------------------------------------------------------------
    def current_batch(self):
        """(inputs, targets) int (B, T) of the next window."""
        start = self.window * self.config.seq_len
        stop = start + self.config.seq_len
        return self._inputs[:, start:stop], self._targets[:, start:stop]

    # --- training -----------------------------------------------------------------------------------------
    def step(self, validate: bool | None = None) -> StepMetrics:
        """One window on all streams and one optimiser update, then a validation (``val_loss``) every
        ``eval_every`` steps, or exactly when ``validate`` says (True / False: the caller paces it, e.g. by time).
        Raises ``TrainingDiverged`` (keeping the last good parameters and optimiser state) if the loss,
        gradients or new parameters are not finite."""
        cfg = self.config
        started = time.perf_counter()
        inputs, targets = self.current_batch()
        self.optimizer.lr = scheduled_lr(cfg.lr, cfg.lr_decay_steps, self.step_count)
        result = self.engine.step(inputs, targets, self.hidden)
        loss, norm = result.loss, result.grad_norm
        if not (math.isfinite(loss) and math.isfinite(norm)):
            raise TrainingDiverged(
                f"training diverged at step {self.step_count + 1} (loss {loss:.4g}, gradient norm "
                f"{norm:.4g}); the last good model was kept — lower the learning rate (now {cfg.lr:g})"
            )
        if not result.finite:
            raise TrainingDiverged(
                f"training diverged at step {self.step_count + 1}: the update made parameters infinite; the last "
                f"good model was kept — lower the learning rate (now {cfg.lr:g})"
            )
        self.hidden = result.state.astype(self.dtype, copy=False)
        self.window += 1
        if self.window >= self.windows_per_epoch:
            self.window = 0
            self.hidden = np.zeros_like(self.hidden)
        self.step_count += 1
        n_chars = inputs.size
        self.chars_seen += n_chars
        seconds = time.perf_counter() - started
        self.elapsed += seconds
        val = None
        if validate is None:
            validate = self.step_count % cfg.eval_every == 0
        if validate and self.val_ids.size >= 2:
            val = self.evaluate()
        metrics = StepMetrics(self.step_count, loss, val, n_chars / max(seconds, 1e-9), norm,
                              self.chars_seen, self.elapsed)
        self.history.append(metrics)
        if len(self.history) > HISTORY_LIMIT:  # bounded memory and saves, however long the run
            self.history = thin_history(self.history, HISTORY_LIMIT // 2)
        return metrics

    def run(self, n_steps: int, callback=None) -> list[StepMetrics]:
        """``n_steps`` calls of ``step``; ``callback(metrics)`` after each."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
            raise ConfigError(f"n_steps must be a whole number ≥ 0, got {n_steps!r}")
        out = []
        with engines.blas_threads():  # one BLAS thread for the whole run (docs/performance.md)
            for _ in range(int(n_steps)):
                out.append(self.step())
                if callback is not None:
                    callback(out[-1])
        return out

    # --- looking inside -----------------------------------------------------------------------------------
    def evaluate(self) -> float:
        """Validation loss (nats/char) on the first ``eval_chars`` characters of the validation text."""
        if self.val_ids.size < 2:
            raise ConfigError("there is no validation text (val_fraction is 0 or the text is too short)")
        return model_lib.evaluate_loss(self.params, self.val_ids[: self.config.eval_chars + 1], cell=self.config.cell)

    def gradient_flow(self, cell: str | None = None, seq_len: int | None = None, last_step: bool = False) -> np.ndarray:
        """‖∂L/∂h_t‖ for t = 1..T on the current batch (manual BPTT in the training dtype: in the browser, float32
        runs in the SIMD kernels, 2-5x faster than float64 numpy), shape (T,); with ``last_step``,
        ‖∂L_T/∂h_t‖ of the last character's loss alone (``bptt.gradient_reach``).

        With another ``cell``, the same quantity for a freshly initialised model of that cell (seed and H of this
        run) from a zero state, on the same batch: the comparison of how far each cell's gradients reach back.
        ``seq_len`` (≤ the stream length) takes a longer window from the current position."""
        T = self.config.seq_len if seq_len is None else seq_len
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or not 1 <= T <= self.stream_len:
            raise ConfigError(f"seq_len for the gradient flow must be a whole number from 1 to {self.stream_len:,}")
        start = min(self.window * self.config.seq_len, self.stream_len - T)
        inputs, targets = self._inputs[:, start:start + T], self._targets[:, start:start + T]
        if cell is None or cell == self.config.cell:
            params, state, cell = self.params, self.hidden, self.config.cell
        else:
            other = model_lib.ModelConfig(self.vocab.size, self.config.hidden_size, cell)
            params = model_lib.init_params(other, self.config.seed, self.dtype)
            state = model_lib.init_hidden(other, inputs.shape[0], self.dtype)
        if last_step:
            return gradient_reach(params, inputs, targets, state, cell)
        return manual_bptt(params, inputs, targets, state, cell=cell).dh_norms

    def gradient_check(self, max_batch: int = 2, max_len: int = 8, n_probes: int = 12, tolerance_fd: float = 1e-5):
        """Compare the gradient methods on a small slice of the current batch (see ``gradcheck``).

        A trained model's gradients are small, so rounding in the finite differences weighs more than on the
        random models of the tests: the finite-difference tolerance here is 1e-5 (the exact methods still
        must agree to 1e-10)."""
        from .gradcheck import gradient_check

        inputs, targets = self.current_batch()
        return gradient_check(self.params, inputs[:max_batch, :max_len], targets[:max_batch, :max_len],
                              self.hidden[:max_batch], n_probes=n_probes, seed=self.step_count,
                              tolerance_fd=tolerance_fd, cell=self.config.cell)

    def sample(self, length: int, prime: str = "", temperature: float = 1.0, seed: int | None = None) -> str:
        from .sampling import sample

        return sample(self.params, self.vocab, length, prime=prime, temperature=temperature, seed=seed,
                      cell=self.config.cell)

    def divergence_warning(self) -> str | None:
        """A sentence saying what to change if the recent loss is far above ln V (diverging), else None."""
        return divergence_warning(self.history, self.vocab.size, self.config)

    @property
    def epoch(self) -> float:
        return self.step_count / self.windows_per_epoch

    # --- saving and resuming ------------------------------------------------------------------------------
    def progress(self) -> dict:
        """Everything besides params and optimiser state that a checkpoint needs to resume exactly."""
        return {"step": self.step_count, "window": self.window, "chars_seen": self.chars_seen,
                "elapsed": self.elapsed, "text_sha256": self.text_sha256}

    def state(self) -> Checkpoint:
        """A snapshot of everything needed to resume exactly (copies: later steps do not change it)."""
        return Checkpoint(self.config, self.vocab, {k: v.copy() for k, v in self.params.items()},
                          {k: np.copy(v) for k, v in self.optimizer_state.items()}, self.progress(),
                          self.hidden.copy(), list(self.history))

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, text: str | None = None,
                        config: TrainConfig | None = None) -> "Trainer":
        """A trainer that continues ``checkpoint``. With the same text and the same data stream
        (``STREAM_SETTINGS``: batch size, window length, validation split) it continues at the saved window with
        the saved state, whatever else ``config`` changes (e.g. the learning rate); otherwise (another text in
        the same vocabulary, or another stream) it continues from the saved weights at the start of the text."""
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"from_checkpoint needs a Checkpoint (e.g. load_checkpoint(path)), got {type(checkpoint).__name__}")
        check_state(checkpoint)
        config = config or checkpoint.config
        if config.hidden_size != checkpoint.config.hidden_size:
            raise CheckpointError(
                f"the checkpoint has hidden size {checkpoint.config.hidden_size}, not {config.hidden_size}")
        if config.cell != checkpoint.config.cell:
            raise CheckpointError(f"the checkpoint is a {checkpoint.config.cell} model, not a {config.cell}")
        if text is None:
            raise TextError("give the text to train on (the checkpoint does not store it)")
        check_text(text)
        unknown = sorted({c for c in set(text) if c not in checkpoint.vocab})
        if unknown and checkpoint.vocab.unknown is None:
            shown = "".join(unknown[:10])
            raise CheckpointError(
                f"the text has {len(unknown)} character(s) the model does not know (e.g. {shown!r}); train a new model"
            )
        params = {k: v.astype(np.dtype(config.dtype)) for k, v in checkpoint.params.items()}
        trainer = cls(text, config, vocab=checkpoint.vocab, params=params)
        same_run = (checkpoint.progress.get("text_sha256") == trainer.text_sha256
                    and all(getattr(config, f) == getattr(checkpoint.config, f) for f in STREAM_SETTINGS))
        if config.optimizer == checkpoint.config.optimizer:
            trainer.engine.load(params, checkpoint.optimizer_state)
        progress = checkpoint.progress
        trainer.step_count = int(progress.get("step", 0))
        trainer.chars_seen = int(progress.get("chars_seen", 0))
        trainer.elapsed = float(progress.get("elapsed", 0.0))
        trainer.history = list(checkpoint.history)
        if same_run and checkpoint.hidden is not None and checkpoint.hidden.shape == trainer.hidden.shape:
            trainer.window = int(progress.get("window", 0)) % trainer.windows_per_epoch
            trainer.hidden = checkpoint.hidden.astype(trainer.dtype)
        return trainer
