"""The report scripts' one output step: the document as indented JSON on stdout and, with ``out``, in a file."""
from __future__ import annotations

import json
from pathlib import Path


def emit(doc: dict, out: Path | None = None) -> None:
    text = json.dumps(doc, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
