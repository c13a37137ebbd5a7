import re
import subprocess
import sys

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


def test_gradcheck_command():
    result = run("gradcheck")
    assert result.returncode == 0 and "PASS" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("train", "{tmp}/missing.txt"), "error: cannot read"),
    (("train", "{tmp}/bad.txt"), "error: '.*bad.txt' is not valid UTF-8"),
    (("train", "--hidden", "0", "--steps", "1"), "error: hidden_size must be a whole number from 1"),
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
