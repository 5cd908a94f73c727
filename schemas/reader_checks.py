"""The registry of the checks made while a shard is read, before any sample check runs: what the tar reader, the
sample grouper and the untrusted parsers refuse (``READER_CHECKS``).

The checks of a sample's facts are in ``schemas.member_checks.CHECKS``; these are the rules met earlier, on the way
in. Each refusal is a ``Refusal``: the sentence the report prints, carrying the name of the registered check that
made it (an unregistered name is a KeyError), so the report names the check and a test can break each rule with a
case of its own (``tests/schema/test_reader_checks.py`` fails for a registered check without one).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderCheck:
    name: str
    rule: str
    where: str  # "member": reported against the member's entry; "shard": by the shard walk (tasks.shards.validate)


READER_CHECKS: dict[str, ReaderCheck] = {}


def reader_check(name: str, rule: str, where: str = "member") -> str:
    if name in READER_CHECKS:
        raise ValueError(f"reader check {name} registered twice")
    READER_CHECKS[name] = ReaderCheck(name, rule, where)
    return name


MEMBER_TYPE = reader_check("member-type", "members are regular files: links, devices, FIFOs, directories and "
                           "sparse members are named, never read or followed")
MEMBER_SIZE = reader_check("member-size", "a member is no larger than its entry allows (refused from its header)")
EXTENDED_HEADER_SIZE = reader_check("extended-header-size", "pax and GNU long-name headers are at most 64 KiB "
                                    "(refused from their size field, never read)")
EXTENDED_HEADER_MALFORMED = reader_check("extended-header-malformed", "pax records are well formed "
                                         "('LEN KEY=VALUE\\n', LEN exact)")
PAX_SIZE = reader_check("pax-size", "a pax size record is a decimal number")
DUPLICATE_MEMBER = reader_check("duplicate-member", "an entry appears once in a sample")
MEMBER_COUNT = reader_check("member-count", "a sample has at most 64 members")
DUPLICATE_KEY = reader_check("duplicate-key", "a key appears once across the shards validated", where="shard")
JSON_DUPLICATE_KEY = reader_check("json-duplicate-key", "no JSON object of a member repeats a key (readers "
                                  "disagree on which one wins)")
MP4_STRUCTURE = reader_check("mp4-structure", "an MP4's boxes nest within their parents and its sample tables "
                             "declare no more samples than a clip may hold (checked before any demuxer reads it)")


class Refusal(str):
    """Why a member was not read or parsed, as the report prints it; ``check`` names the registered check."""

    check: str

    def __new__(cls, check: str, text: str) -> Refusal:
        if check not in READER_CHECKS:
            raise KeyError(f"unregistered reader check {check!r}")
        refusal = super().__new__(cls, text)
        refusal.check = check
        return refusal


def check_of(reason: str, default: str = "reader") -> str:
    """The registered check a refusal names (``default`` for a plain string)."""
    return getattr(reason, "check", default)
