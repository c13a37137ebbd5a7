"""Shared test data."""
import numpy as np
import tinyrnn


def random_problem(V, H, B, T, seed=0, dtype=np.float64, scale=0.3, cell="rnn"):
    """Random params of a ``cell`` model (perturbed away from init so no gradient is trivially zero), a batch and
    a non-zero initial state h0 (B, S): for the LSTM both its h and its c parts are non-zero."""
    rng = np.random.default_rng(seed)
    config = tinyrnn.ModelConfig(V, H, cell)
    params = tinyrnn.init_params(config, seed=seed)
    params = {k: (v + scale * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B, T))
    h0 = (0.5 * rng.standard_normal((B, config.state_size()))).astype(dtype)
    return params, inputs, targets, h0


REPETITIVE = "abcdefghij" * 300


def assert_learns_repetitive_text(config, steps=300):
    """Train on REPETITIVE: the loss must fall from about ln V to below a tenth of it, and greedy sampling must
    continue the pattern. Returns the trainer."""
    import math

    trainer = tinyrnn.Trainer(REPETITIVE, config)
    history = trainer.run(steps)
    ln_v = math.log(trainer.vocab.size)
    assert history[0].train_loss > 0.9 * ln_v
    assert history[-1].train_loss < 0.1 * ln_v
    assert trainer.evaluate() < 0.1 * ln_v
    assert trainer.sample(20, prime="abc", temperature=0) == "defghijabcdefghijabc"
    return trainer
