"""Mutators shared by the fuzz targets: bytes, protobuf messages, JSON documents and text.

Every mutator takes its decisions from a `Choices`, so one mutator serves two engines:
hypothesis (`DrawChoices`, over `st.data()`: deterministic under `derandomize`, and it
shrinks a failure to a small list of decisions) and atheris (`ProviderChoices`, over libFuzzer's
input bytes: coverage-guided, so the decisions that reach new code are kept and mutated
further). Mutators start from a valid seed and change it a little: flip, insert, delete and
overwrite bytes; set a protobuf field to a boundary value, clear it, grow or shrink a repeated
field, switch a oneof, append an unknown field; change, delete, add or retype a JSON value.

Mutators never raise on their own account: an operation that cannot apply to the input (a
value the field cannot hold) is skipped, so an exception seen by a target always comes from
the code under test.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import strategies as st

T = TypeVar("T")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


# --- where decisions come from -------------------------------------------------------------


class Choices(Protocol):
    def integer(self, low: int, high: int) -> int: ...

    def binary(self, size_max: int) -> bytes: ...


class DrawChoices:
    """Decisions drawn by hypothesis (`st.data()`)."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def integer(self, low: int, high: int) -> int:
        return self._data.draw(st.integers(low, high))

    def binary(self, size_max: int) -> bytes:
        return self._data.draw(st.binary(max_size=size_max))


class ProviderChoices:
    """Decisions read from libFuzzer's input bytes (atheris' FuzzedDataProvider); once the
    input is used up every decision is the lowest choice."""

    def __init__(self, provider: Any) -> None:
        self._provider = provider

    def integer(self, low: int, high: int) -> int:
        return int(self._provider.ConsumeIntInRange(low, high))

    def binary(self, size_max: int) -> bytes:
        size = int(self._provider.ConsumeIntInRange(0, size_max))
        return bytes(self._provider.ConsumeBytes(size))


class RandomChoices:
    """Decisions from a `random.Random` (seeded): for building corpora, never for checks."""

    def __init__(self, rng: Any) -> None:
        self._rng = rng

    def integer(self, low: int, high: int) -> int:
        return int(self._rng.randint(low, high))

    def binary(self, size_max: int) -> bytes:
        return bytes(self._rng.getrandbits(8) for _ in range(self._rng.randint(0, size_max)))


def pick(choices: Choices, options: Sequence[T]) -> T:
    return options[choices.integer(0, len(options) - 1)]


# --- values at the edges ------------------------------------------------------------------

INTERESTING_INTEGERS = (
    0, 1, -1, 2, 7, 16, 32, 64, 77, 127, 128, 255, 256, 1_000, 65_535, 65_536,
    INT32_MAX, INT32_MIN, UINT32_MAX, 2**32, INT64_MAX, INT64_MIN, 2**63, UINT64_MAX,
    1_700_000_000_000, 1_700_000_100_000, 10**15,
)  # fmt: skip

INTERESTING_TEXT = (
    "", "a", "A", "0", " ", ".", "-", "/", "x" * 128, "x" * 129, "x" * 1024, "x" * 1025,
    "a b", "a\x00b", "\x00", "é", "日本", "\u202e", "\U0001f600", "a/../b", "-leading",
    ".leading", "a" * 64, "a" * 65, "%00", "a\nb", "null", "true", "0x10", "1e9", "NaN",
    "CLASSIFICATION_CORE", "provledger-test", "Bearer", "=",
)  # fmt: skip


def interesting_text(choices: Choices, vocabulary: Sequence[str] = ()) -> str:
    source = choices.integer(0, 3)
    if source == 0 and vocabulary:
        return pick(choices, vocabulary)
    if source == 1 and vocabulary:  # a real id, changed a little
        return mutate_text(pick(choices, vocabulary), choices)
    if source == 2:
        return choices.binary(48).decode("utf-8", errors="replace")
    return pick(choices, INTERESTING_TEXT)


def interesting_bytes(choices: Choices) -> bytes:
    kind = choices.integer(0, 3)
    if kind == 0:
        return bytes(pick(choices, (0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65)))
    if kind == 1:
        return b"\xff" * pick(choices, (1, 16, 32, 64, 200))
    return choices.binary(80)


def mutate_text(text: str, choices: Choices) -> str:
    """`text` with one character-level change."""
    operation = choices.integer(0, 6)
    position = choices.integer(0, len(text))
    if choices.integer(0, 3) == 0:  # at an edge: the ends, or next to a separator
        separators = [i for i, c in enumerate(text[:4096]) if c in ".=/:"][:8]
        edges = [0, max(len(text) - 1, 0), *(i + d for i in separators for d in (-1, 1))]
        position = min(max(pick(choices, edges), 0), len(text))
    if operation == 0:  # delete a character
        return text[:position] + text[position + 1 :]
    if operation == 1:  # insert a character
        inserted = pick(choices, (".", "=", "-", "_", "+", "/", " ", "\x00", "é", "A", "0", "%"))
        return text[:position] + inserted + text[position:]
    if operation == 2 and position < len(text) and choices.integer(0, 1):  # a neighbour
        replacement = _neighbour(text[position], choices)
        return text[:position] + replacement + text[position + 1 :]
    if operation == 2:  # replace a character
        replacement = chr(choices.integer(0, 0x2FF))
        return text[:position] + replacement + text[position + 1 :]
    if operation == 3:  # truncate
        return text[:position]
    if operation == 4:  # duplicate a stretch
        length = choices.integer(1, 64)
        return text[:position] + text[position : position + length] * 2 + text[position + length :]
    if operation == 5:  # change case
        return text.swapcase()
    return text + pick(choices, INTERESTING_TEXT)


def _neighbour(character: str, choices: Choices) -> str:
    """A character near `character` in its own class (letters stay letters, digits digits):
    what changes only a few bits of a base64 or hex digit."""
    for low, high in (("A", "Z"), ("a", "z"), ("0", "9")):
        if low <= character <= high:
            span = ord(high) - ord(low) + 1
            step = pick(choices, (1, 2, 4, 8, -1))
            return chr(ord(low) + (ord(character) - ord(low) + step) % span)
    return chr(ord(character) ^ 1)


# --- bytes ---------------------------------------------------------------------------------

_INTERESTING_CHUNKS = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\x01", b"\x80" * 9 + b"\x01", b"\xff" * 10,
    b"\x08\x00", b"\x0a\x00", b"\x12\x00", b"\x0a\x80\x80\x80\x80\x10", b"\xf8\xff\xff\xff\x0f",
)  # fmt: skip


def mutate_bytes(data: bytes, choices: Choices, operations_max: int = 4) -> bytes:
    """`data` after one to `operations_max` byte-level changes."""
    buffer = bytearray(data)
    for _ in range(choices.integer(1, operations_max)):
        operation = choices.integer(0, 8)
        position = choices.integer(0, len(buffer))
        inside = position < len(buffer)
        if operation == 0 and inside:  # flip one bit
            buffer[position] ^= 1 << choices.integer(0, 7)
        elif operation == 1 and inside:  # overwrite one byte
            buffer[position] = choices.integer(0, 255)
        elif operation == 2:  # insert bytes
            buffer[position:position] = choices.binary(8) or b"\x00"
        elif operation == 3 and inside:  # delete a stretch
            del buffer[position : position + choices.integer(1, 16)]
        elif operation == 4:  # duplicate a stretch
            length = choices.integer(1, 32)
            buffer[position:position] = buffer[position : position + length]
        elif operation == 5:  # truncate
            del buffer[position:]
        elif operation == 6:  # append
            buffer += choices.binary(16) or b"\x00"
        elif operation == 7:  # overwrite with a boundary chunk
            chunk = pick(choices, _INTERESTING_CHUNKS)
            buffer[position : position + len(chunk)] = chunk
        elif inside:  # swap two bytes
            other = choices.integer(0, len(buffer) - 1)
            buffer[position], buffer[other] = buffer[other], buffer[position]
    return bytes(buffer)


# --- protobuf messages ---------------------------------------------------------------------

_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (INT32_MIN, INT32_MAX),
    FieldDescriptor.TYPE_SINT32: (INT32_MIN, INT32_MAX),
    FieldDescriptor.TYPE_SFIXED32: (INT32_MIN, INT32_MAX),
    FieldDescriptor.TYPE_ENUM: (INT32_MIN, INT32_MAX),
    FieldDescriptor.TYPE_UINT32: (0, UINT32_MAX),
    FieldDescriptor.TYPE_FIXED32: (0, UINT32_MAX),
    FieldDescriptor.TYPE_INT64: (INT64_MIN, INT64_MAX),
    FieldDescriptor.TYPE_SINT64: (INT64_MIN, INT64_MAX),
    FieldDescriptor.TYPE_SFIXED64: (INT64_MIN, INT64_MAX),
    FieldDescriptor.TYPE_UINT64: (0, UINT64_MAX),
    FieldDescriptor.TYPE_FIXED64: (0, UINT64_MAX),
}

# A value for a field of a message: (message, field) -> value, or None for the default choice.
ValueHook = Callable[[Message, FieldDescriptor, Choices], Any]


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_map(field: FieldDescriptor) -> bool:
    message_type = field.message_type
    return message_type is not None and message_type.GetOptions().map_entry


def _slots(message: Message, depth: int = 0) -> list[tuple[Message, FieldDescriptor]]:
    """Every (message, field) in `message` and in its set sub-messages: the places a mutation
    can touch, set or not."""
    slots = [(message, field) for field in message.DESCRIPTOR.fields]
    if depth > 6:
        return slots
    for field in message.DESCRIPTOR.fields:
        if field.type != FieldDescriptor.TYPE_MESSAGE or _is_map(field):
            continue
        if _is_repeated(field):
            for item in getattr(message, field.name):
                slots.extend(_slots(item, depth + 1))
        elif message.HasField(field.name):
            slots.extend(_slots(getattr(message, field.name), depth + 1))
    return slots


def scalar_value(field: FieldDescriptor, choices: Choices, vocabulary: Sequence[str] = ()) -> Any:
    """A boundary or random value of `field`'s type."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        return bool(choices.integer(0, 1))
    if kind == FieldDescriptor.TYPE_STRING:
        return interesting_text(choices, vocabulary)
    if kind == FieldDescriptor.TYPE_BYTES:
        return interesting_bytes(choices)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return float(pick(choices, (0.0, -1.0, 1e300, float("inf"))))
    low, high = _INTEGER_RANGES[kind]
    if kind == FieldDescriptor.TYPE_ENUM and choices.integer(0, 1):
        return pick(choices, [v.number for v in field.enum_type.values])
    if choices.integer(0, 3) == 0:
        return choices.integer(low, high)
    value = pick(choices, INTERESTING_INTEGERS)
    return min(max(value, low), high)


def encode_varint(value: int) -> bytes:
    value &= UINT64_MAX
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def unknown_field(message: Message, choices: Choices) -> bytes:
    """The wire bytes of one field `message`'s type does not define."""
    known = {field.number for field in message.DESCRIPTOR.fields}
    number = pick(choices, (15, 99, 100, 1_000, 18_999, 20_000, 2**29 - 1, 6, 9, 41, 50))
    while number in known:
        number += 1
    wire_type = pick(choices, (0, 1, 2, 5))
    tag = encode_varint(number << 3 | wire_type)
    if wire_type == 0:
        return tag + encode_varint(pick(choices, INTERESTING_INTEGERS))
    if wire_type == 1:
        return tag + bytes(8)
    if wire_type == 5:
        return tag + b"\xff" * 4
    payload = choices.binary(24)
    return tag + encode_varint(len(payload)) + payload


def mutate_message(
    message: Message,
    choices: Choices,
    vocabulary: Sequence[str] = (),
    operations_max: int = 3,
    value_hook: ValueHook | None = None,
) -> None:
    """Change `message` in place: one to `operations_max` field-level mutations."""
    for _ in range(choices.integer(1, operations_max)):
        slots = _slots(message)
        target, field = slots[choices.integer(0, len(slots) - 1)]
        # A value this field cannot hold: the operation is skipped.
        with contextlib.suppress(ValueError, TypeError, OverflowError, DecodeError):
            _mutate_field(target, field, choices, vocabulary, value_hook)


def _mutate_field(
    target: Message,
    field: FieldDescriptor,
    choices: Choices,
    vocabulary: Sequence[str],
    value_hook: ValueHook | None,
) -> None:
    name = field.name
    operation = choices.integer(0, 5)
    if operation == 0:  # an unknown field next to this one
        target.MergeFromString(unknown_field(target, choices))
        return
    if operation == 1:  # back to the default, or out of its oneof
        target.ClearField(name)
        return
    if _is_map(field):
        entries = getattr(target, name)
        key = interesting_text(choices, vocabulary)
        value_field = field.message_type.fields_by_name["value"]
        if value_field.type == FieldDescriptor.TYPE_MESSAGE:
            entries[key]
        else:
            entries[key] = scalar_value(value_field, choices, vocabulary)
        return
    hooked = value_hook(target, field, choices) if value_hook is not None else None
    if _is_repeated(field):
        items = getattr(target, name)
        if operation == 2 and len(items) > 0:  # remove one
            del items[choices.integer(0, len(items) - 1)]
        elif operation == 3 and len(items) > 0:  # repeat one (or many)
            index = choices.integer(0, len(items) - 1)
            repeats = pick(choices, (1, 1, 2, 70, 2_100))
            for _ in range(repeats):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    items.add().CopyFrom(items[index])
                else:
                    items.append(items[index])
        elif operation == 4 and len(items) > 1:  # swap two
            first, second = choices.integer(0, len(items) - 1), choices.integer(0, len(items) - 1)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                saved = copy.deepcopy(items[first])
                items[first].CopyFrom(items[second])
                items[second].CopyFrom(saved)
            else:
                items[first], items[second] = items[second], items[first]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            added = items.add()
            if hooked is not None:
                added.CopyFrom(hooked)
        else:
            items.append(hooked if hooked is not None else scalar_value(field, choices, vocabulary))
        return
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        sub = getattr(target, name)
        if hooked is not None:
            sub.CopyFrom(hooked)
        else:
            sub.SetInParent()  # present, possibly empty (also switches a oneof to it)
        return
    setattr(
        target, name, hooked if hooked is not None else scalar_value(field, choices, vocabulary)
    )


def has_unknown_fields(message: Message) -> bool:
    """Whether `message` or any message inside it carries fields its type does not define."""
    stripped = type(message)()
    stripped.CopyFrom(message)
    stripped.DiscardUnknownFields()
    return stripped.ByteSize() != message.ByteSize()


def enums_out_of_range(message: Message) -> list[str]:
    """The enum fields in `message` (recursively) holding a value their enum does not name."""
    found = []
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_ENUM:
            values = value if _is_repeated(field) else [value]
            if any(v not in field.enum_type.values_by_number for v in values):
                found.append(field.full_name)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not _is_map(field):
            for item in value if _is_repeated(field) else [value]:
                found.extend(enums_out_of_range(item))
    return found


# --- JSON documents ------------------------------------------------------------------------

INTERESTING_JSON: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**32, 2**63, 2**64 - 1, 2**64, 10**30, "", "0", "00", "x",
    "AA==", "AAAA", "A", "=", "ff" * 32, "FF" * 32, "ff" * 31, "ff" * 33, [], {}, [0], {"": 0},
    "provledger-test", "provledger-evidence/2", "provledger-evidence/1", "validator-0", "agency-a",
)  # fmt: skip


def json_paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `document`, the root's children first."""
    paths: list[tuple[Any, ...]] = []
    if isinstance(document, dict):
        for key, value in document.items():
            paths.append((*prefix, key))
            paths.extend(json_paths(value, (*prefix, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            paths.append((*prefix, index))
            paths.extend(json_paths(value, (*prefix, index)))
    return paths


def _json_value(choices: Choices, old: Any) -> Any:
    kind = choices.integer(0, 4)
    if kind == 0 and isinstance(old, str):
        return mutate_text(old, choices)
    if kind == 1 and isinstance(old, int) and not isinstance(old, bool):
        return old + pick(choices, (1, -1, 2**32, -(2**64), 2**64))
    if kind == 2:
        return choices.integer(-(2**65), 2**65)
    return copy.deepcopy(pick(choices, INTERESTING_JSON))


def mutate_json(document: Any, choices: Choices, operations_max: int = 3) -> Any:
    """A copy of `document` with one to `operations_max` value-level changes."""
    document = copy.deepcopy(document)
    for _ in range(choices.integer(1, operations_max)):
        paths = json_paths(document)
        if not paths:
            return _json_value(choices, document)
        path = paths[choices.integer(0, len(paths) - 1)]
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        operation = choices.integer(0, 5)
        if operation <= 1:  # change or retype the value
            parent[last] = _json_value(choices, parent[last])
        elif operation == 2:  # delete it
            del parent[last]
        elif operation == 3 and isinstance(parent, dict):  # add a key
            parent[interesting_text(choices)] = copy.deepcopy(parent[last])
        elif operation == 3:  # repeat an entry
            parent.insert(last, copy.deepcopy(parent[last]))
        elif operation == 4 and isinstance(parent, list) and len(parent) > 1:  # swap
            other = choices.integer(0, len(parent) - 1)
            parent[last], parent[other] = parent[other], parent[last]
        else:  # wrap it
            parent[last] = [parent[last]] if choices.integer(0, 1) else {"value": parent[last]}
    return document


def canonical_or_none(document: Any) -> bytes | None:
    """Canonical JSON bytes of `document` (the evidence format's spelling), or None when the
    document cannot be written as JSON at all."""
    try:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        return None
    return text.encode("ascii") + b"\n"
