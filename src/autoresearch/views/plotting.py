"""What progress.png and compare.png share: every text drawn as written, and the PNG's bytes."""

from __future__ import annotations

import io


def literal(fig) -> None:
    """Every text in the figure drawn as written: a `$` or a backslash in a description, a run
    or a metric name is neither mathtext (whose parser raises on `$\\undefinedmacro$`) nor LaTeX.
    Called once the figure's texts exist, before anything lays them out."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_usetex(False)


def png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    try:
        data = io.BytesIO()
        fig.savefig(data, format="png")
        return data.getvalue()
    finally:
        plt.close(fig)
