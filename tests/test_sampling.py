import numpy as np
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


def test_numpy_scalars_are_numbers(trainer):
    assert trainer.sample(np.int64(10), temperature=np.float32(0.5), seed=np.uint32(3)) == trainer.sample(
        10, temperature=0.5, seed=3)


def test_a_tiny_temperature_is_greedy_not_nan(trainer):
    greedy = trainer.sample(30, prime="The ", temperature=0)
    assert trainer.sample(30, prime="The ", temperature=1e-320, seed=1) == greedy
    assert trainer.sample(30, prime="The ", temperature=np.float32(1e-30), seed=1) == greedy


@pytest.mark.parametrize("kwargs, error, message", [
    ({"seed": -1}, ConfigError, "seed must be a whole number from 0 to 4,294,967,295, got -1"),
    ({"seed": 2.5}, ConfigError, "seed must be a whole number"),
    ({"prime": None}, TypeError, "prime must be a str, got NoneType"),
    ({"prime": 5}, TypeError, "prime must be a str, got int"),
    ({"temperature": "hot"}, ConfigError, r"temperature must be a number in \[0, 100\]"),
])
def test_bad_arguments_name_themselves(trainer, kwargs, error, message):
    with pytest.raises(error, match=message):
        trainer.sample(5, **kwargs)


def test_a_vocabulary_that_does_not_fit_the_parameters_is_refused(trainer):
    other = tinyrnn.Vocabulary.from_text("abc")
    with pytest.raises(ConfigError, match=r"the vocabulary has 3 symbols but the parameters are for \d+"):
        tinyrnn.sample(trainer.params, other, 5)
    with pytest.raises(TypeError, match="vocab must be a Vocabulary"):
        tinyrnn.sample(trainer.params, "abc", 5)
