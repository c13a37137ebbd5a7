// In-browser-runtime benchmark worker: runs bench/harness.py inside Pyodide (Node.js), driven line by line
// by bench/pyodide_bench.py.  Not meant to be run by hand; see bench/README.md.
//
//   node bench/pyodide_bench.mjs --index DIR --bench-dir DIR --wheel A.whl [--wheel B.whl ...] --specs JSON
//
// DIR (--index) holds the Pyodide 0.27.7 core (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip,
// pyodide-lock.json) and the numpy wasm wheel named by the lock.  Pure-Python wheels (autograd, tinyrnn)
// are unpacked into site-packages.  Protocol on stdout, one JSON object per line:
//   {"ready": true, "cells": [{"n", "first_loss"}...], ...}   after set-up, warm-up and calibration
//   stdin "run I"   -> {"dt": seconds for n steps of cell I}
//   stdin "finish"  -> {"cells": [...metadata...]} and exit
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createInterface } from "node:readline";

function parseArgs(argv) {
  const out = { wheel: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "").replace(/-/g, "_");
    if (key === "wheel") out.wheel.push(argv[i + 1]);
    else out[key] = argv[i + 1];
  }
  return out;
}

const send = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const index = resolve(args.index);
  const specs = JSON.parse(args.specs || "[]");
  const t0 = performance.now();
  const { loadPyodide } = await import(pathToFileURL(join(index, "pyodide.mjs")).href);
  // Python's stdout/stderr go to our stderr: stdout is the protocol channel.
  const log = (s) => process.stderr.write(s + "\n");
  const pyodide = await loadPyodide({ indexURL: index + "/", stdout: log, stderr: log });
  await pyodide.loadPackage(["numpy"], { messageCallback: log, errorCallback: log });
  const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
  // pure-Python wheels: copy into the in-memory FS and unzip into site-packages
  pyodide.FS.mkdirTree("/tmp/wheels");
  for (const whl of args.wheel) {
    const name = whl.split("/").pop();
    pyodide.FS.writeFile(`/tmp/wheels/${name}`, readFileSync(whl));
    pyodide.runPython(`import zipfile; zipfile.ZipFile("/tmp/wheels/${name}").extractall("${sitePackages}")`);
  }
  pyodide.FS.mkdirTree("/home/pyodide/bench");
  for (const name of ["__init__.py", "harness.py", "minchar_numpy.py", "quality.py"]) {
    pyodide.FS.writeFile(`/home/pyodide/bench/${name}`, readFileSync(join(args.bench_dir, name)));
  }
  const setupSeconds = (performance.now() - t0) / 1000;
  if (args.module) {
    // "run a bench module" mode: e.g. --module bench.quality --module-args '["--seconds","300"]'
    // --data-file PATH is copied to /data/<name>; --out-file copies /home/pyodide/out.json back to PATH.
    pyodide.setStdout({ batched: (s) => process.stdout.write(s + "\n") });
    if (args.data_file) {
      pyodide.FS.mkdirTree("/data");
      pyodide.FS.writeFile("/data/" + args.data_file.split("/").pop(), readFileSync(args.data_file));
    }
    process.stdout.write(`Pyodide set-up ${setupSeconds.toFixed(1)} s (node ${process.version})\n`);
    pyodide.globals.set("MODULE_NAME", args.module);
    pyodide.globals.set("MODULE_ARGS", args.module_args || "[]");
    const rc = pyodide.runPython(`
import importlib, json, sys
sys.path.insert(0, "/home/pyodide")
rc = importlib.import_module(MODULE_NAME).main(json.loads(MODULE_ARGS))
rc or 0
`);
    if (args.out_file) {
      writeFileSync(args.out_file, pyodide.FS.readFile("/home/pyodide/out.json"));
    }
    process.exit(rc);
  }
  pyodide.globals.set("SPECS_JSON", JSON.stringify(specs));
  const ready = pyodide.runPython(`
import json, sys, platform
sys.path.insert(0, "/home/pyodide")
import numpy, autograd, tinyrnn
from bench import harness
SPECS = json.loads(SPECS_JSON)
def _blas():
    try:
        return numpy.show_config(mode="dicts")["Build Dependencies"].get("blas")
    except Exception as e:
        return repr(e)
CELLS = []
for spec in SPECS:
    step, info = harness.make_step(spec["impl"], spec["H"], spec["B"], spec["T"], spec["V"], spec.get("seed", 0))
    n, first_loss = harness.calibrate(step, spec["min_time"], spec["warmup"])
    CELLS.append({"step": step, "info": info, "n": n, "first_loss": first_loss, "last_loss": first_loss})
json.dumps({"cells": [{"n": c["n"], "first_loss": c["first_loss"]} for c in CELLS],
            "python": platform.python_version(), "numpy": numpy.__version__,
            "autograd": getattr(autograd, "__version__", "?"), "tinyrnn": getattr(tinyrnn, "__version__", "?"),
            "numpy_blas": _blas(), "tinyrnn_backend": tinyrnn.BACKEND})
`);
  send({ ready: true, setup_seconds: setupSeconds, node: process.version, ...JSON.parse(ready) });
  const runCell = pyodide.runPython(`
def run_cell(i):
    c = CELLS[i]
    dt, _, c["last_loss"] = harness.timed_repeat(c["step"], c["n"])
    return dt
run_cell
`);
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === "run") {
      // CPU time of the whole Node process (Pyodide runs on its main thread), as native uses process_time
      const c0 = process.cpuUsage();
      const dt = runCell(Number(arg));
      const c = process.cpuUsage(c0);
      send({ dt, cpu: (c.user + c.system) / 1e6 });
    } else if (cmd === "finish") {
      const meta = pyodide.runPython(`json.dumps([{"info": c["info"], "last_loss": c["last_loss"]} for c in CELLS])`);
      send({ cells: JSON.parse(meta) });
      break;
    }
  }
  rl.close();
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
