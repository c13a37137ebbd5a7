"""Explaining predictions (tinyrnn.explain): connectivity against traced autograd and finite differences, the gate
traces against the cells' own forward pass and their equations, the most likely next characters against sampling."""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

import tinyrnn
from tinyrnn import explain
from tinyrnn.errors import ConfigError, UnknownCharacterError

from helpers import random_problem

CELLS = tinyrnn.CELLS
V, H = 7, 5


def problem(cell, n=12, seed=0):
    """Random params of a ``cell`` model, ids (n,) and a non-zero start state (1, S)."""
    params, inputs, _, h0 = random_problem(V, H, 1, n, seed=seed, cell=cell)
    return params, inputs[0], h0


def traced_log_p(params, ids, position, h0, cell, embeddings):
    """log p(ids[position+1]) by the cell's traced (autograd) recurrence, with ``embeddings`` (position+1, G·H) as
    the input columns used at steps 0..position: differentiable w.r.t. them."""
    spec = tinyrnn.get_cell(cell)
    weights = (anp.transpose(embeddings),) + tuple(params[k] for k in spec.recurrence_names[1:])
    hs, _ = spec.traced(weights, h0, np.arange(position + 1)[:, None])
    logits = anp.dot(hs[-1][0], anp.transpose(params["W_yh"])) + params["b_y"]
    return logits[ids[position + 1]] - anp.log(anp.sum(anp.exp(logits)))


@pytest.mark.parametrize("cell", CELLS)
def test_connectivity_is_the_traced_autograd_gradient_per_input(cell):
    params, ids, h0 = problem(cell)
    W_in = params[tinyrnn.get_cell(cell).recurrence_names[0]]
    for position in (0, 4, len(ids) - 2):
        embeddings = W_in[:, ids[:position + 1]].T.copy()
        reference = grad(lambda e: traced_log_p(params, ids, position, h0, cell, e))(embeddings)
        got = tinyrnn.connectivity(params, ids, position, h0, cell)
        assert got.shape == (position + 1,)
        np.testing.assert_allclose(got, np.linalg.norm(reference, axis=1), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_connectivity_matches_finite_differences_on_the_models_own_weights(cell):
    """For a character that occurs once in the passage read so far, e_s is the whole column ids[s] of the input
    weights: centred differences of log p over that column of the unchanged model give the same gradient."""
    params, _, h0 = problem(cell)
    ids = np.array([3, 0, 5, 1, 6, 2, 4, 2])  # ids 3, 0, 5, 1, 6 occur once before the last prediction
    position = len(ids) - 2
    name = tinyrnn.get_cell(cell).recurrence_names[0]
    got = tinyrnn.connectivity(params, ids, position, h0, cell)

    def log_p(p):
        return np.log(tinyrnn.next_probabilities(p, ids[:position + 1], h0, cell)[-1, ids[position + 1]])

    eps = 1e-6
    for s in range(5):
        column = np.zeros(params[name].shape[0])
        for row in range(column.size):
            plus, minus = dict(params), dict(params)
            plus[name], minus[name] = params[name].copy(), params[name].copy()
            plus[name][row, ids[s]] += eps
            minus[name][row, ids[s]] -= eps
            column[row] = (log_p(plus) - log_p(minus)) / (2 * eps)
        assert got[s] == pytest.approx(np.linalg.norm(column), rel=1e-6, abs=1e-12)


def test_without_recurrence_a_prediction_depends_on_the_last_character_alone():
    params, ids, _ = problem("rnn")
    params["W_hh"] = np.zeros_like(params["W_hh"])
    got = tinyrnn.connectivity(params, ids, 6)
    assert np.all(got[:-1] == 0) and got[-1] > 0


def test_connectivity_reads_from_a_zero_state_by_default():
    params, ids, h0 = problem("lstm")
    zero = np.zeros((1, 2 * H))
    np.testing.assert_array_equal(tinyrnn.connectivity(params, ids, 5, cell="lstm"),
                                  tinyrnn.connectivity(params, ids, 5, zero[0], "lstm"))
    assert not np.allclose(tinyrnn.connectivity(params, ids, 5, h0, "lstm"),
                           tinyrnn.connectivity(params, ids, 5, cell="lstm"))


@pytest.mark.parametrize("cell", CELLS)
def test_gate_trace_is_the_cells_own_forward_pass(cell):
    params, ids, h0 = problem(cell, n=20)
    trace = tinyrnn.gate_trace(params, ids, h0, cell)
    expected = {"rnn": {"h"}, "gru": {"r", "z", "n", "h"}, "lstm": {"i", "f", "g", "o", "c", "h"}}[cell]
    assert set(trace) == expected and all(v.shape == (len(ids), H) for v in trace.values())
    _, hs = tinyrnn.forward(params, ids[None, :], h0, cell)
    np.testing.assert_allclose(trace["h"], hs[0], rtol=0, atol=1e-13)
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h_prev, c_prev = h0[0, :H], h0[0, H:]
    for t, i in enumerate(ids):  # each gate from its equation (gru.py, lstm.py), with the previous h
        if cell == "gru":
            W_ih, W_hh, b_ih, b_hh = (params[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh"))
            x, hh = W_ih[:, i] + b_ih, W_hh @ h_prev + b_hh
            r, z = sigmoid(x[:H] + hh[:H]), sigmoid(x[H:2 * H] + hh[H:2 * H])
            n = np.tanh(x[2 * H:] + r * hh[2 * H:])
            for name, value in (("r", r), ("z", z), ("n", n)):
                np.testing.assert_allclose(trace[name][t], value, atol=1e-13)
            np.testing.assert_allclose(trace["h"][t], (1 - z) * n + z * h_prev, atol=1e-13)
        elif cell == "lstm":
            W_ih, W_hh, b_ih, b_hh = (params[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh"))
            a = W_ih[:, i] + b_ih + b_hh + W_hh @ h_prev
            gates = dict(i=sigmoid(a[:H]), f=sigmoid(a[H:2 * H]), g=np.tanh(a[2 * H:3 * H]), o=sigmoid(a[3 * H:]))
            for name, value in gates.items():
                np.testing.assert_allclose(trace[name][t], value, atol=1e-13)
            c_prev = gates["f"] * c_prev + gates["i"] * gates["g"]
            np.testing.assert_allclose(trace["c"][t], c_prev, atol=1e-13)
        h_prev = trace["h"][t]


@pytest.mark.parametrize("cell", CELLS)
def test_top_next_are_the_most_likely_characters_of_samplings_distribution(cell):
    text = "abcab cabba cab acab"
    vocab = tinyrnn.Vocabulary.from_text(text)
    params = {k: v + 0.5 * np.random.default_rng(1).standard_normal(v.shape)
              for k, v in tinyrnn.init_params(tinyrnn.ModelConfig(vocab.size, 6, cell), seed=2).items()}
    ids = vocab.encode(text)
    top = tinyrnn.top_next(params, ids, k=3, cell=cell)
    assert top.ids.shape == top.probs.shape == (len(ids), 3)
    assert np.all(np.diff(top.probs, axis=1) <= 0) and np.all(top.probs.sum(axis=1) <= 1 + 1e-12)
    distributions = tinyrnn.next_probabilities(params, ids, cell=cell)
    np.testing.assert_array_equal(np.take_along_axis(distributions, top.ids, axis=1), top.probs)
    for t in (0, 7, len(ids) - 1):
        # greedy sampling (temperature 0) after the prime text[:t+1] picks the most likely character
        assert tinyrnn.sample(params, vocab, 1, prime=text[:t + 1], temperature=0, cell=cell) == vocab.chars[top.ids[t, 0]]
        # at temperature 1 sampling draws from the same distribution: its random generator, given the same seed
        # and these probabilities, picks the same character every time
        for seed in range(100):
            drawn = np.random.default_rng(seed).choice(vocab.size, p=distributions[t])
            assert tinyrnn.sample(params, vocab, 1, prime=text[:t + 1], seed=seed, cell=cell) == vocab.chars[drawn]


def test_top_next_all_characters_are_the_whole_distribution():
    params, ids, h0 = problem("gru")
    top = tinyrnn.top_next(params, ids, k=V, h0=h0, cell="gru")
    np.testing.assert_allclose(top.probs.sum(axis=1), 1.0, rtol=1e-12)
    assert all(sorted(row) == list(range(V)) for row in top.ids.tolist())


def test_tracking_units_find_a_unit_that_counts_brackets_in_any_trace():
    text = tinyrnn.load_corpus("brackets")[:800]
    depth = tinyrnn.text_features(text)["inside brackets"]
    rng = np.random.default_rng(0)
    trace = {"z": rng.random((len(text), 6)), "h": rng.standard_normal((len(text), 6))}
    trace["z"][:, 4] = depth / depth.max() * 0.5 + 0.02 * rng.random(len(text))
    found = tinyrnn.tracking_units(trace, text, per_feature=2)
    assert set(found) == {"z", "h"}
    best = [m for m in found["z"] if m.feature == "inside brackets"][0]
    assert best.unit == 4 and best.correlation > 0.95
    assert all(abs(m.correlation) < 0.3 for m in found["h"] if m.feature == "inside brackets")


@pytest.mark.parametrize("call, match", [
    (lambda p, ids: tinyrnn.connectivity(p, ids, len(ids) - 1), "position must be a whole number from 0 to 10"),
    (lambda p, ids: tinyrnn.connectivity(p, ids, -1), "position must be"),
    (lambda p, ids: tinyrnn.connectivity(p, ids, True), "position must be"),
    (lambda p, ids: tinyrnn.connectivity(p, ids[:1], 0), "ids must hold at least 2"),
    (lambda p, ids: tinyrnn.top_next(p, ids, k=0), "k must be a whole number from 1 to 7"),
    (lambda p, ids: tinyrnn.top_next(p, ids, k=8), "k must be"),
    (lambda p, ids: tinyrnn.gate_trace(p, ids, h0=np.zeros(3)), r"h0 must be a finite state of shape \(5,\)"),
    (lambda p, ids: tinyrnn.gate_trace(p, ids, cell="gru"), "W_ih"),
    (lambda p, ids: tinyrnn.gate_trace(p, ids[None, :]), "ids must be a 1-D sequence"),
    (lambda p, ids: tinyrnn.gate_trace(p, ids[:0]), "ids must be a 1-D sequence"),
    (lambda p, ids: tinyrnn.gate_trace(p, ids, cell="elman"), "cell must be one of"),
    (lambda p, ids: tinyrnn.tracking_units({"h": np.zeros((3, 2))}, "ab"), r"trace\['h'\] must have one row"),
])
def test_bad_arguments_are_named(call, match):
    params, ids, _ = problem("rnn")
    with pytest.raises(ConfigError, match=match):
        call(params, ids)


def test_ids_outside_the_vocabulary_and_wrong_types_are_refused():
    params, ids, _ = problem("rnn")
    with pytest.raises(UnknownCharacterError, match=r"ids must lie in \[0, 7\)"):
        tinyrnn.top_next(params, np.array([1, 7]))
    with pytest.raises(TypeError, match="params must be a dict"):
        tinyrnn.gate_trace([1, 2], ids)
    with pytest.raises(TypeError, match="text must be a str"):
        tinyrnn.tracking_units({"h": np.zeros((2, 2))}, b"ab")
    assert explain.TopNext is tinyrnn.TopNext
