"""Server-side SVG line charts (templates/admin/charts.html draws them): no script, no CDN, one
viewBox that scales to a phone's width. Only the geometry is computed here."""

from dataclasses import dataclass, field
from datetime import date

# Okabe-Ito: told apart with the common colour-vision deficiencies.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")
# Small units: the 14-unit text stays about 11 px tall when a phone shows the chart 330 px wide.
WIDTH, HEIGHT = 420, 200
LEFT, RIGHT, TOP, BOTTOM = 30, 8, 10, 26


@dataclass
class Line:
    name: str
    colour: str
    values: list[int] | None
    total: int | None = None
    points: str = ""  # the polyline's "x,y x,y ..."
    dots: list[dict] = field(default_factory=list)  # {x, y, label} per day


@dataclass
class Chart:
    title: str
    lines: list[Line]
    days: list[date]
    grid: list[dict] = field(default_factory=list)  # {y, label}
    ticks: list[dict] = field(default_factory=list)  # {x, label}
    rows: list[dict] = field(default_factory=list)  # {day, values} for the table
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_x: int = WIDTH - RIGHT
    bottom_y: int = HEIGHT - BOTTOM


def _nice_top(peak: int) -> int:
    """The y axis' top: the least of 2, 4 or 10 times a power of ten that holds `peak` (its half,
    the middle grid line, is then a whole number too)."""
    step = 1
    while True:
        for factor in (2, 4, 10):
            if step * factor >= peak:
                return step * factor
        step *= 10


def line_chart(*, title: str, days: list[date], series: list[tuple[str, list[int] | None]]) -> Chart:
    """A chart of one line per (name, values) over `days`; values None: not recorded (legend only)."""
    lines = [Line(name, COLOURS[i % len(COLOURS)], values) for i, (name, values) in enumerate(series)]
    recorded = [line for line in lines if line.values is not None]
    top = _nice_top(max((max(line.values) for line in recorded if line.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(days) - 1)

    def x(i):
        return round(LEFT + i * step, 1)

    def y(v):
        return round(TOP + plot_h * (1 - v / top), 1)

    for line in recorded:
        line.total = sum(line.values)
        line.points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(line.values))
        line.dots = [
            {"x": x(i), "y": y(v), "label": f"{day:%d %b}: {v} {line.name.lower()}"}
            for i, (day, v) in enumerate(zip(days, line.values, strict=True))
        ]
    grid = [{"y": y(v), "label": v} for v in (0, top // 2, top)]
    marks = sorted({0, len(days) // 2, len(days) - 1})
    ticks = [{"x": x(i), "label": f"{days[i]:%d %b}"} for i in marks]
    rows = [
        {"day": day, "values": [line.values[i] if line.values is not None else "n/a" for line in lines]}
        for i, day in enumerate(days)
    ]
    return Chart(title=title, lines=lines, days=days, grid=grid, ticks=ticks, rows=rows)
