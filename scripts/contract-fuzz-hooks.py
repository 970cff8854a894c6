"""Schemathesis hooks for scripts/contract-fuzz (loaded through
SCHEMATHESIS_HOOKS).

Idempotency-Key values drawn from the contract's pattern are short and
repeat ("0", "A"), so two unrelated generated requests often share one: the
second is then answered as a retry of the first (its first answer, or 409),
which is the contract working, not a finding. In a valid request, the key
gets a suffix unique to the call, so that each generated request is a new
change; invalid requests keep theirs as drawn.
"""

import itertools
import re
import uuid

import schemathesis

_RUN = uuid.uuid4().hex[:8]
_CALLS = itertools.count()
_VALID_KEY = re.compile(r"^[!-~]{0,160}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    # Only valid cases: an edit here makes Schemathesis check the case
    # again, and a negative one (a header left out on purpose) would lose
    # what made it negative.
    meta = case.meta
    if meta is None or meta.generation.mode.is_negative:
        return
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and _VALID_KEY.match(value):
            headers[name] = f"{value}.{_RUN}.{next(_CALLS)}"
