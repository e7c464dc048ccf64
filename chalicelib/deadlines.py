"""When an organisation's answer to an access request is due, per law.

Pure date arithmetic: no I/O, no clock. Callers pass the date the request was
sent; the letters go by email, so it is treated as received the same day.

Rules (see /work/shared/reference/legal-facts.md):

* PIPEDA (federal): 30 calendar days, computed under the federal
  Interpretation Act: the first day is excluded, and a period ending on a
  holiday (every Sunday or a federal holiday) runs to the next day that is not
  one. Saturday is not a holiday.
* Quebec: 30 days, computed the same way with Quebec's holidays (Sundays
  included). Quebec's own Interpretation Act is not in the facts; this mirrors
  the federal rule, which is the common Canadian pattern.
* British Columbia PIPA: 30 "days", where a day excludes Saturdays and
  holidays, so business days.
* Alberta PIPA: 45 days, computed like the federal rule with Alberta's
  holidays (Sundays included). Alberta's extension and deemed-refusal rules are
  unverified: ``Jurisdiction.deemed_refusal_verified`` is False so callers can
  gate that wording.

Provincial holidays come from the ``holidays`` package's "public" and
"optional" categories together. Where it is unsure whether a day counts,
counting it as a holiday only pushes the deadline later: the chase then waits a
day longer, rather than telling a company it missed a deadline it had not.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holidays import HolidayBase

FEDERAL = "federal"

PROVINCES: frozenset[str] = frozenset(
    {"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}
)

# Provinces whose own private-sector law reaches Clearview (joint investigation
# PIPEDA-2021-001); everywhere else only PIPEDA applies.
PROVINCIAL_LAWS: frozenset[str] = frozenset({"QC", "BC", "AB"})

_SUNDAY = 6
_SATURDAY = 5

# The federal Interpretation Act (closing words of "holiday" in s. 35(1)) makes
# the next day a holiday too when these fall on a Sunday, so a period ending on
# that Sunday runs to the Tuesday. Not in the shared facts file: kept because it
# can only make a deadline later, never earlier.
_SUNDAY_SHIFTED_FEDERAL = ((1, 1), (7, 1), (11, 11))


@dataclass(frozen=True)
class Jurisdiction:
    """One law under which a supporter's request is made, and where to complain.

    ``deadline_section`` is empty where no pinpoint has been verified; callers
    then cite the law without a section. French names of the BC and Alberta
    laws and commissioners are descriptive: those provinces publish no official
    French version.
    """

    code: str
    law_name: dict[str, str] = field(hash=False)
    law_short: dict[str, str] = field(hash=False)
    citation: str
    response_days: int
    business_days: bool
    deadline_section: str
    commissioner: dict[str, str] = field(hash=False)
    complaint_url: str
    complaint_window_months: int | None
    complaint_window_days: int | None
    deemed_refusal_verified: bool


JURISDICTIONS: dict[str, Jurisdiction] = {
    FEDERAL: Jurisdiction(
        code=FEDERAL,
        law_name={
            "en": "Personal Information Protection and Electronic Documents Act",
            "fr": "Loi sur la protection des renseignements personnels et les documents "
            "électroniques",
        },
        law_short={"en": "PIPEDA", "fr": "LPRPDE"},
        citation="S.C. 2000, c. 5",
        response_days=30,
        business_days=False,
        deadline_section="s. 8(3)",
        commissioner={
            "en": "Office of the Privacy Commissioner of Canada",
            "fr": "Commissariat à la protection de la vie privée du Canada",
        },
        complaint_url="https://www.priv.gc.ca/en/report-a-concern/",
        complaint_window_months=6,
        complaint_window_days=None,
        deemed_refusal_verified=True,
    ),
    "QC": Jurisdiction(
        code="QC",
        law_name={
            "en": "Act respecting the protection of personal information in the private sector",
            "fr": "Loi sur la protection des renseignements personnels dans le secteur privé",
        },
        law_short={"en": "Quebec private sector Act", "fr": "Loi sur le privé"},
        citation="CQLR c P-39.1",
        response_days=30,
        business_days=False,
        deadline_section="s. 32",
        commissioner={
            "en": "Commission d'accès à l'information du Québec",
            "fr": "Commission d'accès à l'information du Québec",
        },
        complaint_url="https://www.cai.gouv.qc.ca/",
        complaint_window_months=None,
        complaint_window_days=30,
        deemed_refusal_verified=True,
    ),
    "BC": Jurisdiction(
        code="BC",
        law_name={
            "en": "Personal Information Protection Act",
            "fr": "Loi sur la protection des renseignements personnels (Colombie-Britannique)",
        },
        law_short={"en": "BC PIPA", "fr": "LPRP (C.-B.)"},
        citation="SBC 2003, c 63",
        response_days=30,
        business_days=True,
        deadline_section="s. 29",
        commissioner={
            "en": "Office of the Information and Privacy Commissioner for British Columbia",
            "fr": "Commissariat à l'information et à la protection de la vie privée de la "
            "Colombie-Britannique",
        },
        complaint_url="https://www.oipc.bc.ca/",
        complaint_window_months=None,
        complaint_window_days=30,
        deemed_refusal_verified=True,
    ),
    "AB": Jurisdiction(
        code="AB",
        law_name={
            "en": "Personal Information Protection Act",
            "fr": "Loi sur la protection des renseignements personnels (Alberta)",
        },
        law_short={"en": "Alberta PIPA", "fr": "LPRP (Alberta)"},
        citation="SA 2003, c P-6.5",
        response_days=45,
        business_days=False,
        deadline_section="",
        commissioner={
            "en": "Office of the Information and Privacy Commissioner of Alberta",
            "fr": "Commissariat à l'information et à la protection de la vie privée de l'Alberta",
        },
        complaint_url="https://oipc.ab.ca/",
        complaint_window_months=None,
        complaint_window_days=30,
        deemed_refusal_verified=False,
    ),
}


@functools.lru_cache(maxsize=64)
def holiday_dates(year: int, subdiv: str | None) -> frozenset[date]:
    """Holidays (Sundays aside) for deadline counting in ``year``.

    ``subdiv`` None gives the federal Interpretation Act list; a province code
    gives that province's holidays as the ``holidays`` package knows them.
    """
    if subdiv is None:
        return _federal_holidays(year)
    if subdiv not in PROVINCES:
        raise ValueError(f"unknown province code: {subdiv!r}")
    # observed=False: the statutes name the days themselves; the package's
    # "(observed)" Mondays are employment-law substitutes.
    calendar = _canada(year, subdiv, ("public", "optional"))
    return frozenset(calendar)


def _canada(year: int, subdiv: str | None, categories: tuple[str, ...]) -> HolidayBase:
    # Deferred: importing the package costs cold-start time on every Lambda,
    # and most invocations never compute a deadline. country_holidays rather
    # than holidays.Canada: the class's constructor is untyped.
    from holidays import country_holidays

    return country_holidays(
        "CA",
        subdiv=subdiv,
        years=year,
        observed=False,
        language="en_US",
        categories=categories,
    )


def _federal_holidays(year: int) -> frozenset[date]:
    # The "government" category is the federal list minus Easter Monday, which
    # the package files under no federal category at all. Names are pinned to
    # en_US so the Good Friday lookup does not depend on the default language.
    calendar = _canada(year, None, ("government",))
    days = set(calendar)
    good_fridays = calendar.get_named("Good Friday", lookup="exact")
    if not good_fridays:
        # Silently losing a holiday would make deadlines early; fail loudly on a
        # package upgrade that renames it.
        raise RuntimeError(f"holidays package has no federal Good Friday for {year}")
    days.update(friday + timedelta(days=3) for friday in good_fridays)
    for month, day in _SUNDAY_SHIFTED_FEDERAL:
        fixed = date(year, month, day)
        if fixed.weekday() == _SUNDAY:
            days.add(fixed + timedelta(days=1))
    return frozenset(days)


def _is_holiday(day: date, subdiv: str | None) -> bool:
    return day.weekday() == _SUNDAY or day in holiday_dates(day.year, subdiv)


def _add_calendar_days(start: date, days: int, subdiv: str | None) -> date:
    if days < 0:
        raise ValueError("days must not be negative")
    # start + days already excludes the first day.
    result = start + timedelta(days=days)
    while _is_holiday(result, subdiv):
        result += timedelta(days=1)
    return result


def add_calendar_days_federal(start: date, days: int) -> date:
    """``start`` + ``days``, moved off Sundays and federal holidays (not Saturdays)."""
    return _add_calendar_days(start, days, None)


def add_business_days(start: date, days: int, subdiv: str) -> date:
    """The ``days``-th day after ``start`` that is not a weekend or a holiday of ``subdiv``."""
    if days < 0:
        raise ValueError("days must not be negative")
    result = start
    remaining = days
    while remaining:
        result += timedelta(days=1)
        if result.weekday() != _SATURDAY and not _is_holiday(result, subdiv):
            remaining -= 1
    return result


def _get(jurisdiction: str) -> Jurisdiction:
    try:
        return JURISDICTIONS[jurisdiction]
    except KeyError:
        raise ValueError(f"unknown jurisdiction: {jurisdiction!r}") from None


def _advance(start: date, days: int, law: Jurisdiction) -> date:
    if law.business_days:
        return add_business_days(start, days, law.code)
    return _add_calendar_days(start, days, None if law.code == FEDERAL else law.code)


def due_date(sent_on: date, jurisdiction: str) -> date:
    """Last day for the answer under ``jurisdiction`` ("federal", "QC", "BC" or "AB")."""
    law = _get(jurisdiction)
    return _advance(sent_on, law.response_days, law)


def extended(
    deadline_date: date,
    sent_on: date,
    notice_on: date,
    jurisdiction: str,
    days: int = 30,
) -> date | None:
    """The new deadline after an extension notice, or None if the notice came too late.

    ``deadline_date`` is the original due date under ``jurisdiction`` (as from
    ``due_date``). The notice counts only if given on or before it; the new
    limit is then ``days`` more, counted by that jurisdiction's rule. Pass fewer
    days when the notice names an earlier limit. The law allows one extension:
    refusing a second one is the caller's job. For Alberta the extension rule
    itself is unverified (see ``Jurisdiction.deemed_refusal_verified``).
    """
    law = _get(jurisdiction)
    if notice_on < sent_on or deadline_date < sent_on:
        raise ValueError("notice and deadline cannot precede the request")
    if notice_on > deadline_date:
        return None
    return _advance(deadline_date, days, law)


@dataclass(frozen=True)
class Deadline:
    """The PIPEDA deadline and, where a provincial law also applies, that one."""

    federal: date
    provincial: date | None = None
    provincial_code: str | None = None

    @property
    def effective(self) -> date:
        # Both laws apply; the earlier deadline is the one the company misses first.
        if self.provincial is None:
            return self.federal
        return min(self.federal, self.provincial)


def _normalise(province: str | None) -> str | None:
    return province.strip().upper() if province else None


def deadline_for(sent_on: date, province: str | None) -> Deadline:
    """Deadlines for a supporter in ``province`` (any code, or None if unknown)."""
    federal = due_date(sent_on, FEDERAL)
    code = _normalise(province)
    if code is not None and code in PROVINCIAL_LAWS:
        return Deadline(federal, due_date(sent_on, code), code)
    return Deadline(federal)


def jurisdiction_for(province: str | None) -> Jurisdiction:
    """The provincial law for QC, BC and AB supporters; PIPEDA for everyone else."""
    code = _normalise(province)
    if code is not None and code in PROVINCIAL_LAWS:
        return JURISDICTIONS[code]
    return JURISDICTIONS[FEDERAL]


def complain_by(basis: date, law: Jurisdiction) -> date:
    """Last day to complain to the law's commissioner, counted from ``basis``.

    ``basis`` is the refusal, or the day the response deadline passed. Months
    end on the same day number, or the month's last day when it is shorter.
    """
    if law.complaint_window_months is not None:
        month_index = basis.month - 1 + law.complaint_window_months
        year, month = basis.year + month_index // 12, month_index % 12 + 1
        return date(year, month, min(basis.day, calendar.monthrange(year, month)[1]))
    return basis + timedelta(days=law.complaint_window_days or 0)
