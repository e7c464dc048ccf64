"""Supporter-facing strings in English and French, on equal footing."""

from __future__ import annotations

from datetime import date

LANGUAGES = ("en", "fr")

FIELD_LABELS = {
    "en": {
        "first_name": "First name",
        "last_name": "Last name",
        "email": "Email address",
        "province": "Province or territory",
        "language": "Language",
        "consent_updates": "Updates",
        "body": "Form",
        "captcha": "Human check",
    },
    "fr": {
        "first_name": "Prénom",
        "last_name": "Nom de famille",
        "email": "Adresse courriel",
        "province": "Province ou territoire",
        "language": "Langue",
        "consent_updates": "Nouvelles",
        "body": "Formulaire",
        "captcha": "Vérification anti-robot",
    },
}

_PROBLEMS = {
    "en": {
        ("first_name", "required"): "Please enter your first name.",
        ("first_name", "too_long"): "Your first name is too long (100 characters at most).",
        ("first_name", "invalid"): "Your first name contains characters we cannot use.",
        ("last_name", "required"): "Please enter your last name.",
        ("last_name", "too_long"): "Your last name is too long (100 characters at most).",
        ("last_name", "invalid"): "Your last name contains characters we cannot use.",
        ("email", "required"): "Please enter your email address.",
        ("email", "too_long"): "This email address is too long.",
        ("email", "invalid"): "This email address is not valid.",
        ("email", "ascii_only"): (
            "We cannot send to an address with accented letters before the @."
            " Please use another address."
        ),
        ("province", "invalid"): "Choose a province or territory from the list, or leave it empty.",
        ("language", "invalid"): "Choose English or French.",
        ("consent_updates", "invalid"): "Tick the box or leave it empty.",
        ("body", "malformed"): "The form could not be read. Please try again.",
        ("body", "too_large"): "The form is too large.",
        ("body", "unsupported"): "The form was sent in a format we do not accept.",
        ("body", "rate_limited"): "Too many submissions from here. Please try again later.",
        ("email", "rate_limited"): "Too many submissions for this address. Please try again later.",
        ("captcha", "invalid"): "Please complete the human check and send the form again.",
        (
            "captcha",
            "unavailable",
        ): "The human check is unavailable right now. Please try again in a moment.",
    },
    "fr": {
        ("first_name", "required"): "Veuillez entrer votre prénom.",
        ("first_name", "too_long"): "Votre prénom est trop long (100 caractères au plus).",
        (
            "first_name",
            "invalid",
        ): "Votre prénom contient des caractères que nous ne pouvons pas utiliser.",
        ("last_name", "required"): "Veuillez entrer votre nom de famille.",
        ("last_name", "too_long"): "Votre nom de famille est trop long (100 caractères au plus).",
        (
            "last_name",
            "invalid",
        ): "Votre nom de famille contient des caractères que nous ne pouvons pas utiliser.",
        ("email", "required"): "Veuillez entrer votre adresse courriel.",
        ("email", "too_long"): "Cette adresse courriel est trop longue.",
        ("email", "invalid"): "Cette adresse courriel n'est pas valide.",
        ("email", "ascii_only"): (
            "Nous ne pouvons pas écrire à une adresse avec des lettres accentuées avant le @."
            " Veuillez en utiliser une autre."
        ),
        (
            "province",
            "invalid",
        ): "Choisissez une province ou un territoire dans la liste, ou laissez le champ vide.",
        ("language", "invalid"): "Choisissez le français ou l'anglais.",
        ("consent_updates", "invalid"): "Cochez la case ou laissez-la vide.",
        ("body", "malformed"): "Le formulaire n'a pas pu être lu. Veuillez réessayer.",
        ("body", "too_large"): "Le formulaire est trop volumineux.",
        ("body", "unsupported"): (
            "Le formulaire a été envoyé dans un format que nous n'acceptons pas."
        ),
        ("body", "rate_limited"): "Trop d'envois depuis cet endroit. Veuillez réessayer plus tard.",
        (
            "email",
            "rate_limited",
        ): "Trop d'envois pour cette adresse. Veuillez réessayer plus tard.",
        ("captcha", "invalid"): (
            "Veuillez compléter la vérification anti-robot et renvoyer le formulaire."
        ),
        ("captcha", "unavailable"): (
            "La vérification anti-robot est indisponible pour le moment. "
            "Veuillez réessayer dans un instant."
        ),
    },
}

_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
}


def problem(language: str, field: str, code: str) -> str:
    """The message for one field's problem, in the supporter's language."""
    messages = _PROBLEMS["fr" if language == "fr" else "en"]
    fallback = "Cette valeur n'est pas valide." if language == "fr" else "This value is not valid."
    return messages.get((field, code), fallback)


def problems(language: str, codes: dict[str, str]) -> dict[str, str]:
    return {field: problem(language, field, code) for field, code in codes.items()}


def longdate(value: date, language: str) -> str:
    month = _MONTHS["fr" if language == "fr" else "en"].split()[value.month - 1]
    if language == "fr":
        day = "1er" if value.day == 1 else str(value.day)
        return f"{day} {month} {value.year}"
    return f"{value.day} {month} {value.year}"


def language_from(accept_language: str | None) -> str:
    """Pick en or fr from an Accept-Language header (first one mentioned wins)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "en"


# Sentences of the complaint kit's chronology, in the supporter's language.
CHRONOLOGY = {
    "en": {
        "sent": "My access and deletion request was sent by email to {target} <{email}>, "
        "in my name, with a copy to me (reference {reference}).",
        "extended": "{target} notified an extension of the time limit to {date}.",
        "info_requested": "{target} asked me for more information before answering.",
        "info_provided": "I provided the information {target} asked for.",
        "due": "The legal time limit to respond passed with no response.",
        "refused": "{target} refused my request.",
        "followed_up": "A follow-up letter was sent to {target}, noting the deemed refusal "
        "and setting a final date of {date}.",
    },
    "fr": {
        "sent": "Ma demande d'accès et de suppression a été envoyée par courriel à {target} "
        "<{email}>, en mon nom, avec une copie à moi-même (référence {reference}).",
        "extended": "{target} a avisé d'une prolongation du délai jusqu'au {date}.",
        "info_requested": "{target} m'a demandé des renseignements supplémentaires avant de répondre.",
        "info_provided": "J'ai fourni les renseignements demandés par {target}.",
        "due": "Le délai légal de réponse a expiré sans réponse.",
        "refused": "{target} a refusé ma demande.",
        "followed_up": "Une lettre de relance a été envoyée à {target}, constatant le refus "
        "présumé et fixant une date limite finale au {date}.",
    },
}


_REPORT_PROBLEMS = {
    "en": {
        "bad_type": "Choose what happened: response_received, extension_notice, "
        "info_requested, info_provided or refused.",
        "too_late": "An extension counts only if it was notified before the deadline passed.",
        "already_extended": "An extension can be granted only once.",
        "not_now": "This cannot be reported at this stage of your request.",
    },
    "fr": {
        "bad_type": "Indiquez ce qui s'est passé : response_received, extension_notice, "
        "info_requested, info_provided ou refused.",
        "too_late": "Une prolongation ne compte que si elle a été annoncée avant l'échéance.",
        "already_extended": "Le délai ne peut être prolongé qu'une seule fois.",
        "not_now": "Ceci ne peut pas être signalé à cette étape de votre demande.",
    },
}


def report_problem(language: str, code: str) -> str:
    return _REPORT_PROBLEMS["fr" if language == "fr" else "en"][code]
