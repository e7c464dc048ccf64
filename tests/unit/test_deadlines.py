"""Deadline arithmetic against dates worked out by hand from printed calendars.

Every expected date below was counted on `calendar.month(...)` output, never
with the code under test. Weekdays are noted where they drive the answer.
"""

from __future__ import annotations

from datetime import date

import pytest

from chalicelib import deadlines
from chalicelib.deadlines import (
    JURISDICTIONS,
    PROVINCES,
    Deadline,
    add_business_days,
    add_calendar_days_federal,
    deadline_for,
    due_date,
    extended,
    holiday_dates,
    jurisdiction_for,
)

D = date

FEDERAL_2026 = {
    D(2026, 1, 1),  # New Year's Day (Thu)
    D(2026, 4, 3),  # Good Friday
    D(2026, 4, 6),  # Easter Monday
    D(2026, 5, 18),  # Victoria Day: Monday before May 25
    D(2026, 7, 1),  # Canada Day (Wed)
    D(2026, 9, 7),  # Labour Day: first Monday of September
    D(2026, 9, 30),  # National Day for Truth and Reconciliation
    D(2026, 10, 12),  # Thanksgiving: second Monday of October
    D(2026, 11, 11),  # Remembrance Day (Wed)
    D(2026, 12, 25),  # Christmas Day (Fri)
    D(2026, 12, 26),  # Boxing Day (Sat): stays on the Saturday
}

FEDERAL_2027 = {
    D(2027, 1, 1),  # Fri
    D(2027, 3, 26),  # Good Friday (Easter is March 28)
    D(2027, 3, 29),  # Easter Monday
    D(2027, 5, 24),  # Victoria Day: May 25 is a Tuesday
    D(2027, 7, 1),  # Thu
    D(2027, 9, 6),
    D(2027, 9, 30),
    D(2027, 10, 11),
    D(2027, 11, 11),  # Thu
    D(2027, 12, 25),  # Sat
    D(2027, 12, 26),  # Sun
}


@pytest.mark.parametrize(
    ("year", "expected"),
    [(2026, FEDERAL_2026), (2027, FEDERAL_2027)],
    ids=["2026", "2027"],
)
def test_federal_holidays_are_exactly_the_eleven(year: int, expected: set[date]) -> None:
    assert holiday_dates(year, None) == frozenset(expected)


def test_federal_holiday_on_sunday_also_makes_monday_a_holiday() -> None:
    # 2029: Canada Day and Remembrance Day are Sundays; New Year's Day is a Monday.
    found = holiday_dates(2029, None)
    assert {D(2029, 7, 2), D(2029, 11, 12)} <= found
    assert D(2029, 1, 2) not in found


@pytest.mark.parametrize(
    ("day", "in_bc", "in_federal"),
    [
        (D(2026, 2, 16), True, False),  # Family Day
        (D(2026, 8, 3), True, False),  # British Columbia Day
        (D(2026, 9, 30), True, True),
        (D(2026, 12, 28), False, False),  # Boxing Day "observed": not a statutory day
    ],
    ids=["family-day", "bc-day", "truth-and-reconciliation", "no-observed-monday"],
)
def test_bc_holidays(day: date, in_bc: bool, in_federal: bool) -> None:
    assert (day in holiday_dates(day.year, "BC")) is in_bc
    assert (day in holiday_dates(day.year, None)) is in_federal


def test_unknown_province_code_is_rejected() -> None:
    with pytest.raises(ValueError):
        holiday_dates(2026, "XX")


def test_provinces() -> None:
    assert len(PROVINCES) == 13
    assert {"QC", "BC", "AB", "ON", "NU", "YT"} <= PROVINCES


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        # June has 30 days: +30 lands on Wed July 1, Canada Day.
        (D(2026, 6, 1), D(2026, 7, 2)),
        # Lands on Sun Aug 2; Mon Aug 3 is a civic holiday, not a federal one.
        (D(2026, 7, 3), D(2026, 8, 3)),
        # Lands on Sat Aug 1: Saturday is not a holiday.
        (D(2026, 7, 2), D(2026, 8, 1)),
        # Lands on Thu Dec 24.
        (D(2026, 11, 24), D(2026, 12, 24)),
        # Fri Dec 25 -> Sat Dec 26 is Boxing Day -> Sun Dec 27 -> Mon Dec 28.
        (D(2026, 11, 25), D(2026, 12, 28)),
        # Lands on Boxing Day itself, a Saturday that is still a holiday.
        (D(2026, 11, 26), D(2026, 12, 28)),
        # 2027: Christmas Sat, Boxing Day Sun; Mon Dec 27 is an ordinary day.
        (D(2027, 11, 25), D(2027, 12, 27)),
        # 2022: Christmas Sun, Boxing Day Mon -> Tue Dec 27.
        (D(2022, 11, 25), D(2022, 12, 27)),
        # Lands on Good Friday 2026 (Apr 3); Saturday Apr 4 is fine.
        (D(2026, 3, 4), D(2026, 4, 4)),
        # Lands on Easter Sunday 2026 -> Easter Monday -> Tue Apr 7.
        (D(2026, 3, 6), D(2026, 4, 7)),
        # Feb 2027 has 28 days: lands on Easter Sunday Mar 28 -> Tue Mar 30.
        (D(2027, 2, 26), D(2027, 3, 30)),
        # Leap year: Jan 30 + 30 = Tue Feb 29 2028.
        (D(2028, 1, 30), D(2028, 2, 29)),
        # Lands on Sat Jan 1 2028 (holiday) -> Sun Jan 2 -> Mon Jan 3.
        (D(2027, 12, 2), D(2028, 1, 3)),
        # Lands on Wed Sep 30 2026.
        (D(2026, 8, 31), D(2026, 10, 1)),
        # Lands on Sun Oct 11 2026 -> Thanksgiving Mon -> Tue Oct 13.
        (D(2026, 9, 11), D(2026, 10, 13)),
        # Lands on Wed Nov 11 2026.
        (D(2026, 10, 12), D(2026, 11, 12)),
        # Lands on Sun Jul 1 2029; Mon Jul 2 is the holiday too -> Tue Jul 3.
        (D(2029, 6, 1), D(2029, 7, 3)),
        # Lands on Sun Nov 11 2029 -> Mon Nov 12 also a holiday -> Tue Nov 13.
        (D(2029, 10, 12), D(2029, 11, 13)),
    ],
    ids=[
        "canada-day",
        "sunday-to-monday",
        "saturday-stays",
        "christmas-eve-stays",
        "christmas-boxing-sunday-2026",
        "boxing-day-saturday-2026",
        "christmas-sat-boxing-sun-2027",
        "christmas-sun-boxing-mon-2022",
        "good-friday-to-saturday",
        "easter-sunday-and-monday-2026",
        "easter-sunday-and-monday-2027",
        "leap-day",
        "new-year-across-years",
        "truth-and-reconciliation",
        "sunday-then-thanksgiving",
        "remembrance-day",
        "canada-day-on-sunday-2029",
        "remembrance-day-on-sunday-2029",
    ],
)
def test_federal_due_date(sent: date, expected: date) -> None:
    assert due_date(sent, "federal") == expected
    assert add_calendar_days_federal(sent, 30) == expected


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Fri Jul 31 2026, then BC Day Mon Aug 3: next business day Tue Aug 4.
        (D(2026, 7, 31), 1, D(2026, 8, 4)),
        # Wed Jul 15 2026: 12 business days to Fri Jul 31, skip BC Day, 18 more.
        (D(2026, 7, 15), 30, D(2026, 8, 27)),
        # Mon Feb 2 2026: Family Day Feb 16 skipped -> Tue Mar 17.
        (D(2026, 2, 2), 30, D(2026, 3, 17)),
        # Thu Dec 24 2026: Christmas Fri, weekend -> Mon Dec 28.
        (D(2026, 12, 24), 1, D(2026, 12, 28)),
        (D(2026, 7, 15), 0, D(2026, 7, 15)),
    ],
    ids=["bc-day-long-weekend", "bc-day-in-window", "family-day", "christmas", "zero-days"],
)
def test_add_business_days_bc(start: date, days: int, expected: date) -> None:
    assert add_business_days(start, days, "BC") == expected


@pytest.mark.parametrize(
    ("sent", "jurisdiction", "expected"),
    [
        # BC: Fri Jun 26 2026, skipping Canada Day and BC Day -> Tue Aug 11.
        (D(2026, 6, 26), "BC", D(2026, 8, 11)),
        (D(2026, 7, 15), "BC", D(2026, 8, 27)),
        # Quebec: lands on Wed Jun 24 (Saint-Jean-Baptiste) -> Thu Jun 25.
        (D(2026, 5, 25), "QC", D(2026, 6, 25)),
        # Quebec: lands on Sun Aug 2 -> Mon Aug 3.
        (D(2026, 7, 3), "QC", D(2026, 8, 3)),
        # Quebec: lands on Easter Sunday -> Easter Monday -> Tue Apr 7.
        (D(2026, 3, 6), "QC", D(2026, 4, 7)),
        # Quebec: Remembrance Day is not a Quebec holiday, Wed Nov 11 stands.
        (D(2026, 10, 12), "QC", D(2026, 11, 11)),
        # Alberta, 45 days: Jan 2 + 45 = Mon Feb 16 (Family Day) -> Tue Feb 17.
        (D(2026, 1, 2), "AB", D(2026, 2, 17)),
        # Alberta: Jun 19 + 45 = Mon Aug 3 (Heritage Day) -> Tue Aug 4.
        (D(2026, 6, 19), "AB", D(2026, 8, 4)),
        # Alberta: Feb 19 + 45 = Easter Sunday Apr 5 -> Easter Monday -> Tue Apr 7.
        (D(2026, 2, 19), "AB", D(2026, 4, 7)),
        # Alberta: Mar 2 + 45 = Thu Apr 16, an ordinary day.
        (D(2026, 3, 2), "AB", D(2026, 4, 16)),
    ],
    ids=[
        "bc-canada-day-and-bc-day",
        "bc-bc-day",
        "qc-saint-jean",
        "qc-sunday",
        "qc-easter",
        "qc-no-remembrance-day",
        "ab-family-day",
        "ab-heritage-day",
        "ab-easter",
        "ab-plain",
    ],
)
def test_provincial_due_date(sent: date, jurisdiction: str, expected: date) -> None:
    assert due_date(sent, jurisdiction) == expected


def test_unknown_jurisdiction_is_rejected() -> None:
    with pytest.raises(ValueError):
        due_date(D(2026, 1, 5), "ON")


@pytest.mark.parametrize(
    ("sent", "province", "expected"),
    [
        (D(2026, 6, 26), "BC", Deadline(D(2026, 7, 27), D(2026, 8, 11), "BC")),
        (D(2026, 6, 26), " bc ", Deadline(D(2026, 7, 27), D(2026, 8, 11), "BC")),
        (D(2026, 10, 12), "QC", Deadline(D(2026, 11, 12), D(2026, 11, 11), "QC")),
        (D(2026, 1, 2), "AB", Deadline(D(2026, 2, 2), D(2026, 2, 17), "AB")),
        (D(2026, 6, 1), "ON", Deadline(D(2026, 7, 2))),
        (D(2026, 6, 1), None, Deadline(D(2026, 7, 2))),
    ],
    ids=["bc", "bc-lowercase", "qc", "ab", "ontario-federal-only", "unknown-province"],
)
def test_deadline_for(sent: date, province: str | None, expected: Deadline) -> None:
    assert deadline_for(sent, province) == expected


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        # BC's business days run longer: PIPEDA's Mon Jul 27 comes first.
        (Deadline(D(2026, 7, 27), D(2026, 8, 11), "BC"), D(2026, 7, 27)),
        # Quebec does not keep Remembrance Day: its Nov 11 beats PIPEDA's Nov 12.
        (Deadline(D(2026, 11, 12), D(2026, 11, 11), "QC"), D(2026, 11, 11)),
        (Deadline(D(2026, 7, 2)), D(2026, 7, 2)),
    ],
    ids=["federal-earlier", "provincial-earlier", "federal-only"],
)
def test_effective_is_the_earlier(deadline: Deadline, expected: date) -> None:
    assert deadline.effective == expected


@pytest.mark.parametrize(
    ("original", "sent", "notice", "jurisdiction", "days", "expected"),
    [
        # Jul 2 + 30 = Sat Aug 1, which stands.
        (D(2026, 7, 2), D(2026, 6, 1), D(2026, 6, 20), "federal", 30, D(2026, 8, 1)),
        # A notice on the last day still counts.
        (D(2026, 7, 2), D(2026, 6, 1), D(2026, 7, 2), "federal", 30, D(2026, 8, 1)),
        # One day late: no extension.
        (D(2026, 7, 2), D(2026, 6, 1), D(2026, 7, 3), "federal", 30, None),
        # Shorter extension: Jul 2 + 10 = Sun Jul 12 -> Mon Jul 13.
        (D(2026, 7, 2), D(2026, 6, 1), D(2026, 6, 20), "federal", 10, D(2026, 7, 13)),
        # BC counts business days: from Tue Aug 11, skipping Labour Day -> Wed Sep 23.
        (D(2026, 8, 11), D(2026, 6, 26), D(2026, 7, 20), "BC", 30, D(2026, 9, 23)),
        (D(2026, 8, 11), D(2026, 6, 26), D(2026, 8, 12), "BC", 30, None),
        # Alberta: Apr 16 + 30 = Sat May 16, which stands.
        (D(2026, 4, 16), D(2026, 3, 2), D(2026, 4, 1), "AB", 30, D(2026, 5, 16)),
    ],
    ids=[
        "federal-within",
        "federal-on-last-day",
        "federal-too-late",
        "federal-ten-days-sunday",
        "bc-business-days",
        "bc-too-late",
        "ab-within",
    ],
)
def test_extended(
    original: date,
    sent: date,
    notice: date,
    jurisdiction: str,
    days: int,
    expected: date | None,
) -> None:
    assert extended(original, sent, notice, jurisdiction, days) == expected


def test_extension_notice_before_request_is_rejected() -> None:
    with pytest.raises(ValueError):
        extended(D(2026, 7, 2), D(2026, 6, 1), D(2026, 5, 31), "federal")


@pytest.mark.parametrize(
    ("province", "code"),
    [("QC", "QC"), ("BC", "BC"), ("AB", "AB"), ("ON", "federal"), (None, "federal")],
    ids=["qc", "bc", "ab", "on", "none"],
)
def test_jurisdiction_for(province: str | None, code: str) -> None:
    assert jurisdiction_for(province).code == code


@pytest.mark.parametrize(
    ("code", "days", "business", "verified", "months", "window_days"),
    [
        ("federal", 30, False, True, 6, None),
        ("QC", 30, False, True, None, 30),
        ("BC", 30, True, True, None, 30),
        ("AB", 45, False, False, None, 30),
    ],
    ids=["federal", "qc", "bc", "ab"],
)
def test_jurisdiction_table(
    code: str,
    days: int,
    business: bool,
    verified: bool,
    months: int | None,
    window_days: int | None,
) -> None:
    law = JURISDICTIONS[code]
    assert law.code == code
    assert law.response_days == days
    assert law.business_days is business
    assert law.deemed_refusal_verified is verified
    assert law.complaint_window_months == months
    assert law.complaint_window_days == window_days
    for names in (law.law_name, law.law_short, law.commissioner):
        assert set(names) == {"en", "fr"} and all(names.values())
    assert law.complaint_url.startswith("https://")
    hash(law)  # usable as a dict key or set member despite the dict fields


def test_calendars_are_cached() -> None:
    assert holiday_dates(2026, "BC") is holiday_dates(2026, "BC")
    assert deadlines.holiday_dates.cache_info().hits > 0
