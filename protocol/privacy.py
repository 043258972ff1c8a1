"""The privacy guard: free text on the ledger must not carry personal data.

A ledger is forever and every member reads parts of it, so what goes on it is provenance,
never content: digests, ids, classifications, purposes. People still type names, phone numbers
and ID numbers into free-text fields. The guard refuses an event whose text (any string field
of its payload, at any depth: names, metadata, purposes, reasons, terms, ids) matches one of the
consortium's personal-data patterns, with `personal_data` and the field and kind of data that
matched, never the matched text itself (the refusal is logged and returned to the client).

The patterns are the genesis document's `personal_data_patterns` (a list of `{"name",
"pattern"}`, Python regular expressions), so every validator applies the same ones; a genesis
without the key uses `DEFAULT_PATTERNS`: PRC resident ID numbers, mainland mobile numbers and
e-mail addresses. The guard runs among the state-free checks of an event (protocol/events.py),
at admission and again for every event of every block, so no validator accepts what another
refuses.

What must never go on the ledger, and how small secrets are committed to instead (salted
digests), is in docs/security.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from provledger.protocol.errors import invalid

# A resident ID number: 6-digit region, birth date (YYYYMMDD, 1800-2099), 3-digit sequence,
# check character; mainland mobile numbers: 11 digits starting 13-19, optionally +86; e-mail.
DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "prc_resident_id",
        r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
        r"\d{3}[0-9Xx](?![0-9A-Za-z])",
    ),
    ("mobile_number", r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d{9}(?!\d)"),
    ("email_address", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
)
PATTERNS_MAX = 64
PATTERN_LENGTH_CHARS_MAX = 1_024


@dataclass(frozen=True)
class PersonalDataGuard:
    """Compiled personal-data patterns, by name."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def from_patterns(cls, patterns: Iterable[tuple[str, str]]) -> PersonalDataGuard:
        """Compile `(name, regular expression)` pairs; raise ValueError if one is not valid."""
        compiled = []
        for name, pattern in patterns:
            if not name or len(pattern) > PATTERN_LENGTH_CHARS_MAX:
                raise ValueError(f"pattern {name!r}: a name and at most 1,024 characters")
            try:
                compiled.append((name, re.compile(pattern)))
            except re.error as error:
                raise ValueError(f"pattern {name!r} is not a regular expression: {error}") from None
        if len(compiled) > PATTERNS_MAX:
            raise ValueError(f"at most {PATTERNS_MAX} personal-data patterns")
        return cls(tuple(compiled))

    def check(self, kind: str, payload: Message) -> None:
        """Refuse (`personal_data`) a payload with a string that matches a pattern."""
        for path, text in _strings(payload, kind):
            for name, pattern in self.patterns:
                if pattern.search(text):
                    raise invalid(
                        "personal_data",
                        f"{path} looks like personal data ({name}); put a salted digest or an "
                        "id on the ledger, never the data itself",
                    )


DEFAULT_GUARD = PersonalDataGuard.from_patterns(DEFAULT_PATTERNS)


def _strings(message: Message, path: str) -> Iterator[tuple[str, str]]:
    """Every string in `message`, at any depth, with where it is."""
    for field, value in message.ListFields():
        where = f"{path}.{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if key_field.type == FieldDescriptor.TYPE_STRING:
                    yield f"{where} key", key
                yield from _values(value_field, item, f"{where}[{key!r}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from _values(field, item, f"{where}[{index}]")
        else:
            yield from _values(field, value, where)


def _values(field: FieldDescriptor, value: object, where: str) -> Iterator[tuple[str, str]]:
    if field.type == FieldDescriptor.TYPE_STRING:
        yield where, str(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        yield from _strings(value, where)  # type: ignore[arg-type]
