import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinyrnn


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyrnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_train_then_sample(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    out = tmp_path / "m.npz"
    result = run("train", text, "--steps", 30, "--hidden", 16, "--batch", 4, "--seq-len", 10, "--eval-every", 10,
                 "--out", out)
    assert result.returncode == 0, result.stderr
    assert "validation loss" in result.stdout and out.exists()
    assert tinyrnn.load_checkpoint(out).progress["step"] == 30
    sampled = run("sample", out, "--prime", "the ", "--length", 40, "--seed", 1)
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("the ") and len(sampled.stdout) == 4 + 40 + 1
    resumed = run("train", text, "--steps", 5, "--resume", out, "--out", out, "--quiet")
    assert resumed.returncode == 0 and tinyrnn.load_checkpoint(out).progress["step"] == 35
    assert tinyrnn.load_checkpoint(out).progress["window"] == 35
    # another learning rate continues the same stream where it stopped; another window length starts a new pass
    faster = run("train", text, "--steps", 5, "--resume", out, "--lr", 0.01, "--out", out, "--quiet")
    assert faster.returncode == 0, faster.stderr
    assert tinyrnn.load_checkpoint(out).progress["window"] == 40
    shorter = run("train", text, "--steps", 5, "--resume", out, "--seq-len", 8, "--out", out, "--quiet")
    assert shorter.returncode == 0, shorter.stderr
    assert tinyrnn.load_checkpoint(out).progress["window"] == 5 and tinyrnn.load_checkpoint(out).progress["step"] == 45


def test_gradcheck_command():
    result = run("gradcheck")
    assert result.returncode == 0 and "PASS" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("train", "{tmp}/missing.txt"), "error: cannot read"),
    (("train", "{tmp}/bad.txt"), "error: '.*bad.txt' is not valid UTF-8"),
    (("train", "--hidden", "0", "--steps", "1"), "error: hidden_size must be a whole number from 1"),
    (("train", "--lr-decay-steps", "0", "--steps", "1"), "error: lr_decay_steps must be a whole number from 1"),
    (("sample", "{tmp}/bad.txt"), "error: this is not a tinyrnn checkpoint"),
    (("sample", "{tmp}/missing.npz"), "error: cannot read"),
])
def test_user_mistakes_are_one_line_without_traceback(tmp_path, args, message):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait")
    result = run(*(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert re.match(message, lines[-1]), result.stderr


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)])
def test_train_limits_blas_threads(tmp_path, monkeypatch, threads, expected):
    """Training runs with BLAS limited (default one thread): many threads on these small products are slower."""
    import threadpoolctl  # the cli extra's; requirements-dev.txt installs it

    from tinyrnn import cli

    seen = []
    original = tinyrnn.Trainer.step

    def step(self):
        seen.append({p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"})
        return original(self)

    monkeypatch.setattr(tinyrnn.Trainer, "step", step)
    text = tmp_path / "t.txt"
    text.write_text("abcabcabd " * 50, encoding="utf-8")
    extra = [] if threads is None else ["--threads", str(threads)]
    assert cli.main(["train", str(text), "--steps", "2", "--hidden", "8", "--quiet", "--out",
                     str(tmp_path / "m.npz"), *extra]) == 0
    assert seen and all(s == {expected} for s in seen), seen


# --- issue 9: --out writes what it says, checked before training; every mistake is one line ----------------------

SMALL = ("--corpus", "alphabet", "--hidden", 8, "--seq-len", 8, "--batch", 2, "--quiet")


def _one_line_error(result, pattern):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(pattern, last), result.stderr


def test_out_is_exactly_the_path_given(tmp_path):
    result = run("train", *SMALL, "--steps", 3, "--out", "model.ckpt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]
    assert "saved model.ckpt" in result.stdout
    assert run("sample", "model.ckpt", "--length", 5, cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("out, message", [
    ("", "error: the output path is empty"),
    ("{tmp}", "error: '.*' is a directory"),
    ("/dev/full", "error: '/dev/full' is not a regular file"),
    ("{tmp}/missing/m.npz", "error: cannot write '.*m.npz': the directory '.*missing' does not exist"),
    ("{tmp}/text.txt", "error: '.*text.txt' is the training text"),
])
def test_a_bad_out_is_refused_before_training(tmp_path, out, message):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 100, encoding="utf-8")
    # a million steps would take minutes (and time out): the refusal must come before the first one
    result = run("train", text, "--hidden", 8, "--batch", 2, "--seq-len", 8, "--steps", 10**6,
                 "--out", out.format(tmp=tmp_path))
    _one_line_error(result, message)
    assert text.read_text(encoding="utf-8") == "the cat sat on the mat. " * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.txt"] and not os.path.exists("/dev/full.npz")


def test_ctrl_c_saves_the_model_so_far(tmp_path):
    out = tmp_path / "m.npz"
    # Ctrl-C in a terminal reaches a process whose SIGINT has its default action; a CI runner that started this
    # suite in the background (a shell without job control) hands SIGINT down ignored, so restore the terminal's
    proc = subprocess.Popen([sys.executable, "-m", "tinyrnn", "train", *map(str, SMALL), "--steps", str(10**7),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stderr.readline().startswith("text: ")  # printed just before the first step
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stderr = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    step = tinyrnn.load_checkpoint(out).progress["step"]
    assert step > 0
    assert f"interrupted at step {step}: saving the model so far to {out}" in stderr
    assert f"saved {out} (step {step})" in stderr


def test_a_second_ctrl_c_abandons_the_save_and_keeps_the_old_file(tmp_path, monkeypatch, capsys):
    from tinyrnn import cli

    out = tmp_path / "m.npz"
    out.write_bytes(b"the previous model")
    trainer = tinyrnn.Trainer(tinyrnn.load_corpus("alphabet"), tinyrnn.TrainConfig(hidden_size=4))

    def interrupted_again(file):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", lambda file, **arrays: interrupted_again(file))
    assert cli._save_after_interrupt(trainer, str(out), lambda ck: tinyrnn.save_checkpoint(ck, str(out))) == 130
    assert "aborted: nothing was saved" in capsys.readouterr().err
    assert out.read_bytes() == b"the previous model" and sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    text = path.parent / "text.txt"
    text.write_text("café au lait, s'il vous plaît! " * 100, encoding="utf-8")
    assert run("train", text, "--hidden", 8, "--batch", 2, "--seq-len", 8, "--steps", 5, "--quiet",
               "--out", path).returncode == 0
    return path


@pytest.mark.parametrize("args, message", [
    (("--seed", "-1"), "error: seed must be a whole number from 0 to 4,294,967,295, got -1"),
    (("--escapes", "--prime", "A\\x"), r"error: --prime has an invalid escape '\\\\x'"),
    (("--escapes", "--prime", "ab\\"), "error: --prime ends with a lone backslash"),
    (("--temperature", "-1"), r"error: temperature must be a number in \[0, 100\]"),
    (("--prime", "€"), "error: character '€'"),
])
def test_sample_mistakes_are_one_line(model, args, message):
    _one_line_error(run("sample", model, "--length", 5, *args), message)


def test_sample_escapes_keep_non_ascii_characters(model):
    result = run("sample", model, "--escapes", "--prime", "caf\\u00e9\\x20é!", "--length", 3, "--seed", 0)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("café é!")


def test_sample_with_a_tiny_temperature_is_greedy(model):
    tiny = run("sample", model, "--temperature", "1e-320", "--length", 20, "--prime", "caf")
    greedy = run("sample", model, "--temperature", "0", "--length", 20, "--prime", "caf")
    assert tiny.returncode == 0, tiny.stderr
    assert tiny.stdout == greedy.stdout


def test_output_the_terminal_cannot_encode_is_escaped(model):
    result = subprocess.run([sys.executable, "-m", "tinyrnn", "sample", str(model), "--prime", "café", "--length", "5"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith("caf\\xe9")


@pytest.mark.parametrize("args, message", [
    (("--batch", 0), "error: batch_size must be a whole number from 1 to 1,024, got 0"),
    (("--seq-len", 0), "error: seq_len must be a whole number from 1 to 1,000, got 0"),
    (("--seed", -1), "error: seed must be a whole number from 0"),
    (("--vocab", 100000, "--hidden", 100000), "error: vocab_size must be a whole number from 1 to 65536"),
    (("--vocab", 60000, "--hidden", 4000), "error: gradcheck takes at most 20,000,000 parameters"),
])
def test_gradcheck_mistakes_are_refused_up_front(args, message):
    _one_line_error(run("gradcheck", *args), message)


def test_a_long_gradcheck_reports_progress(monkeypatch, capsys):
    from tinyrnn import cli

    monkeypatch.setattr(cli, "GRADCHECK_PROGRESS", 0)
    assert cli.main(["gradcheck"]) == 0
    err = capsys.readouterr().err
    assert "finite differences: W_hx (1 of 6)" in err and "finite differences: h0 (6 of 6)" in err


def test_a_diverging_run_ends_with_a_warning_that_says_what_to_change(tmp_path):
    result = run("train", "--corpus", "alphabet", "--hidden", 16, "--seq-len", 10, "--batch", 4, "--steps", 50,
                 "--lr", 10, "--clip-norm", 0, "--quiet", "--out", tmp_path / "m.npz")
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warning and "training is diverging" in warning[0]
    assert "lower the learning rate (now 10)" in warning[0] and "turn gradient clipping on" in warning[0]
    calm = run("train", *SMALL, "--steps", 30, "--out", tmp_path / "calm.npz")
    assert calm.returncode == 0 and "warning" not in calm.stderr


@pytest.mark.parametrize("source", ["/dev/zero", "-"])
def test_train_and_sample_read_devices_and_stdin_with_a_limit(source):
    feed = subprocess.Popen(["yes"], stdout=subprocess.PIPE) if source == "-" else None
    try:
        for command in ("train", "sample"):
            result = subprocess.run([sys.executable, "-m", "tinyrnn", command, source], capture_output=True, text=True,
                                    timeout=60, stdin=feed.stdout if feed else None)
            _one_line_error(result, "error: .*(too large: more than 67,108,864 bytes|not a tinyrnn checkpoint)")
    finally:
        if feed:
            feed.kill()
            feed.wait()
