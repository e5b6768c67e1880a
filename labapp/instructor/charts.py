"""Server-side SVG for the dashboard: geometry here, markup in a template."""

from __future__ import annotations

from dataclasses import dataclass

from labapp.instructor.selectors import StepStats

BAR_HEIGHT, GAP, LABEL_WIDTH, BAR_WIDTH = 18, 8, 200, 240
LABEL_CHARS = 26


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
class Chart:
    title: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return len(self.bars) * (BAR_HEIGHT + GAP) + GAP

    @property
    def label_width(self) -> int:
        return LABEL_WIDTH

    @property
    def bar_height(self) -> int:
        return BAR_HEIGHT

    @property
    def total_width(self) -> int:
        return LABEL_WIDTH + BAR_WIDTH + 150


def funnel(steps: list[StepStats], learners: int) -> Chart:
    scale = BAR_WIDTH / max(learners, 1)
    bars = [
        Bar(
            label=_label(i, s.title),
            y=GAP + (i - 1) * (BAR_HEIGHT + GAP),
            width=round(s.passed * scale),
            full_width=round(s.reached * scale),
            value_text=f"{s.passed} passed / {s.reached} reached",
        )
        for i, s in enumerate(steps, 1)
    ]
    return Chart("Step funnel", bars)


def median_times(steps: list[StepStats]) -> Chart:
    longest = max((s.median.total_seconds() for s in steps if s.median), default=1) or 1
    bars = []
    for i, s in enumerate(steps, 1):
        seconds = s.median.total_seconds() if s.median else 0
        bars.append(
            Bar(
                label=_label(i, s.title),
                y=GAP + (i - 1) * (BAR_HEIGHT + GAP),
                width=round(BAR_WIDTH * seconds / longest),
                value_text=f"{seconds / 60:.1f} min" if s.median else "no one yet",
            )
        )
    return Chart("Median time to pass", bars)


def _label(number: int, title: str) -> str:
    text = f"{number}. {title}"
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
