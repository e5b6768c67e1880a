"""Server-side SVG for the dashboard: geometry here, markup in a template.

Each chart is horizontal bars, one per step, over an x axis with ticks, a unit
and a legend; its colours come from the stylesheet (light and dark)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from labapp.instructor.selectors import StepStats

BAR_HEIGHT, GAP, LABEL_WIDTH, PLOT_WIDTH = 18, 8, 200, 240
VALUE_WIDTH = 170  # the value text to the right of the longest bar
LEGEND_HEIGHT = 24  # above the bars
AXIS_HEIGHT = 40  # below the bars: tick labels, then the axis title
LABEL_CHARS = 26
MAX_TICKS = 5


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    width: int
    value_text: str
    full_width: int = 0  # a background bar (the funnel's "reached")

    @property
    def text_x(self) -> int:
        return LABEL_WIDTH + max(self.width, self.full_width) + 6

    @property
    def text_y(self) -> int:
        return self.y + 13


@dataclass(frozen=True)
class Tick:
    x: int
    label: str


@dataclass(frozen=True)
class LegendItem:
    label: str
    css_class: str  # "bar" or "bar-bg", as the bars it names
    x: int


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    axis_title: str  # what the x axis counts, with its unit
    ticks: list[Tick] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)

    @property
    def plot_top(self) -> int:
        return LEGEND_HEIGHT

    @property
    def axis_y(self) -> int:
        return self.plot_top + len(self.bars) * (BAR_HEIGHT + GAP) + GAP

    @property
    def tick_label_y(self) -> int:
        return self.axis_y + 16

    @property
    def axis_title_y(self) -> int:
        return self.axis_y + 34

    @property
    def height(self) -> int:
        return self.axis_y + AXIS_HEIGHT

    @property
    def label_width(self) -> int:
        return LABEL_WIDTH

    @property
    def plot_right(self) -> int:
        return LABEL_WIDTH + PLOT_WIDTH

    @property
    def axis_title_x(self) -> int:
        return LABEL_WIDTH + PLOT_WIDTH // 2

    @property
    def bar_height(self) -> int:
        return BAR_HEIGHT

    @property
    def total_width(self) -> int:
        return LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH


def nice_step(largest: float, *, steps: tuple[float, ...]) -> float:
    """The smallest of `steps` (or a power of ten times 1, 2 or 5) that covers
    `largest` in at most MAX_TICKS - 1 intervals."""
    for step in steps:
        if largest / step <= MAX_TICKS - 1:
            return step
    magnitude = 10 ** math.floor(math.log10(largest))
    for factor in (1, 2, 5, 10):
        if largest / (factor * magnitude) <= MAX_TICKS - 1:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _ticks(top: float, step: float, fmt: str) -> list[Tick]:
    count = round(top / step)
    return [
        Tick(x=LABEL_WIDTH + round(PLOT_WIDTH * i / count), label=fmt.format(i * step))
        for i in range(count + 1)
    ]


def _bar_y(index: int) -> int:
    return LEGEND_HEIGHT + GAP + index * (BAR_HEIGHT + GAP)


def funnel(steps: list[StepStats], learners: int) -> Chart:
    """Per step: how many learners passed it (dark), of those who reached it (light)."""
    step = nice_step(max(learners, 1), steps=(1, 2, 5, 10, 20, 25, 50, 100))
    top = step * math.ceil(max(learners, 1) / step)
    scale = PLOT_WIDTH / top
    bars = [
        Bar(
            label=_label(i, s.title),
            y=_bar_y(i - 1),
            width=round(s.passed * scale),
            full_width=round(s.reached * scale),
            value_text=f"{s.passed} passed of {s.reached} reached",
        )
        for i, s in enumerate(steps, 1)
    ]
    return Chart(
        "Step funnel",
        bars,
        axis_title=f"learners (of {learners})",
        ticks=_ticks(top, step, "{:.0f}"),
        legend=[
            LegendItem("passed the step", "bar", LABEL_WIDTH),
            LegendItem("reached it", "bar-bg", LABEL_WIDTH + 130),
        ],
    )


def median_times(steps: list[StepStats]) -> Chart:
    """Per step: the median time its passers took, in minutes."""
    longest = max((s.median.total_seconds() / 60 for s in steps if s.median), default=0)
    longest = longest or 1  # nobody passed yet: an axis of one minute
    step = nice_step(longest, steps=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60))
    top = step * math.ceil(longest / step)
    bars = []
    for i, s in enumerate(steps, 1):
        minutes = s.median.total_seconds() / 60 if s.median else 0
        bars.append(
            Bar(
                label=_label(i, s.title),
                y=_bar_y(i - 1),
                width=round(PLOT_WIDTH * minutes / top),
                value_text=f"{minutes:.1f} min" if s.median else "no one passed yet",
            )
        )
    return Chart(
        "Median time to pass",
        bars,
        axis_title="minutes on the step (median of those who passed)",
        ticks=_ticks(top, step, "{:g}"),
        legend=[LegendItem("median minutes to pass", "bar", LABEL_WIDTH)],
    )


def _label(number: int, title: str) -> str:
    text = f"{number}. {title}"
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
