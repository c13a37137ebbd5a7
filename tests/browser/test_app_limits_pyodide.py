"""The page's size limits, measured in the page's runtime: real Pyodide (Node.js) with the site's own wheels.

tinyrnn_app.settings accepts a setting only if the page can still pause within a second while training with it.
Here the heaviest tick the page runs at the largest accepted settings (the corners of the accepted region, both
engines, every cell at its own bounds) is timed inside Pyodide: training steps for the tick's budget, one of them with a validation pass, then
a gradient-flow snapshot (the costlier of the two extras a tick may add). Each must need less than a second of
CPU time (the Node.js process's, so that a loaded shared machine does not decide the result; on an idle machine
wall time is the same).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

SCRIPT = r'''
import json, time
import js
import tinyrnn


def cpu_seconds():
    """CPU time of the Node.js process hosting Pyodide: what the runtime needs, not what a loaded machine gives."""
    usage = js.process.cpuUsage()
    return (usage.user + usage.system) / 1e6


CORNERS = json.loads(CORNERS_JSON)
BUDGET = TICK_SECONDS
text = tinyrnn.default_corpus()
out = []
for values in CORNERS:
    config = tinyrnn.TrainConfig(**values)
    trainer = tinyrnn.Trainer(text, config)
    trainer.step()  # warm-up (first-call costs are not what Pause waits for)
    ticks = []
    for _ in range(2):  # the faster of two: what the runtime can do, less the shared machine's load spikes
        trainer.step_count = (trainer.step_count // config.eval_every + 1) * config.eval_every - 1  # next step validates
        started, wall = cpu_seconds(), time.perf_counter()
        while True:
            trainer.step()
            if cpu_seconds() - started >= BUDGET:
                break
        trainer.gradient_flow()
        ticks.append((cpu_seconds() - started, time.perf_counter() - wall))
    tick, wall = min(ticks)
    out.append(dict(values, tick=tick, wall=wall))
print("RESULT " + json.dumps(out))
'''


def corners():
    sys.path.insert(0, str(REPO / "webapp"))
    import tinyrnn
    from tinyrnn_app import loop, settings

    candidates = []
    for cell in tinyrnn.CELLS:  # every cell at its own bounds (settings.work_limits: the tanh RNN's / its cost)
        fused, _, H = settings.work_limits(cell, "fused")
        traced, T_traced, _ = settings.work_limits(cell, "autograd")
        candidates += [dict(values, cell=cell) for values in (
            dict(hidden_size=H, seq_len=25, batch_size=fused // (25 * H), engine="fused"),
            dict(hidden_size=H, seq_len=fused // H, batch_size=1, engine="fused"),
            dict(hidden_size=fused // 1000, seq_len=1000, batch_size=1, engine="fused"),
            dict(hidden_size=64, seq_len=1000, batch_size=max(1, fused // (1000 * 64)), engine="fused"),
            dict(hidden_size=H, seq_len=25, batch_size=traced // (25 * H), engine="autograd"),
            dict(hidden_size=min(H, traced // T_traced), seq_len=T_traced, batch_size=1, engine="autograd"),
            dict(hidden_size=64, seq_len=T_traced, batch_size=traced // (T_traced * 64), engine="autograd"),
        )]
    for values in candidates:  # every corner is accepted by the page
        form = dict(settings.form_values(tinyrnn.TrainConfig()), **values)
        assert settings.problems(form) == [], (values, settings.problems(form))
    return candidates, loop.TICK_SECONDS


def test_the_largest_accepted_settings_pause_within_a_second_inside_pyodide(site_dir, tmp_path):
    node = shutil.which("node")
    assert node, "Node.js is installed by scripts/install_browser_deps.sh"
    cells, tick_seconds = corners()
    script = tmp_path / "limits.py"
    script.write_text(f"CORNERS_JSON = {json.dumps(json.dumps(cells))}\nTICK_SECONDS = {tick_seconds!r}\n" + SCRIPT)
    wheels = sorted((site_dir / "wheels").glob("tinyrnn-*.whl")) + sorted((site_dir / "pyodide").glob("autograd-*.whl"))
    wheels = [w for w in wheels if not w.name.startswith("tinyrnn_app")]
    assert len(wheels) == 2, wheels
    proc = subprocess.run([node, str(HERE / "pyodide_node.mjs"), str(site_dir / "pyodide"), str(script),
                           *map(str, wheels)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    print(json.dumps(result, indent=1))
    slow = [r for r in result if r["tick"] >= 1.0]
    assert not slow, slow
