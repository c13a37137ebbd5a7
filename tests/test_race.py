"""The cells race (tinyrnn.race): fair turns, the same runs as stand-alone trainers, the record, the verdict."""

import numpy as np
import pytest

import tinyrnn
from tinyrnn import race as race_lib
from tinyrnn.errors import ConfigError, TrainingDiverged

TEXT = tinyrnn.recall_corpus(3, n_lines=400, seed=1)
CONFIG = tinyrnn.TrainConfig(hidden_size=8, seq_len=10, batch_size=4, lr=1e-2, eval_every=5, eval_chars=300, seed=3)
STEP = CONFIG.batch_size * CONFIG.seq_len
BUDGET = 12 * STEP - 5  # 12 steps each, the last one passing the budget


def finished_race(**kw):
    race = tinyrnn.CellsRace(TEXT, CONFIG, budget=BUDGET, reach_steps=30, **kw)
    order = []
    while (cell := race.advance()) is not None:
        order.append(cell)
    return race, order


def test_the_cell_furthest_behind_trains_next_until_each_has_seen_the_budget():
    race = tinyrnn.CellsRace(TEXT, CONFIG, budget=BUDGET, reach_steps=30)
    while not race.done:
        seen = race.chars_seen()
        behind = race.behind()
        assert seen[behind] == min(seen.values())
        assert race.advance() == behind and race.chars_seen()[behind] == seen[behind] + STEP
    assert race.advance() is None and race.behind() is None
    assert race.chars_seen() == {cell: 12 * STEP for cell in tinyrnn.CELLS}


def test_each_lane_is_the_stand_alone_run_of_that_cell():
    race, order = finished_race()
    assert order[:6] == ["rnn", "gru", "lstm", "rnn", "gru", "lstm"]
    for cell in tinyrnn.CELLS:
        alone = tinyrnn.Trainer(TEXT, tinyrnn.TrainConfig(**{**CONFIG.to_dict(), "cell": cell}))
        history = alone.run(12)
        for name, value in alone.params.items():
            np.testing.assert_array_equal(race.trainers[cell].params[name], value)
        expected = [(0, None)] + [(m.chars_seen, m.val_loss) for m in history if m.val_loss is not None]
        expected.append((12 * STEP, alone.evaluate()))  # the last step was not a validation step: one more point
        points = race.curves()[cell]
        assert [p.chars_seen for p in points] == [c for c, _ in expected]
        assert points[0].val_loss == pytest.approx(tinyrnn.evaluate_loss(
            tinyrnn.init_params(alone.model_config, CONFIG.seed, np.float32), alone.val_ids[:CONFIG.eval_chars + 1],
            cell=cell), rel=1e-6)
        assert [p.val_loss for p in points[1:]] == pytest.approx([v for _, v in expected[1:]], rel=1e-9)


def test_the_record_holds_the_trained_and_fresh_reach_on_held_out_text():
    race, _ = finished_race()
    result = race.result()
    assert race.result() is result and result.cells == tinyrnn.CELLS and result.budget == BUDGET
    for cell, trainer in race.trainers.items():
        ids = trainer.val_ids
        windows = min(race_lib.REACH_WINDOWS, (ids.size - 1) // 30)
        assert windows == 6  # 200 held-out characters
        starts = np.linspace(0, ids.size - 31, windows).astype(int)
        inputs = np.stack([ids[s:s + 30] for s in starts])
        targets = np.stack([ids[s + 1:s + 31] for s in starts])
        h0 = np.zeros((len(starts), trainer.model_config.state_size()))
        trained = {k: v.astype(np.float64) for k, v in trainer.params.items()}
        np.testing.assert_array_equal(result.reach_trained[cell], tinyrnn.gradient_reach(trained, inputs, targets, h0, cell))
        fresh = tinyrnn.init_params(trainer.model_config, CONFIG.seed)
        np.testing.assert_array_equal(result.reach_fresh[cell], tinyrnn.gradient_reach(fresh, inputs, targets, h0, cell))
        assert result.reach_trained[cell].shape == (30,) and not np.allclose(result.reach_trained[cell], result.reach_fresh[cell])
        assert result.val_loss[cell] == race.curves()[cell][-1].val_loss == pytest.approx(trainer.evaluate(), rel=1e-9)
        np.testing.assert_array_equal(result.relative_reach(cell), result.reach_trained[cell] / result.reach_trained[cell][-1])
        for name, value in trainer.params.items():
            np.testing.assert_array_equal(result.params[cell][name], value)
            assert result.params[cell][name].dtype == np.float64


def test_the_verdict_is_written_from_the_numbers():
    reach = lambda back: np.array([back, 0.5, 1.0])  # noqa: E731
    result = race_lib.RaceResult(
        budget=2_000_000, chars_seen={"rnn": 2_000_000, "gru": 2_000_000, "lstm": 2_000_000},
        val_loss={"rnn": 1.93, "gru": 1.7149, "lstm": 1.74},
        curves={}, reach_trained={"rnn": reach(1e-6), "gru": reach(1e-2), "lstm": reach(2e-3)},
        reach_fresh={"rnn": reach(1e-5), "gru": reach(1e-15), "lstm": reach(1e-2)}, diverged={}, params={},
        vocab=tinyrnn.Vocabulary.from_text("ab"))
    assert tinyrnn.verdict(result) == (
        "After 2.0 M characters: GRU 1.71, LSTM 1.74, tanh RNN 1.93 nats/char; 2 steps back the trained GRU's "
        "gradient is 10⁴× the tanh RNN's (fresh models: 10⁻¹⁰×).")
    result.diverged["lstm"] = "training diverged"
    assert "(the LSTM diverged after 2,000,000)" in tinyrnn.verdict(result)


def test_the_verdict_of_a_real_race_names_its_measured_losses():
    race, _ = finished_race()
    result = race.result()
    sentence = tinyrnn.verdict(result)
    losses = sorted(result.val_loss.items(), key=lambda kv: kv[1])
    labels = {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}
    assert sentence.startswith(f"After {BUDGET:,} characters: " + ", ".join(f"{labels[c]} {v:.2f}" for c, v in losses))
    assert "29 steps back the trained" in sentence and sentence.endswith(".")


@pytest.mark.parametrize("a, b, words", [(1e4, 1.0, "10⁴×"), (3.2, 1.0, "3.2×"), (0.41, 1.0, "0.41×"),
                                         (1.0, 1e6, "10⁻⁶×"), (1.0, 0.0, "infinitely many times"),
                                         (0.0, 0.0, "not measurable"), (float("nan"), 1.0, "not measurable")])
def test_ratio_words(a, b, words):
    assert race_lib.ratio_words(a, b) == words


def test_a_diverging_cell_stops_and_the_others_finish(monkeypatch):
    race = tinyrnn.CellsRace(TEXT, CONFIG, budget=BUDGET, reach_steps=30)

    def diverge():
        raise TrainingDiverged("training diverged at step 1")

    monkeypatch.setattr(race.trainers["lstm"], "step", diverge)
    while race.advance() is not None:
        pass
    result = race.result()
    assert result.diverged == {"lstm": "training diverged at step 1"} and result.chars_seen["lstm"] == 0
    assert result.chars_seen["gru"] == 12 * STEP
    assert "the LSTM diverged after 0" in tinyrnn.verdict(result)


def test_a_race_can_have_two_cells_and_is_not_over_before_the_budget():
    race = tinyrnn.CellsRace(TEXT, CONFIG, budget=BUDGET, cells=("gru", "rnn"), reach_steps=30)
    race.advance()
    with pytest.raises(ConfigError, match="the race is not finished: still training"):
        race.result()
    assert set(race.chars_seen()) == {"gru", "rnn"}


@pytest.mark.parametrize("kw, match", [
    (dict(budget=STEP - 1), "budget must be a whole number of characters from 40"),
    (dict(budget=True), "budget must be"),
    (dict(budget=10**11), "budget must be"),
    (dict(cells=("rnn", "rnn")), "cells must be distinct"),
    (dict(cells=()), "cells must be distinct"),
    (dict(cells="rnn"), "cells must be distinct"),
    (dict(cells=("rnn", "elman")), "cell must be one of"),
    (dict(reach_steps=1), "reach_steps must be a whole number from 2"),
    (dict(config=tinyrnn.TrainConfig(**{**CONFIG.to_dict(), "val_fraction": 0.0})), "give a val_fraction above 0"),
    (dict(config=tinyrnn.TrainConfig(**{**CONFIG.to_dict(), "hidden_size": 0})), "hidden_size must be"),
])
def test_bad_race_arguments_are_named(kw, match):
    args = dict(config=CONFIG, budget=BUDGET) | kw
    with pytest.raises(ConfigError, match=match):
        tinyrnn.CellsRace(TEXT, **args)


def test_a_reach_window_longer_than_the_text_is_refused_when_measured():
    race = tinyrnn.CellsRace(TEXT[:900], CONFIG, budget=STEP, reach_steps=1000)
    while race.advance():
        pass
    with pytest.raises(ConfigError, match="too short to measure the gradient reach over 1000 steps"):
        race.result()
