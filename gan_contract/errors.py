"""The one exception type of the contract.

Every function of :mod:`gan_contract` that refuses its input raises :class:`ContractError`, a
plain ``ValueError`` whose message tells the user what to fix. The service answers it with a 4xx
JSON error, the command-line tools with one line on stderr and exit code 2::

    try:
        seeds = parse_seeds(text, max_count=64)
    except ContractError as error:
        print(f"gan-sample: {error}")
"""

from __future__ import annotations


class ContractError(ValueError):
    """Input that breaks a convention of the contract; the message says what to fix."""
