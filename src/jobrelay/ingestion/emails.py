"""Email checks for ingestion: email-validator's verdict, at a fraction of its cost.

email-validator spends most of its ~25 µs per address on the domain (IDNA rules), and a job's
1000 addresses share a handful of domains. So a plain ASCII address (dot-atom local part, ASCII
host name) has its domain checked once and cached; anything else, and every address that fails,
goes through `validate_email` itself, so the accepted set, the normalized form and the error
messages are email-validator's own (the test suite compares both paths).
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import ATEXT, CASE_INSENSITIVE_MAILBOX_NAMES

__all__ = ["EmailNotValidError", "normalize_email"]

# The dot-atom local part of RFC 5322 with email-validator's own character set, and a plain host.
_SIMPLE_ADDRESS = re.compile(rf"(?P<local>[{ATEXT}]+(?:\.[{ATEXT}]+)*)@(?P<domain>[A-Za-z0-9.\-]+)")
# email-validator's limit on a whole ASCII address (RFC 3696 errata 1690).
_MAX_ADDRESS_LENGTH = 254
# Local parts email-validator lowercases (RFC 2142 role mailboxes).
_CASE_INSENSITIVE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


@lru_cache(maxsize=4096)
def _plain_domain(domain: str) -> str | None:
    """The normalized domain when email-validator accepts it unchanged but for case, else None."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain if checked.domain == domain.lower() else None


def normalize_email(value: str) -> str:
    """The address as email-validator normalizes it; raises `EmailNotValidError` if invalid."""
    match = _SIMPLE_ADDRESS.fullmatch(value)
    if match is not None and len(value) <= _MAX_ADDRESS_LENGTH:
        domain = _plain_domain(match["domain"])
        if domain is not None:
            local = match["local"]
            if local.lower() in _CASE_INSENSITIVE_MAILBOXES:
                local = local.lower()
            return f"{local}@{domain}"
    return validate_email(value, check_deliverability=False).normalized
