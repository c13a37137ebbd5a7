"""A version-1 checkpoint written by tinyrnn before the cells (tanh RNN only) still loads, samples and resumes
exactly as it did then. The file and the expected values were made by the code of commit 8ebefa4:

    trainer = Trainer(load_corpus("alphabet")[:4000], TrainConfig(hidden_size=8, seq_len=8, batch_size=2))
    trainer.run(5)
    save_checkpoint(trainer.state(), "tests/data/checkpoint-v1-rnn.npz")
"""

from pathlib import Path

import tinyrnn

V1_FILE = Path(__file__).parent / "data" / "checkpoint-v1-rnn.npz"


def test_a_version_1_checkpoint_loads_as_a_tanh_rnn():
    ckpt = tinyrnn.load_checkpoint(V1_FILE)
    assert ckpt.config.hidden_size == 8 and ckpt.progress["step"] == 5
    assert getattr(ckpt.config, "cell", "rnn") == "rnn"
    assert set(ckpt.params) == {"W_hx", "W_hh", "b_h", "W_yh", "b_y"}
    assert ckpt.hidden.shape == (2, 8)


def test_a_version_1_checkpoint_samples_the_same_text_as_before():
    ckpt = tinyrnn.load_checkpoint(V1_FILE)
    assert tinyrnn.sample(ckpt.params, ckpt.vocab, 40, prime="ab", temperature=1.0, seed=11) == \
        "cmp\ncyacypimqgcurmvnzenliofuwclgbxkcrexe"
    assert tinyrnn.sample(ckpt.params, ckpt.vocab, 20, prime="ab", temperature=0) == "bjjbbbbbbbbbbbbbbbbb"


def test_a_version_1_checkpoint_resumes_with_the_same_losses_as_before(monkeypatch):
    monkeypatch.setenv("TINYRNN_NATIVE_KERNELS", "0")  # the losses recorded are the numpy reference engine's
    trainer = tinyrnn.Trainer.from_checkpoint(tinyrnn.load_checkpoint(V1_FILE), tinyrnn.load_corpus("alphabet")[:4000])
    assert [m.train_loss for m in trainer.run(2)] == [3.273761585354805, 3.2623288184404373]
    assert trainer.step_count == 7
