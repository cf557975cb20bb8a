"""Which CSV lines leave a quoted value open (an unterminated quote), as Arrow's CSV parser reads them.

A line with an odd number of ``"`` does. So does an even one where a quote
inside an unquoted value (text, as in ``x"y``) leaves a later opening quote
unclosed (``x"y,"z``). :func:`unterminated` finds such lines in a block of
lines at once (vectorised, for the common case of well-paired quotes);
:func:`opens_quote` reads one line quote by quote, as the parser does, for the
few lines where the pairing is in doubt. Quoted values with commas and doubled
``""`` quotes are read as usual; a quoted value cannot hold a line break.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def unterminated(
    a: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Where a line of ``a`` (from ``starts`` to ``ends``) leaves a quoted value open.

    A line with an odd number of quotes does. So does an even one where a stray quote inside an
    unquoted value (``x"y``, read as text) upsets the pairing, so that a later quote opening a value
    is never closed (``x"y,"z``): such lines are found as those whose quotes are not, taken in pairs,
    one opening a value (after a comma, the line start or a quote) and one closing it (before a comma,
    the line end or a quote); they are then read as the CSV parser reads them (:func:`opens_quote`).
    """
    q = np.flatnonzero(a == 0x22)
    before = np.searchsorted(q, ends)  # quotes before each line end
    odd = (np.diff(before, prepend=0) & 1).astype(bool)
    # The quotes taken in pairs within each line: the first of a pair must open a value, the second
    # close it. (Without odd lines the pairs of the block are those of its lines.)
    if odd.any():
        first_quote = np.concatenate(([0], before[:-1]))  # index in q of each line's first quote
        second = ((np.arange(q.size) - first_quote[np.searchsorted(ends, q)]) & 1).astype(bool)
        openers, closers = q[~second], q[second]
    else:
        openers, closers = q[0::2], q[1::2]
    left = a[np.maximum(openers - 1, 0)]
    right = a[np.minimum(closers + 1, a.size - 1)]
    stray_open = ~((openers == 0) | (left == 0x2C) | (left == 0x0A) | (left == 0x22))
    stray_close = ~((closers == a.size - 1) | (right == 0x2C) | (right == 0x0A) | (right == 0x0D) | (right == 0x22))
    if stray_open.any() or stray_close.any():
        stray = np.concatenate((openers[stray_open], closers[stray_close]))
        for i in sorted(set(np.searchsorted(ends, stray).tolist())):
            if not odd[i]:
                odd[i] = opens_quote(a[starts[i] : ends[i]].tobytes())
    return odd


def opens_quote(line: bytes) -> bool:
    """Whether Arrow's CSV parser ends ``line`` inside a quoted value: a quote opens a value only at its
    start, ``""`` in a quoted value is a quote, and after the closing quote (or in an unquoted value)
    quotes are text."""
    quoted = False
    field_start = True
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quoted:
            if c == 0x22:
                if i + 1 < n and line[i + 1] == 0x22:
                    i += 1
                else:
                    quoted = False
        elif c == 0x2C:
            field_start = True
            i += 1
            continue
        elif c == 0x22 and field_start:
            quoted = True
        field_start = False
        i += 1
    return quoted


__all__ = ["opens_quote", "unterminated"]
