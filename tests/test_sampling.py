import pytest

import tinyrnn
from tinyrnn import ConfigError, TrainConfig, Trainer, UnknownCharacterError


@pytest.fixture(scope="module")
def trainer():
    t = Trainer(tinyrnn.default_corpus()[:20_000], TrainConfig(hidden_size=16, seq_len=8, batch_size=2))
    t.run(20)
    return t


def test_seed_reproduces_and_length_is_exact(trainer):
    a = trainer.sample(80, prime="MAC", seed=5)
    assert len(a) == 80 and a == trainer.sample(80, prime="MAC", seed=5)
    assert a != trainer.sample(80, prime="MAC", seed=6)
    assert trainer.sample(0) == ""


def test_temperature_zero_is_greedy_and_deterministic(trainer):
    greedy = trainer.sample(40, prime="The ", temperature=0)
    assert greedy == trainer.sample(40, prime="The ", temperature=0, seed=123)
    assert greedy == trainer.sample(40, prime="The ", temperature=1e-6, seed=9)  # the limit T → 0


def test_unknown_prime_and_bad_settings(trainer):
    with pytest.raises(UnknownCharacterError, match="'€'"):
        trainer.sample(5, prime="€")
    with pytest.raises(ConfigError, match="temperature must be a number in \\[0, 100\\]"):
        trainer.sample(5, temperature=-1)
    with pytest.raises(ConfigError, match="length must be a whole number"):
        trainer.sample(-5)
