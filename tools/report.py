"""The compliance report: one self-contained HTML file, no personal data.

    python manage.py report --out report.html [--stage prod] [--source ...]

Made to hand to a journalist or attach to a complaint: the figures of
chalicelib/stats.py, two charts drawn here as inline SVG (letters sent per
week and what became of them; answered against ignored), the definitions
behind every number, and nothing else. No script, font, image or style
comes from anywhere (a Content-Security-Policy says so to the browser);
every figure is also in a table, for screen readers and for copying.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from html import escape

from chalicelib.stats import Figures, to_json

# Okabe-Ito colours: told apart with every common colour-vision deficiency.
OUTCOME_STYLE: dict[str, tuple[str, str]] = {
    "answered_in_time": ("Answered within the deadline", "#009E73"),
    "answered_late": ("Answered late", "#56B4E9"),
    "info_requested": ("Asked for identification, waiting on the supporter", "#F0E442"),
    "refused": ("Refused", "#CC79A7"),
    "deemed_refused": ("No answer by the deadline (deemed refusal)", "#D55E00"),
    "pending": ("Deadline not yet passed", "#BBBBBB"),
}
# Drawn bottom to top: good news at the base, silence on top.
STACK = (
    "answered_in_time",
    "answered_late",
    "info_requested",
    "refused",
    "deemed_refused",
    "pending",
)
DECIDED = STACK[:-1]

STYLE = """
:root { color-scheme: light; --ink: #1b1b1b; --muted: #555; --rule: #ddd; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .75rem; border-top: 1px solid var(--rule); padding-top: 1.5rem; }
.sub { color: var(--muted); margin: 0 0 1.5rem; }
.key { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: .75rem; margin: 0; }
.key div { border: 1px solid var(--rule); border-radius: .5rem; padding: .75rem 1rem; }
.key dt { color: var(--muted); font-size: .9rem; }
.key dd { margin: 0; font-size: 1.7rem; font-weight: 700; }
.key dd small { display: block; font-size: .9rem; font-weight: 400; color: var(--muted); }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .25rem; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: var(--ink); }
.legend { list-style: none; padding: 0; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .35rem 1.25rem; }
.legend li { display: flex; align-items: center; gap: .4rem; font-size: .9rem; }
.legend span { width: .9rem; height: .9rem; border-radius: .15rem; display: inline-block; border: 1px solid #0003; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { padding: .3rem .75rem .3rem 0; border-bottom: 1px solid var(--rule); text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
details { margin: .5rem 0; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr));
           gap: 1.5rem; align-items: start; }
caption { text-align: left; }
.note { color: var(--muted); font-size: .9rem; }
@media print { h2 { break-after: avoid; } figure, table { break-inside: avoid; } }
"""


def _day(value: date) -> str:
    return f"{value:%B} {value.day}, {value.year}"


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def _nice_step(top: int, ticks: int = 5) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = max(top, 1) / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def weekly_chart(per_week: dict[date, Counter[str]]) -> str:
    """Stacked bars: letters sent each week, coloured by what became of them."""
    first, last = min(per_week), max(per_week)
    weeks = [first + timedelta(weeks=index) for index in range((last - first).days // 7 + 1)]
    totals = [sum(per_week.get(week, Counter()).values()) for week in weeks]
    width, height = 720, 300
    left, right, top, bottom = 52, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _nice_step(max(totals))
    y_max = step * math.ceil(max(*totals, 1) / step)
    slot = plot_w / len(weeks)
    bar = max(min(slot * 0.8, 48), 1)

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="weekly-title weekly-desc">',
        '<title id="weekly-title">Letters sent per week, by outcome</title>',
        f'<desc id="weekly-desc">{len(weeks)} weeks from the week of {_day(first)}; '
        "the same figures are in the table below the chart.</desc>",
    ]
    for tick in range(0, y_max + 1, step):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#e5e5e5"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_n(tick)}</text>'
        )
    label_every = max(1, math.ceil(len(weeks) / 8))
    for index, week in enumerate(weeks):
        x = left + index * slot + (slot - bar) / 2
        base = 0
        counts = per_week.get(week, Counter())
        for name in STACK:
            count = counts[name]
            if not count:
                continue
            label, colour = OUTCOME_STYLE[name]
            parts.append(
                f'<rect x="{x:.1f}" y="{y(base + count):.1f}" width="{bar:.1f}" '
                f'height="{y(base) - y(base + count):.1f}" fill="{colour}">'
                f"<title>Week of {week.isoformat()}: {_n(count)} {escape(label.lower())}</title></rect>"
            )
            base += count
        if index % label_every == 0:
            parts.append(
                f'<text x="{left + index * slot + slot / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{week:%b} {week.day}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#888"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        "week the letter was sent (weeks start on Monday)</text></svg>"
    )
    return "".join(parts)


def answered_chart(outcomes: Counter[str]) -> str:
    """One bar across: what became of the letters whose deadline has passed."""
    decided = sum(outcomes[name] for name in DECIDED)
    width, height, left, right = 720, 70, 0, 0
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="answered-title answered-desc">',
        '<title id="answered-title">Answered against ignored</title>',
        f'<desc id="answered-desc">Of {_n(decided)} letters answered, refused or past their '
        "deadline; the figures are in the table below.</desc>",
    ]
    x = float(left)
    for name in DECIDED:
        count = outcomes[name]
        if not count:
            continue
        label, colour = OUTCOME_STYLE[name]
        span = (width - left - right) * count / decided
        parts.append(
            f'<rect x="{x:.1f}" y="8" width="{span:.1f}" height="40" fill="{colour}">'
            f"<title>{escape(label)}: {_n(count)} ({_pct(count, decided)})</title></rect>"
        )
        if span > 44:
            parts.append(
                f'<text x="{x + span / 2:.1f}" y="33" text-anchor="middle">{_pct(count, decided)}</text>'
            )
        x += span
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: tuple[str, ...]) -> str:
    items = "".join(
        f'<li><span style="background:{OUTCOME_STYLE[name][1]}"></span>{escape(OUTCOME_STYLE[name][0])}</li>'
        for name in names
    )
    return f'<ul class="legend">{items}</ul>'


def _count_table(caption: str, rows: list[tuple[str, int]], whole: int | None = None) -> str:
    head = '<tr><th scope="col"></th><th scope="col" class="n">Count</th>'
    head += '<th scope="col" class="n">Share</th></tr>' if whole else "</tr>"
    body = "".join(
        f'<tr><th scope="row">{escape(name)}</th><td class="n">{_n(count)}</td>'
        + (f'<td class="n">{_pct(count, whole)}</td>' if whole else "")
        + "</tr>"
        for name, count in rows
    )
    return f'<table><caption class="note">{escape(caption)}</caption>{head}{body}</table>'


def _weekly_table(per_week: dict[date, Counter[str]]) -> str:
    head = '<tr><th scope="col">Week of</th><th scope="col" class="n">Sent</th>' + "".join(
        f'<th scope="col" class="n">{escape(OUTCOME_STYLE[name][0])}</th>' for name in STACK
    )
    body = "".join(
        f'<tr><th scope="row">{week.isoformat()}</th><td class="n">{_n(sum(counts.values()))}</td>'
        + "".join(f'<td class="n">{_n(counts[name])}</td>' for name in STACK)
        + "</tr>"
        for week, counts in sorted(per_week.items())
    )
    return f"<table>{head}</tr>{body}</table>"


LANGUAGES = {"en": "English", "fr": "French"}


def render(
    figures: Figures,
    *,
    campaign: str,
    target: str,
    generated: datetime | None = None,
) -> str:
    """The whole report as one HTML document."""
    generated = generated or datetime.now(UTC)
    data = to_json(figures)
    compliance = data["compliance"]
    outcomes = figures.outcomes
    decided = figures.decided
    median = compliance["median_days_to_answer"]
    target_html, campaign_html = escape(target), escape(campaign)
    as_of = _day(figures.as_of)

    def key(label: str, value: str, note: str = "") -> str:
        small = f" <small>{escape(note)}</small>" if note else ""
        return f"<div><dt>{escape(label)}</dt><dd>{value}{small}</dd></div>"

    key_figures = "".join(
        [
            key("Access requests sent", _n(figures.sent)),
            key(
                "Answered within the legal deadline",
                _n(outcomes["answered_in_time"]),
                f"{_pct(outcomes['answered_in_time'], decided)} of those due",
            ),
            key(
                "No answer by the deadline",
                _n(outcomes["deemed_refused"]),
                f"{_pct(outcomes['deemed_refused'], decided)} of those due",
            ),
            key("Answered late", _n(outcomes["answered_late"])),
            key("Refused outright", _n(outcomes["refused"])),
            key(
                "Median days to answer",
                "–" if median is None else f"{median:g}",
                "from the letter to the answer",
            ),
        ]
    )
    if figures.sent_per_week:
        charts = (
            "<h2>Letters sent each week, and what became of them</h2><figure>"
            + weekly_chart(figures.sent_per_week)
            + _legend(STACK)
            + "<figcaption>Each bar is the letters sent that week, coloured by their "
            "outcome as of " + as_of + ".</figcaption></figure>"
            "<details><summary>The figures behind the chart</summary>"
            + _weekly_table(figures.sent_per_week)
            + "</details>"
        )
        if decided:
            charts += (
                f"<h2>Answered or ignored: the {_n(decided)} letters now due</h2><figure>"
                + answered_chart(outcomes)
                + _legend(DECIDED)
                + "<figcaption>Letters whose deadline has passed, or which were answered or "
                "refused before it.</figcaption></figure>"
                + _count_table(
                    "Letters now due, by outcome",
                    [(OUTCOME_STYLE[name][0], outcomes[name]) for name in DECIDED],
                    decided,
                )
            )
    else:
        charts = "<h2>Letters</h2><p>No letter has been sent yet.</p>"
    extra = _count_table(
        "Further facts about the letters sent",
        [
            ("Deadline extended by the organisation", figures.extended),
            ("Organisation asked for identification (at any point)", figures.info_requested),
            ("Deadline not yet passed", outcomes["pending"]),
        ],
    )
    provinces = _count_table(
        "Requests by province or territory",
        sorted(figures.by_province.items(), key=lambda pair: (-pair[1], pair[0])),
        figures.requests,
    )
    languages = _count_table(
        "Requests by language",
        [(LANGUAGES.get(code, code), count) for code, count in sorted(figures.by_language.items())],
        figures.requests,
    )
    campaign_facts = _count_table(
        "The campaign",
        [
            ("Requests submitted", figures.requests),
            ("Email address confirmed by the supporter", figures.verified),
            ("Letters sent", figures.sent),
        ],
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{target_html}: answers to personal information requests, {as_of}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>Did {target_html} answer Canadians who asked for their personal information?</h1>
<p class="sub">{campaign_html} · figures as of {as_of} (UTC)</p>
<p>Supporters of {campaign_html} asked {target_html}, in writing, for the personal information
it holds about them, as the <i>Personal Information Protection and Electronic Documents Act</i>
(PIPEDA) allows. The Act gives an organisation 30 days to answer (s.&nbsp;8(3)), once extendable
by up to 30 more days with notice (s.&nbsp;8(4)); an organisation that does not answer in time is
deemed to have refused (s.&nbsp;8(5)).</p>
<dl class="key">{key_figures}</dl>
{charts}
{extra}
<h2>Who took part</h2>
<div class="columns">{campaign_facts}{languages}{provinces}</div>
<h2>How these figures are counted</h2>
<ul class="note">
<li>A letter counts as <b>sent</b> when the campaign's email to {target_html} was accepted for delivery.</li>
<li>The <b>deadline</b> is 30 days after sending under PIPEDA, or the earlier provincial deadline where one
applies (Quebec, British Columbia, Alberta); an extension notice moves it once. Days are counted in UTC.</li>
<li><b>Answered</b>, <b>refused</b> and <b>asked for identification</b> are what supporters reported about
{target_html}'s reply; the campaign does not read their mail. An answer counts as within the deadline when
reported as received on or before the deadline.</li>
<li><b>No answer by the deadline</b> (deemed refusal) is a letter with no answer or refusal reported once its
deadline has passed.</li>
<li>A supporter who asked the campaign to delete their data counts with what was known on that day.
Requests whose email address was never confirmed are deleted after a few days and are not counted.</li>
<li>This report holds counts only: no name, email address or request number.</li>
</ul>
<p class="note">Generated {generated.astimezone(UTC):%Y-%m-%d %H:%M} UTC.</p>
</main>
</body>
</html>
"""
