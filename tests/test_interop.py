"""tinyrnn models move to PyTorch and back: the same logits and gradients (float64, ≤ 1e-10) for every cell.

torch is a test dependency of the project's 3.11 venv (requirements-torch.txt), never of the library."""

import numpy as np
import pytest
import torch

import tinyrnn
from tinyrnn import TrainConfig, Trainer
from tinyrnn.gradcheck import relative_error
from tinyrnn.interop import from_torch, state_from_torch, state_to_torch, to_torch

from helpers import random_problem

TEXT = tinyrnn.default_corpus()[:20_000]


def _checkpoint(cell, seed=0, V=9, H=6):
    params, inputs, targets, h0 = random_problem(V, H, 3, 7, seed=seed, cell=cell)
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")
    config = TrainConfig(hidden_size=H, cell=cell, dtype="float64")
    return tinyrnn.Checkpoint(config, vocab, params), inputs, targets, h0


def _torch_grads(module, cell):
    named = dict(module.named_parameters())
    if cell == "rnn":
        assert relative_error(named["rnn.bias_ih_l0"].grad, named["rnn.bias_hh_l0"].grad) <= 1e-14
        names = {"W_hx": "rnn.weight_ih_l0", "W_hh": "rnn.weight_hh_l0", "b_h": "rnn.bias_ih_l0"}
    else:
        names = {"W_ih": "rnn.weight_ih_l0", "W_hh": "rnn.weight_hh_l0", "b_ih": "rnn.bias_ih_l0",
                 "b_hh": "rnn.bias_hh_l0"}
    names.update(W_yh="head.weight", b_y="head.bias")
    return {ours: named[theirs].grad.numpy() for ours, theirs in names.items()}


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
@pytest.mark.parametrize("one_hot", [False, True])
def test_the_torch_module_gives_the_same_logits_and_gradients(cell, one_hot):
    ckpt, inputs, targets, h0 = _checkpoint(cell)
    module = to_torch(ckpt)
    assert module.head.weight.dtype == torch.float64
    assert type(module.rnn) is {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    state0 = state_to_torch(h0, cell)
    for part in (state0 if cell == "lstm" else (state0,)):
        part.requires_grad_(True)
    x = torch.from_numpy(inputs)
    if one_hot:
        x = torch.nn.functional.one_hot(x, 9).double()
    logits, state = module(x, state0)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 9), torch.from_numpy(targets).reshape(-1))
    loss.backward()

    ours_logits, _, ours_last = tinyrnn.forward_with_state(ckpt.params, inputs, h0, cell)
    assert relative_error(logits.detach().numpy(), ours_logits) <= 1e-10
    assert relative_error(state_from_torch(state, cell), ours_last) <= 1e-10
    ours = tinyrnn.loss_and_grads(ckpt.params, inputs, targets, h0, cell=cell)
    assert abs(loss.item() - ours.loss) <= 1e-12
    theirs = _torch_grads(module, cell)
    assert set(theirs) == set(ckpt.params)
    for name, grad in theirs.items():
        assert relative_error(grad, ours.grads[name]) <= 1e-10, name
    d_state = state_from_torch(tuple(p.grad for p in state0) if cell == "lstm" else state0.grad, cell)
    assert relative_error(d_state, ours.grads["h0"]) <= 1e-10


@pytest.mark.parametrize("cell", tinyrnn.CELLS)
def test_a_torch_trained_module_comes_back_and_continues_training(cell):
    torch.manual_seed(0)
    vocab = tinyrnn.Vocabulary.from_text(TEXT)
    module = to_torch(Trainer(TEXT, TrainConfig(hidden_size=8, seq_len=8, batch_size=2, cell=cell)).state())
    assert module.head.weight.dtype == torch.float32
    for p in module.parameters():  # weights torch chose, not ours
        torch.nn.init.uniform_(p, -0.3, 0.3)
    ids = torch.from_numpy(vocab.encode(TEXT[:40])[None])
    ckpt = from_torch(module, vocab)
    assert ckpt.config.cell == cell and ckpt.config.hidden_size == 8 and ckpt.config.dtype == "float32"
    assert {k: v.shape for k, v in ckpt.params.items()} == tinyrnn.ModelConfig(vocab.size, 8, cell).param_shapes()
    with torch.no_grad():
        expected = module(ids)[0].numpy()
    h0 = np.zeros((1, tinyrnn.ModelConfig(vocab.size, 8, cell).state_size()), np.float32)
    np.testing.assert_allclose(tinyrnn.forward(ckpt.params, ids.numpy(), h0, cell)[0], expected, rtol=1e-4, atol=1e-5)
    back = to_torch(ckpt)
    for (name, a), b in zip(module.state_dict().items(), back.state_dict().values()):
        if not (cell == "rnn" and "bias" in name and "rnn." in name):  # the tanh RNN's two biases become one
            assert torch.equal(a, b), name
    reloaded = tinyrnn.load_checkpoint(tinyrnn.checkpoint_bytes(ckpt))
    trainer = Trainer.from_checkpoint(reloaded, TEXT)
    assert trainer.step().train_loss > 0


def test_modules_tinyrnn_cannot_represent_are_refused():
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")

    class Model(torch.nn.Module):
        def __init__(self, rnn, head):
            super().__init__()
            self.rnn, self.head = rnn, head

    cases = [
        (Model(torch.nn.GRU(9, 4, num_layers=2), torch.nn.Linear(4, 9)), "one unidirectional layer"),
        (Model(torch.nn.LSTM(9, 4, proj_size=2), torch.nn.Linear(2, 9)), "one unidirectional layer"),
        (Model(torch.nn.RNN(9, 4, nonlinearity="relu"), torch.nn.Linear(4, 9)), "nonlinearity='tanh'"),
        (Model(torch.nn.GRU(8, 4), torch.nn.Linear(4, 8)), r"the vocabulary size \(9\)"),
        (torch.nn.Linear(3, 3), r"a module with \.rnn"),
        (Model(torch.nn.GRU(9, 4), torch.nn.Linear(4, 9)).half(), "float32 or float64 weights, got float16"),
    ]
    for module, message in cases:
        with pytest.raises(tinyrnn.ConfigError, match=message):
            from_torch(module, vocab)


# --- issue 16: every argument checked -----------------------------------------------------------------------

def _module(cell="gru", V=9, H=4):
    return to_torch(_checkpoint(cell, V=V, H=H)[0])


def test_bfloat16_weights_are_refused_by_name():
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")
    with pytest.raises(tinyrnn.ConfigError, match="float32 or float64 weights, got bfloat16"):
        from_torch(_module().to(torch.bfloat16), vocab)


def test_mixed_dtypes_are_refused_not_stored_as_the_heads():
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")
    mixed = _module()  # a float64 GRU with a float32 head was silently stored as float32
    mixed.head.float()
    with pytest.raises(tinyrnn.ConfigError, match=r"got float32, float64 \(all must be of one type\)"):
        from_torch(mixed, vocab)


def test_a_module_on_the_meta_device_is_refused():
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")
    with pytest.raises(tinyrnn.ConfigError, match="meta device"):
        from_torch(_module().to("meta"), vocab)


def test_wrong_argument_types_are_type_errors_naming_the_argument():
    module = _module()
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")
    with pytest.raises(TypeError, match="^vocab must be a Vocabulary"):
        from_torch(module, "abc")
    with pytest.raises(TypeError, match="^config must be a TrainConfig or None, got dict"):
        from_torch(module, vocab, {"lr": 0.1})
    with pytest.raises(TypeError, match="^to_torch needs a Checkpoint"):
        to_torch({"W_yh": np.zeros((3, 2))})


def test_state_to_torch_checks_the_width_and_the_cell():
    with pytest.raises(tinyrnn.ConfigError, match=r"state of a lstm model must have shape \(B, 2H\).*got \(2, 5\)"):
        state_to_torch(np.zeros((2, 5)), "lstm")
    with pytest.raises(tinyrnn.ConfigError, match="cell must be one of rnn, gru, lstm, got 'transformer'"):
        state_to_torch(np.zeros((2, 4)), "transformer")
    with pytest.raises(tinyrnn.ConfigError, match="cell must be one of"):
        state_from_torch(torch.zeros(1, 2, 4), "transformer")
    h, c = state_to_torch(np.arange(8.0).reshape(1, 8), "lstm")
    assert h.shape == c.shape == (1, 1, 4)


def test_to_torch_takes_a_dtype_name():
    checkpoint = _checkpoint("lstm")[0]
    assert to_torch(checkpoint, dtype="float32").head.weight.dtype == torch.float32
    assert to_torch(checkpoint, dtype=torch.float64).head.weight.dtype == torch.float64
    with pytest.raises(tinyrnn.ConfigError, match="dtype must be None .*'float32', 'float64'.*got 'cuda'"):
        to_torch(checkpoint, dtype="cuda")


def test_a_torch_module_with_nan_never_replaces_a_good_checkpoint(tmp_path):
    vocab = tinyrnn.Vocabulary.from_text("abcdefghi")
    out = tmp_path / "good.npz"
    tinyrnn.save_checkpoint(_checkpoint("gru")[0], out)
    before = out.read_bytes()
    module = _module()
    with torch.no_grad():
        module.rnn.weight_hh_l0[0, 0] = float("nan")
    with pytest.raises(tinyrnn.CheckpointError, match="parameter 'W_hh' contains NaN"):
        tinyrnn.save_checkpoint(from_torch(module, vocab), out)
    assert out.read_bytes() == before
