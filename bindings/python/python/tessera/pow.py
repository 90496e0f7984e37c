"""Proof of work: tlslp WORK puzzles, Hashcash v1 stamps, SHA-256 challenges.

Searches use every core and release the GIL. Each stops with
:class:`SearchTimeout` after ``timeout`` seconds, with :class:`SearchCancelled`
when its :class:`CancelToken` is cancelled, and with the callback's own
exception (or ``KeyboardInterrupt`` on Ctrl-C) when ``progress`` raises;
``progress(candidates_tried)`` is called every ``progress_interval`` seconds.

>>> from tessera import pow
>>> solution = pow.solve("token", 8)
>>> pow.verify("token", 8, solution.suffix)
True
"""

from tessera._tessera import (
    CancelToken,
    Challenge,
    InvalidChallenge,
    InvalidStamp,
    PowError,
    SearchCancelled,
    SearchTimeout,
    Solution,
    SpentStamps,
    Stamp,
    StampSpent,
    kernels,
    mint_stamp,
    solve,
    verify,
    verify_stamp,
)

__all__ = [
    "CancelToken",
    "Challenge",
    "InvalidChallenge",
    "InvalidStamp",
    "PowError",
    "SearchCancelled",
    "SearchTimeout",
    "Solution",
    "SpentStamps",
    "Stamp",
    "StampSpent",
    "kernels",
    "mint_stamp",
    "solve",
    "verify",
    "verify_stamp",
]
