"""Which regular expressions a rule may run on anyone's mail: patterns that could backtrack badly are refused.

Refused: longer than MAX_PATTERN_LENGTH, back-references, a repeated group that itself repeats (``(a+)+``),
repeated alternatives that can match the same text (``(a|ab)*``), or two unbounded repeats that can match the
same characters with nothing between them that stops the first (``\\d+\\s*\\d+``, ``.*a.*b``): Python's engine
takes exponential or cubic time on those. The check parses the pattern's own structure (a small parser here);
what passes is at worst quadratic, and rules.py only lets it see REGEX_TEXT_LIMIT characters.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass

MAX_PATTERN_LENGTH = 200


def _quote(value: object) -> str:
    return f"'{value}'"


@dataclass(slots=True)
class _Item:
    """One piece of a parsed pattern: an atom (the `chars` it can match) or a group (its `branches`)."""

    chars: frozenset[str]
    min_zero: bool = False  # may match nothing: ?, *, {0,n}
    repeat: bool = False  # may match more than once: *, +, {m,n} with n > 1
    unbounded: bool = False  # *, +, {m,}
    zero_width: bool = False  # anchors and lookarounds
    atomic: bool = False  # (?>...) and possessive quantifiers never backtrack into themselves
    branches: list[list[_Item]] | None = None


# Characters tried against each atom to learn what it can match; enough to tell \d from \s from letters.
_PROBE = string.printable + "éüßжяё中文ا٣\u00a0"
_ANY = frozenset(_PROBE)


class _RiskyPatternError(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is refused as a rule's regex, or None when it is safe to run on anyone's mail."""
    if not pattern:
        return "is missing"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is a regular expression longer than {MAX_PATTERN_LENGTH} characters"
    try:
        compiled_pattern(pattern)
    except re.error as exc:
        return f"{_quote(pattern)} is not a valid regular expression ({exc.msg})"
    try:
        group, _ = _parse_alternatives(pattern, 0)
        _check_item(group)
    except _RiskyPatternError as exc:
        return f"{_quote(pattern)} could take very long on some mail: {exc}"
    return None


@functools.lru_cache(maxsize=1024)
def _atom_chars(source: str) -> frozenset[str]:
    try:
        atom = re.compile(source, re.IGNORECASE | re.DOTALL)
    except re.error:
        return _ANY
    return frozenset(char for char in _PROBE if atom.fullmatch(char))


def _parse_alternatives(pattern: str, start: int) -> tuple[_Item, int]:
    """Parse branches up to the closing ")" (or the end) into one group item; returns it and the index of ")"."""
    branches: list[list[_Item]] = [[]]
    i = start
    while i < len(pattern) and pattern[i] != ")":
        if pattern[i] == "|":
            branches.append([])
            i += 1
            continue
        item, i = _parse_atom(pattern, i)
        if item is not None:
            i = _parse_quantifier(pattern, i, item)
            branches[-1].append(item)
    return _Item(chars=_ANY, branches=branches), i


def _parse_atom(pattern: str, i: int) -> tuple[_Item | None, int]:
    char = pattern[i]
    if char in "^$":
        return _Item(chars=frozenset(), zero_width=True), i + 1
    if char == "\\":
        nxt = pattern[i + 1]
        if nxt in "123456789":
            raise _RiskyPatternError("back-references (\\1) are not allowed")
        if nxt in "AbBZ":
            return _Item(chars=frozenset(), zero_width=True), i + 2
        end = i + 2
        if nxt in "xuU":
            end = i + {"x": 4, "u": 6, "U": 10}[nxt]
        elif nxt == "N":
            end = pattern.index("}", i) + 1
        elif nxt == "0":
            while end < len(pattern) and end < i + 4 and pattern[end] in "01234567":
                end += 1
        return _Item(chars=_atom_chars(pattern[i:end])), end
    if char == "[":
        end = i + 1
        if pattern[end] == "^":
            end += 1
        if pattern[end] == "]":
            end += 1
        while pattern[end] != "]":
            end += 2 if pattern[end] == "\\" else 1
        return _Item(chars=_atom_chars(pattern[i : end + 1])), end + 1
    if char == ".":
        return _Item(chars=_ANY), i + 1
    if char == "(":
        return _parse_group(pattern, i)
    return _Item(chars=_atom_chars(re.escape(char))), i + 1


def _parse_group(pattern: str, i: int) -> tuple[_Item | None, int]:
    body = i + 1
    zero_width = atomic = False
    if pattern.startswith("(?", i):
        head = pattern[i + 2 : i + 4]
        if head.startswith("#"):
            return None, pattern.index(")", i) + 1
        if head.startswith(("P=", "(")):
            raise _RiskyPatternError("back-references and conditional groups are not allowed")
        if head.startswith("P<"):
            body = pattern.index(">", i) + 1
        elif head in ("<=", "<!"):
            body, zero_width = i + 4, True
        elif head.startswith(("=", "!")):
            body, zero_width = i + 3, True
        elif head.startswith((">", ":")):
            body, atomic = i + 3, head.startswith(">")
        else:  # inline flags: "(?i)" applies to the whole pattern, "(?i:...)" to a group
            end = i + 2
            while pattern[end] not in ":)":
                end += 1
            if pattern[end] == ")":
                return None, end + 1
            body = end + 1
    group, end = _parse_alternatives(pattern, body)
    group.zero_width, group.atomic = zero_width, atomic
    return group, end + 1  # past ")"


_BOUNDS = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _parse_quantifier(pattern: str, i: int, item: _Item) -> int:
    if i >= len(pattern):
        return i
    char = pattern[i]
    if char in "*+?":
        item.min_zero = char != "+"
        item.repeat = item.unbounded = char != "?"
        i += 1
    elif char == "{":
        bounds = _BOUNDS.match(pattern, i)
        if bounds is None or not (bounds.group(1) or bounds.group(3)):
            return i  # a literal "{"
        low, comma, high = bounds.groups()
        if not comma:
            high = low
        item.min_zero = int(low or "0") == 0
        item.unbounded = not high
        item.repeat = item.unbounded or int(high) > 1
        i = bounds.end()
    else:
        return i
    if i < len(pattern) and pattern[i] == "?":
        i += 1  # lazy: backtracks as much as greedy
    elif i < len(pattern) and pattern[i] == "+":
        item.atomic, i = True, i + 1  # possessive
    return i


def _contains_repeat(item: _Item) -> bool:
    for branch in item.branches or ():
        for inner in branch:
            if inner.zero_width or inner.atomic:
                continue
            if inner.repeat or _contains_repeat(inner):
                return True
    return False


def _first_chars(branch: list[_Item]) -> frozenset[str] | None:
    """The characters the branch can start with; None when it may match nothing (then we cannot tell)."""
    for item in branch:
        if item.zero_width:
            continue
        if item.min_zero:
            return None
        if item.branches is None:
            return item.chars
        firsts = [_first_chars(inner) for inner in item.branches]
        if any(first is None for first in firsts):
            return None
        return frozenset().union(*(first for first in firsts if first is not None))
    return None


def _check_item(group: _Item) -> None:
    """Walk a group: refuse nested repeats, overlapping repeated alternatives and overlapping adjacent repeats."""
    assert group.branches is not None
    if group.repeat and not group.atomic and not group.zero_width:
        if _contains_repeat(group):
            raise _RiskyPatternError("a repeated group repeats inside, as in (a+)+")
        if len(group.branches) > 1:
            seen: set[str] = set()
            for branch in group.branches:
                first = _first_chars(branch)
                if first is None or seen & first:
                    raise _RiskyPatternError("repeated alternatives can match the same text, as in (a|ab)*")
                seen |= first
    for branch in group.branches:
        _check_branch(branch)
        for item in branch:
            if item.branches is not None:
                _check_item(item)


def _item_chars(item: _Item) -> frozenset[str]:
    # Seen from outside, a group may match many different characters: count it as matching anything.
    return _ANY if item.branches is not None else item.chars


def _check_branch(branch: list[_Item]) -> None:
    """Refuse two unbounded repeats that can take the same characters when nothing mandatory between them stops
    the first: the engine then tries every split of the text between them (cubic time or worse)."""
    for index, first in enumerate(branch):
        if not first.unbounded or first.atomic or first.zero_width:
            continue
        first_chars = _item_chars(first)
        for later in branch[index + 1 :]:
            if later.zero_width:
                continue
            later_chars = _item_chars(later)
            if later.unbounded and not later.atomic and first_chars & later_chars:
                raise _RiskyPatternError(
                    "two repeats can match the same characters one after the other, as in \\d+\\s*\\d+"
                )
            if not later.min_zero and later.branches is None and not first_chars & later_chars:
                break  # a character the first repeat cannot take: it has to stop there
