"""Bar charts drawn as plain SVG on the server: no chart library, nothing for the CSP to allow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Bar:
    """One bar with its place in the SVG's coordinate system."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class BarChart:
    """A daily bar chart: bars, the largest value and the first and last labels."""

    width: int
    height: int
    bars: list[Bar]
    maximum: int
    first: str
    last: str
    total: int


def daily_bars(series: list[tuple[date, int]], *, width: int = 600, height: int = 160) -> BarChart:
    """Bars for a series of (day, count), scaled to the chart's height."""
    maximum = max((count for _, count in series), default=0)
    slot = width / max(len(series), 1)
    bars = []
    for index, (day, count) in enumerate(series):
        bar_height = 0.0 if maximum == 0 else (height - 4) * count / maximum
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                y=round(height - bar_height, 2),
                width=round(slot * 0.8, 2),
                height=round(bar_height, 2),
                label=day.isoformat(),
                value=count,
            )
        )
    return BarChart(
        width=width,
        height=height,
        bars=bars,
        maximum=maximum,
        first=series[0][0].isoformat() if series else "",
        last=series[-1][0].isoformat() if series else "",
        total=sum(count for _, count in series),
    )
