"""Looking inside a model (tinyrnn.probes) and the memory experiment's corpus (corpora.recall_corpus)."""

import numpy as np
import pytest

import tinyrnn
from tinyrnn import probes
from tinyrnn.corpora import RECALL_CUE, RECALL_LETTERS, recall_corpus, recall_positions


@pytest.mark.parametrize("k", [2, 5, 40])
def test_the_recalled_letter_comes_back_exactly_k_characters_later(k):
    text = recall_corpus(k, n_lines=200, seed=1)
    positions = recall_positions(text)
    assert len(positions) == 200
    for p in positions:
        assert text[p] == text[p - k] and text[p] in RECALL_LETTERS and text[p - 1] == RECALL_CUE
    assert all(len(line) == k + 1 for line in text.splitlines())
    assert recall_corpus(k, n_lines=200, seed=1) == text != recall_corpus(k, n_lines=200, seed=2)


@pytest.mark.parametrize("k", [1, 0, 201, 2.5, True])
def test_recall_distance_out_of_range_is_refused(k):
    with pytest.raises(ValueError, match="k must be a whole number from 2 to 200"):
        recall_corpus(k)


def test_text_features_follow_quotes_brackets_and_columns():
    f = probes.text_features('a"b"(c[d])\nxy')
    np.testing.assert_array_equal(f["inside quotes"], [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["inside brackets"], [0, 0, 0, 0, 1, 1, 2, 2, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["position in line"], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2])


def test_unit_correlations_find_a_planted_unit():
    rng = np.random.default_rng(0)
    features = probes.text_features(tinyrnn.load_corpus("brackets")[:3000])
    states = rng.standard_normal((3000, 16))
    states[:, 11] = 0.3 * features["inside brackets"] + 0.05 * rng.standard_normal(3000)
    states[:, 4] = 0.0  # a dead unit has no correlation (and no division by zero)
    best = [m for m in probes.unit_correlations(states, features) if m.feature == "inside brackets"]
    assert best[0].unit == 11 and best[0].correlation > 0.9
    assert all(abs(m.correlation) < 0.2 for m in best[1:])
    assert not [m for m in probes.unit_correlations(states, features) if m.feature == "inside quotes"]


def test_recall_accuracy_counts_only_the_recall_positions():
    ids = np.array([3, 1, 2, 3, 0])
    logits = np.zeros((5, 4))
    logits[1, 2] = logits[2, 3] = 1.0  # right at positions 2 and 3
    logits[3, 1] = 1.0  # wrong at position 4
    assert probes.recall_accuracy(logits, ids, [2, 3, 4]) == pytest.approx(2 / 3)
    with pytest.raises(tinyrnn.ConfigError, match="positions must be a non-empty list of indices from 1 to 4"):
        probes.recall_accuracy(logits, ids, [])


@pytest.mark.parametrize("cell", ["rnn", "gru"])  # the LSTM learns this slower (~0.56 after 400 steps)
def test_a_trained_model_recalls_at_a_short_distance_and_an_untrained_one_guesses(cell):
    text = recall_corpus(3, n_lines=1500)
    config = tinyrnn.TrainConfig(hidden_size=32, seq_len=24, batch_size=8, lr=1e-2, val_fraction=0.0, seed=0,
                                 cell=cell)
    trainer = tinyrnn.Trainer(text, config)
    passage = text[-600:]  # shorter than a training stream (an LSTM's c can drift on longer passages from zero)
    ids, h0 = trainer.vocab.encode(passage), np.zeros((1, trainer.model_config.state_size()), dtype=np.float32)
    untrained = probes.recall_accuracy(probes.read_passage(trainer.params, ids, h0, cell)[1], ids,
                                       recall_positions(passage))
    trainer.run(400)
    states, logits = probes.read_passage(trainer.params, ids, h0, cell)
    assert states.shape == (len(passage), 32) and logits.shape == (len(passage), trainer.vocab.size)
    trained = probes.recall_accuracy(logits, ids, recall_positions(passage))
    assert untrained < 0.4 and trained > 0.9, (untrained, trained)


def test_recall_lines_finds_the_complete_lines_of_a_slice_and_their_k():
    text = recall_corpus(7, n_lines=50, seed=3)
    lines, k = tinyrnn.recall_lines(text[5:-3])  # a slice: the first and last lines are cut
    assert k == 7 and lines == text.splitlines()[1:-1]
    assert tinyrnn.recall_lines(tinyrnn.load_corpus("alphabet")[:500]) == ([], None)
    assert tinyrnn.recall_lines("\na12:b\nc34:c\n") == ([], None)  # a line whose letter does not come back
    assert tinyrnn.RECALL_LETTERS == RECALL_LETTERS and tinyrnn.MAX_RECALL_K == 200
