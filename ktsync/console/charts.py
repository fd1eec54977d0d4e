"""Small inline SVG charts, drawn on the server (no JavaScript, nothing loaded from elsewhere). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 240, 48, 2


def sparkline(values: Sequence[float | None], *, label: str, unit: str = "", css: str = "") -> str:
    """An SVG polyline of ``values`` (oldest first; None: no data) scaled to its own maximum, with the
    latest value and the maximum in its title (screen readers and hover)."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
    latest = next((v for v in reversed(values) if v is not None), None)
    now = "-" if latest is None else f"{latest:.3g}{unit}"
    title = f"{label}: now {now}, max {max(known, default=0.0):.3g}{unit} (last hour)"
    classes = f"chart {css}".strip()
    return (
        f'<svg class="{escape(classes)}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<line x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<polyline points="{points}" fill="none"/>'
        f'<text x="{WIDTH - PAD}" y="10" text-anchor="end" class="scale">{escape(now)}</text></svg>'
    )
