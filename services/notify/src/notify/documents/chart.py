"""Charts for the PDF exports (bulletins, dropout reports): matplotlib → PNG with Chinese labels.

matplotlib (with numpy) is imported on the first chart, not when the service starts: it took a quarter
of the notify service's import time, and most processes never draw a chart.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from notify.documents.render import cjk_font_path


@dataclass
class Chart:
    """One figure being drawn: its axes and the CJK font for every label; ``png`` once it is saved."""

    axes: Any
    font: Any
    png: bytes = field(default=b"")


@contextmanager
def chart(*, title: str) -> Iterator[Chart]:
    """Draw on ``chart.axes`` inside the block; on leaving it the figure is laid out, titled and saved
    as PNG into ``chart.png``, and closed (also when drawing fails)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    font = font_manager.FontProperties(fname=str(cjk_font_path()))
    fig, axes = plt.subplots(figsize=(8, 4), dpi=120)
    try:
        drawn = Chart(axes=axes, font=font)
        yield drawn
        axes.set_title(title, fontproperties=font)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        drawn.png = out.getvalue()
    finally:
        plt.close(fig)
