"""Privacy: PII redaction of feedback text and keyed author pseudonyms.

Minimum group sizes for employee aggregates live in `feedback.privacy.groups`.
"""

from feedback.privacy.pseudonyms import pseudonymize
from feedback.privacy.redaction import PLACEHOLDERS, PatternSpec, Redactor

__all__ = ["PLACEHOLDERS", "PatternSpec", "Redactor", "pseudonymize"]
