"""The charts of the PDF exports: drawn with matplotlib only when one is asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from notify.documents.chart import chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_a_chart_is_a_png_with_its_figure_closed():
    from matplotlib import pyplot as plt

    with chart(title="各镇街未入学（辍学）人数") as drawn:
        drawn.axes.bar([0, 1], [3, 5])
        drawn.axes.set_xticks([0, 1])
        drawn.axes.set_xticklabels(["城头镇", "西集镇"], fontproperties=drawn.font)
    assert drawn.png.startswith(PNG_SIGNATURE) and len(drawn.png) > 1000
    assert plt.get_fignums() == []


def test_a_drawing_that_fails_closes_its_figure_and_saves_nothing():
    from matplotlib import pyplot as plt

    with pytest.raises(ValueError), chart(title="t") as drawn:
        raise ValueError("bad figures")
    assert drawn.png == b"" and plt.get_fignums() == []


def test_starting_the_notify_service_does_not_import_matplotlib():
    """matplotlib and its numpy were a quarter of the service's import time, on every start."""
    probe = "import sys, notify.api; print(sorted(m for m in ('matplotlib', 'mplfonts') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
