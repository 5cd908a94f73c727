"""The sample format's version, and the policy that lets shards outlive the code that wrote them.

``SCHEMA_VERSION`` is MAJOR.MINOR.PATCH and is written into every ``meta.json`` and ``graph.json``.

Policy (README "Schema evolution"):

- **Writers** emit exactly the current version and validate strictly against the current models
  (``extra="forbid"``): a field the model does not declare is a bug in the writer.
- **Readers** (``schemas.sample_io.decode_sample``, hence ``validate`` and training) accept every version with the
  same MAJOR: every older minor (fields it lacks take their defaults, entries it lacks are absent) and every newer
  minor (fields and entries this reader does not know are kept, not fatal: ``Sample.unknown_fields`` and
  ``Sample.extra``).
- **A minor bump** only adds: optional fields with defaults, optional entries, new models nested in optional
  fields. It never removes or renames a field, changes a type or a unit, or changes the shape or dtype of an
  existing ``.npy``. It may add validation rules that bind samples written at that minor or later (what the newer
  writer guarantees); samples of older minors are checked by the rules of their own version and keep their
  version (nothing is restamped: a migration cannot invent what an older writer never measured). A minor may widen
  an enum (e.g. a new source kind); an older reader then reports that one field of those samples by name.
- **A major bump** is everything else, and it comes with a migration step in ``schemas.migrate`` from the
  previous major (``remind-curate migrate OLD NEW`` rewrites shards, verifying every sample first; its step 1.0 ->
  1.1 adds ``checksums.json`` to samples that pass every 1.0 check). A reader refuses another major with a message
  naming a command that exists: ``pip install --upgrade remind-curate`` for a newer one, ``remind-curate migrate``
  for an older one it has a step from (a test keeps that true), none for a version no release ever wrote.
- The shards frozen in ``tests/data/frozen/`` (one folder per released version) must keep validating and loading
  in training; their tests are what enforces this policy.

History:

- 1.0.0: the first published format.
- 1.1.0: ``checksums.json`` (SHA-256 of every other member of the sample; required from 1.1.0 on), typed
  ``meta.vlm`` / ``meta.augment`` / ``meta.truth`` (same JSON as 1.0.0), optional meta fields for dataset
  sources (``attribution_text``, ``caption_source``, ``dataset_scores``, ``dataset_labels``), the VLM's
  ``event_types`` and ``also_event_types``, graph ``hidden_max_visibility`` and temporal-gap frames.
"""
from __future__ import annotations

import re

SCHEMA_VERSION = "1.1.0"
FIRST_RELEASED = "1.0.0"  # no remind-curate ever wrote an older version

_VERSION = re.compile(r"^(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})\.(0|[1-9]\d{0,3})$")


class SchemaVersionError(ValueError):
    """A version this reader must not read as is: malformed, or another major."""


def parse_version(text: object) -> tuple[int, int, int]:
    if not isinstance(text, str) or not _VERSION.match(text):
        raise SchemaVersionError(f"schema_version {str(text)[:40]!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


CURRENT = parse_version(SCHEMA_VERSION)


def check_readable(text: object) -> tuple[int, int, int]:
    """The parsed version when this reader reads it (same major); SchemaVersionError saying what to do otherwise."""
    version = parse_version(text)
    if version[0] > CURRENT[0]:
        raise SchemaVersionError(f"schema_version {text} is a newer major version than this reader's "
                                 f"{SCHEMA_VERSION}: upgrade remind-curate to read it (`pip install --upgrade "
                                 "remind-curate`)")
    if version < parse_version(FIRST_RELEASED):
        raise SchemaVersionError(f"schema_version {text} is older than the first released format "
                                 f"{FIRST_RELEASED}: no remind-curate wrote it, and nothing can migrate it")
    if version[0] < CURRENT[0]:
        raise SchemaVersionError(f"schema_version {text} is an older major version than this reader's "
                                 f"{SCHEMA_VERSION}: run `remind-curate migrate OLD NEW` to rewrite the shards")
    return version


def at_least(version: tuple[int, int, int], text: str) -> bool:
    return version >= parse_version(text)
