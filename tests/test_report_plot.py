"""progress.png keeps the progress readable: the y-axis on the useful range (an outlier drawn
at the edge, not squashing the keeps), each keep labelled with its description."""

from autoresearch.records import Iteration
from autoresearch.report import figure, plot, useful_range


def history() -> list[Iteration]:
    made = [Iteration(0, "baseline", value=0.840, explanation="Baseline")]
    values = [0.846, 0.843, 0.40, 0.851, 0.849, None, 0.855]
    statuses = ["keep", "discard", "discard", "keep", "discard", "crash", "keep"]
    for n, (value, status) in enumerate(zip(values, statuses, strict=True), start=1):
        made.append(Iteration(n, status, value=value, explanation=f"change {n}\n\nwhy"))
    return made


def test_an_outlier_does_not_squash_the_keeps(cfg):
    low, high = useful_range(history())
    assert 0.40 < low < 0.840 and 0.855 < high < 0.9  # every keep and discard near them
    assert (0.855 - 0.840) / (high - low) > 0.25  # the keeps span a quarter of the axis or more
    fig = figure(history(), cfg)
    ax = fig.axes[0]
    assert ax.get_ylim() == (low, high)
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["change 1", "change 4", "change 7"]  # the keeps, by their descriptions
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "off the scale" in legend and "crash / invalid" in legend
    assert plot(history(), cfg)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_flat_run_and_an_empty_one_still_plot(cfg):
    flat = [Iteration(0, "baseline", value=0.5), Iteration(1, "discard", value=0.5)]
    low, high = useful_range(flat)
    assert low < 0.5 < high
    assert useful_range([Iteration(0, "crash")]) is None
    assert plot([Iteration(0, "crash")], cfg)[:4] == b"\x89PNG"
