"""Readable names for the codes the data carries ("day_to_day" -> "Day to day"), for the pages only.

One place for every page (the `readable` filter of api.web.pages): the shipped taxonomy's
labels that a plain rule would get wrong are named here, any other code has its underscores
read as spaces and its first letter capitalised. Only what a person reads changes: a form's
option values, URLs, data attributes, the API's JSON and the digests keep the codes, so links
and filters work as before. Names that are already text (a topic's label, a source's name, a
label a person typed) are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

# Codes of the shipped taxonomy and the demo data whose readable name is not the generic one.
KNOWN: dict[str, str] = {
    # employee themes (classifiers.config.DEFAULT_TOUCHPOINTS)
    "day_to_day": "Day to day",
    "pay_benefits": "Pay & benefits",
    # employee tenure segments (the demo's)
    "<1y": "Under 1 year",
    "1-3y": "1 to 3 years",
    "3y+": "3 years or more",
    # customer segments and channels
    "loyalty_member": "Loyalty member",
    "app_review": "App review",
    # what the analytics write for an item without a value
    "unknown": "Unknown",
    "und": "Undetermined language",
    "(all)": "All",
}
_CODE = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")


def readable(code: Any) -> Any:
    """The name a person reads for a value code; anything that does not look like a code (a
    topic's label, a sentence, None) comes back unchanged."""
    if not isinstance(code, str):
        return code
    if code in KNOWN:
        return KNOWN[code]
    if not _CODE.match(code) or code.isdigit():
        return code
    words = code.replace("_", " ")
    return words[:1].upper() + words[1:]
