"""``python -m baoxue.synth --children N --seed S --out DIR``."""

from baoxue.synth.cli import main

raise SystemExit(main())
