"""``make demo``: play one statutory year of 控辍保学 through the four services.

    .venv/bin/python tools/demo/run.py [--children N] [--seed S] [--out var/demo]

See docs/demo.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.driver import main

if __name__ == "__main__":
    raise SystemExit(main())
