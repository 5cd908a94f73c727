"""Every check of the shard reader and the untrusted parsers, one broken sample each: `validate` must name the key,
the problem and the check (``schemas.reader_checks.READER_CHECKS``), and nothing else.

Each case is a shard of its own: a valid control sample (which must pass) and the case's sample, broken in exactly
one way below the sample checks: how its tar members are written (types, sizes, pax records, duplicates, count),
a JSON object repeating a key, an MP4 whose sample tables declare more samples than a clip holds. A registered
reader check without a case fails ``test_every_registered_reader_check_has_a_case``; removing a check fails its
case.
"""
from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from remind_curate.cli import main
from schemas.reader_checks import READER_CHECKS
from schemas.sample import ENTRIES
from schemas.sample_io import with_checksums
from tasks.shards.validate import iter_samples, validate_path
from tests.schema.conftest import members_of
from tests.schema.mp4_bombs import index_bomb

pytestmark = pytest.mark.timeout(300)
Members = dict[str, bytes]
Entry = tuple[str, bytes, bytes, str, bytes | None]  # (ext, data, tar type, link name, pax header data)


def _record(key: str, value: str) -> bytes:
    """One pax record, 'LEN KEY=VALUE\\n' (LEN counts its own digits)."""
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length = len(body) + len(str(length))
    return str(length).encode() + body


@dataclass(frozen=True)
class Case:
    check: str  # the registered reader check this sample breaks, and no other
    entries: Callable[[Members], list[Entry]]  # the sample's tar members, from the signed good members
    expected: str
    reported_as: str = ""  # the check name the report carries, when not ``check`` (see duplicate-key)


def _plain(members: Members) -> list[Entry]:
    return [(ext, data, tarfile.REGTYPE, "", None) for ext, data in members.items()]


def _replace_txt(members: Members, *entries: Entry) -> list[Entry]:
    return [entry for entry in _plain(members) if entry[0] != "txt"] + list(entries)


def _signed(members: Members) -> Members:
    return with_checksums({k: v for k, v in members.items() if k != "checksums.json"})


def _duplicate_json_key(members: Members) -> list[Entry]:
    text = json.dumps(json.loads(members["meta.json"]))
    return _plain(_signed({**members, "meta.json": (text[:-1] + ', "window": 0}').encode()}))


def _many(members: Members) -> list[Entry]:
    extra = {f"future{i:02d}.json": b"{}" for i in range(64 - len(members))}
    signed = _signed({**members, **extra, "overflow.json": b"{}"})  # listed: refused, so not reported missing
    return [e for e in _plain(signed) if e[0] != "overflow.json"] + [("overflow.json", b"{}", tarfile.REGTYPE, "",
                                                                       None)]


TXT = b"a square moving right"
CASES: dict[str, Case] = {case.check: case for case in (
    Case("member-type", lambda m: _replace_txt(m, ("txt", b"", tarfile.SYMTYPE, "elsewhere.txt", None)),
         "txt: symlink to 'elsewhere.txt' (not followed)"),
    Case("member-size", lambda m: _replace_txt(m, ("txt", b"a" * (ENTRIES["txt"].max_bytes + 1), tarfile.REGTYPE,
                                                   "", None)),
         f"txt: {ENTRIES['txt'].max_bytes + 1} bytes, more than the {ENTRIES['txt'].max_bytes} its entry allows "
         "(not read)"),
    Case("extended-header-size", lambda m: _replace_txt(m, ("txt", m["txt"], tarfile.REGTYPE, "",
                                                            _record("comment", "c" * (64 << 10)))),
         f"txt: extended header (x) of {len(_record('comment', 'c' * (64 << 10)))} bytes, more than the 65536 "
         "allowed: it and the member it describes were not read"),
    Case("extended-header-malformed", lambda m: _replace_txt(m, ("txt", m["txt"], tarfile.REGTYPE, "",
                                                                 b"99 path=x.txt\n")),
         "txt: malformed extended header: it and the member it describes were not read"),
    Case("pax-size", lambda m: _replace_txt(m, ("txt", m["txt"], tarfile.REGTYPE, "", _record("size", "0x15"))),
         "txt: pax size is not a number (not read)"),
    Case("duplicate-member", lambda m: _plain(m) + [("txt", TXT, tarfile.REGTYPE, "", None)],
         "txt: duplicate member in this sample (not read)"),
    Case("member-count", _many, "overflow.json: more than 64 members in one sample (not read)"),
    Case("duplicate-key", _plain, "duplicate key (also in duplicate-key.tar)"),  # tasks.shards.validate
    Case("json-duplicate-key", _duplicate_json_key,
         "meta.json: duplicate key 'window' in a JSON object (not parsed)"),
    Case("mp4-structure", lambda m: _plain(_signed({**m, "mp4": index_bomb(m["mp4"], 40_000)})),
         "mp4: sample table 'stts' declares 40000 samples, more than the 648 a clip may hold (not demuxed)"),
)}


def _write(path: Path, samples: list[tuple[str, list[Entry]]]) -> Path:
    with open(path, "wb") as handle:
        for key, entries in samples:
            for ext, data, kind, link, pax in entries:
                name = f"{key}.{ext}"
                if pax is not None:
                    info = tarfile.TarInfo(f"PaxHeaders/{name}"[:99])
                    info.size, info.type = len(pax), tarfile.XHDTYPE
                    handle.write(info.tobuf(format=tarfile.USTAR_FORMAT) + pax + b"\0" * (-len(pax) % 512))
                info = tarfile.TarInfo(name)
                info.size, info.type, info.linkname = len(data), kind, link
                handle.write(info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % 512))
        handle.write(b"\0" * 10240)
    return path


def _keyed(members: Members, key: str) -> Members:
    meta = json.loads(members["meta.json"])
    meta["key"] = key
    return _signed({**members, "meta.json": json.dumps(meta).encode()})


@pytest.fixture(scope="module")
def reports(small_shard: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """Per case: its shard (control, case sample; the duplicate-key case repeats its sample after the control),
    validated with videos decoded, and {key: [(check, problem)]}."""
    raw = next(iter_samples(small_shard))
    good = members_of(raw)
    folder = tmp_path_factory.mktemp("reader-checks")
    out = {}
    for name, case in CASES.items():
        entries = case.entries(_keyed(good, name))
        samples = [(name, entries), ("control", _plain(_keyed(good, "control")))]
        if name == "duplicate-key":
            samples.append((name, entries))
        shard = _write(folder / f"{name}.tar", samples)
        by_key: dict[str, list[tuple[str, str]]] = {}
        for problem in validate_path(shard).problems:
            by_key.setdefault(problem.key, []).append((problem.check, problem.problem))
        out[name] = (shard, by_key)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_each_reader_check_names_its_broken_sample(reports, name: str) -> None:
    shard, by_key = reports[name]
    case, found = CASES[name], by_key.get(name, [])
    assert "control" not in by_key, by_key["control"]
    assert any(problem == case.expected for _, problem in found), f"{name}: expected '{case.expected}', got {found}"
    assert {check for check, _ in found} == {case.reported_as or case.check}, f"{name}: {found}"


def test_every_registered_reader_check_has_a_case() -> None:
    """A reader check added to the registry without a sample that breaks it fails here."""
    assert set(READER_CHECKS) == set(CASES), set(READER_CHECKS) ^ set(CASES)


def test_cli_prints_shard_key_and_problem(reports, capsys: pytest.CaptureFixture) -> None:
    shard, _ = reports["pax-size"]
    assert main(["validate", str(shard)]) == 1
    assert "pax-size.tar: pax-size: txt: pax size is not a number (not read)" in capsys.readouterr().err.splitlines()
