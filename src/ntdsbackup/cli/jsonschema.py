"""The JSON lines every command prints with --json, as data (docs/JSON.md is
written from it, and tests/test_json_schema.py checks every line of every
command against it, and that every event here is documented there).

Every line is one JSON object with "event" (one of EVENTS) and "schema"
(SCHEMA_VERSION).  Each event lists its fields: name -> (types, required,
what it holds).  A field not listed is an error, so a new field cannot
appear without being documented; within one schema version fields are only
added, never removed or retyped.  Nested objects are described in words
(their shape is the library's, e.g. a manifest is docs/FORMAT.md's).

Kept as a plain dict rather than a JSON Schema document: the checker below is
twenty lines, needs no extra package, and the same data renders the table in
docs/JSON.md.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# JSON type names -> the Python types json.loads gives for them.
_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
          "object": (dict,), "array": (list,), "null": (type(None),)}

REQ, OPT = True, False

# Fields most commands' results share.
_SECONDS = ("number", REQ, "wall-clock seconds the command took")
_RATE = ("number", REQ, "raw (uncompressed) MB/s, 10^6 bytes per second")

EVENTS: dict[str, dict] = {
    # -- during a job (backup, verify, extract, restore) --------------------------
    "phase": {
        "_doc": "restore: a pass begins (verify with --dry-run, else stage, then swap); "
                "the progress that follows counts that pass only",
        "phase": ("string", REQ, '"verify", "stage" or "swap"'),
    },
    "file": {
        "_doc": "a file of the job begins (its size from DsBackupOpenFileW or the archive)",
        "name": ("string", REQ, "the member's name in the archive"),
        "size": ("integer", REQ, "its size in bytes"),
        "phase": ("string", OPT, "restore: the pass it belongs to"),
    },
    "progress": {
        "_doc": "how far the job is (at most one a second, and one as each file ends)",
        "name": ("string", REQ, "the file being read or written"),
        "done": ("integer", REQ, "bytes of that file done"),
        "size": ("integer", REQ, "that file's size"),
        "total_done": ("integer", REQ, "bytes of the whole job done"),
        "total": ("integer", REQ, "the whole job's bytes known so far (a backup's grows "
                                  "when the logs are listed)"),
        "mb_per_s": ("number", REQ, "the job's rate so far"),
        "eta_seconds": (("number", "null"), REQ, "seconds left at that rate, null before "
                                                  "any byte"),
        "phase": ("string", OPT, "restore: the pass"),
    },
    "settled": {
        "_doc": "restore: how a restore that failed or was interrupted left the DC "
                "(an error event follows)",
        "outcome": ("string", REQ, '"unchanged", "completed" or "rolled_back"'),
        "detail": ("string", REQ, "the same in words"),
    },
    "recovered": {
        "_doc": "restore: a restore interrupted earlier on this DC was settled first",
        "server": ("string", REQ, "the DC"),
        "outcome": ("string", REQ, '"nothing", "completed" or "unchanged"'),
        "detail": ("string", REQ, "what recovery found and did"),
        "journal": (("string", "null"), REQ, "the restore record it read"),
        "journal_state": (("string", "null"), REQ, "that record's state when found"),
    },
    # -- the result of each command ------------------------------------------------
    "summary": {
        "_doc": "backup: the archive is complete (on standard error with -o -)",
        "server": ("string", REQ, "the DC"),
        "archive": ("string", REQ, 'the archive\'s path, or "<stdout>"'),
        "files": ("array", REQ, "each file's trailer entry (docs/FORMAT.md)"),
        "bytes_read": ("integer", REQ, "raw bytes read through DsBackupRead"),
        "bytes_written": ("integer", REQ, "bytes of the archive"),
        "seconds": _SECONDS,
        "mb_per_s": _RATE,
        "ratio": ("number", REQ, "bytes_read / bytes_written"),
        "log_generations": ("object", REQ, '{"low", "high"}: the logs backed up, or {}'),
        "truncated": ("boolean", REQ, "whether DsBackupTruncateLogs ran"),
        "truncate_error": (("string", "null"), REQ, "why the logs were not truncated"),
        "stats": ("object", REQ, "the engine's counters and where the time went"),
        "encrypted": ("boolean", REQ, "whether the archive is an age file"),
        "signature": (("string", "null"), REQ, "the signature file written beside it "
                                               '(NAME.minisig), "embedded" for a signed '
                                               "stream, or null"),
        "ese": (("object", "null"), REQ, "the ESE checks made while streaming, as the "
                                         'trailer records them (docs/FORMAT.md "ese"): '
                                         '"verdict", page and log counts, problems'),
        "lock": (("object", "null"), REQ, 'with --retain: {"mode", "until"} as the server '
                                          "confirmed it (mode COMPLIANCE or GOVERNANCE, until "
                                          "an ISO 8601 UTC time); else null"),
    },
    "verified": {
        "_doc": "verify: every chunk hash, file hash and the trailer matched",
        "ok": ("boolean", REQ, "true; false only with --deep when the archive is intact "
                               "but not bootable (an error event follows, exit 8)"),
        "files": ("integer", REQ, "files in the archive"),
        "raw_bytes": ("integer", REQ, "their bytes"),
        "archive_bytes": ("integer", REQ, "the archive's bytes"),
        "chunk_frames": ("integer", REQ, "chunks verified"),
        "seconds": _SECONDS,
        "mb_per_s": _RATE,
        "server": (("string", "null"), REQ, "the DC the archive is a backup of"),
        "encrypted": ("boolean", REQ, "read through its age envelope (every chunk "
                                      "authenticated)"),
        "signed": (("object", "null"), REQ, 'with --trusted-key: {"key_id", "server", '
                                            '"created_unix", "file"} the signature vouches '
                                            "for; else null"),
        "ese": (("object", "null"), REQ, "with --deep: the verdict a DC's consistency check "
                                         "would give after a restore (as the trailer's "
                                         '"ese"); else null'),
        "lock": (("object", "null"), OPT, 'an s3:// archive: {"mode", "until"} of its '
                                          "object-lock retention, null when it has none"),
    },
    "extracted": {
        "_doc": "extract: every file verified and under its final name",
        "directory": ("string", REQ, "the folder written"),
        "files": ("array", REQ, "the names written (strings)"),
        "raw_bytes": ("integer", REQ, "their bytes"),
    },
    "listed": {
        "_doc": "ls: the archive's documents",
        "manifest": ("object", REQ, "the manifest (docs/FORMAT.md)"),
        "trailer": ("object", REQ, "the trailer (docs/FORMAT.md)"),
        "archive_bytes": ("integer", REQ, "the archive's bytes"),
        "verified": ("boolean", REQ, "false: read through the seek index; true: a stream, "
                                     "read and verified in full"),
        "index": ("object", OPT, "with --index, of a seekable archive: the seek index, "
                                 "every chunk's offset included"),
        "signed": ("object", OPT, "with --trusted-key: what the signature vouches for (as "
                                  "in verified)"),
        "lock": (("object", "null"), OPT, "an s3:// archive: its retention (as in verified)"),
    },
    "fleet": {
        "_doc": "list: every archive of a folder or s3:// prefix, and per DC the newest "
                "restorable backup",
        "location": ("string", REQ, "the folder or s3://BUCKET/PREFIX/ listed"),
        "archives": ("array", REQ, 'per archive: "name", "url", "server", "created", "size", '
                                   '"encrypted", "signed", "verified" (the cached verify '
                                   'result: true, false or null), "lock_mode", '
                                   '"locked_until", "days_left" (of the tombstone lifetime '
                                   'its expiry token carries; null when unknown), '
                                   '"restorable", "problem" (why it could not be read, '
                                   'or with -i/--passphrase "could not be decrypted: ...", '
                                   "or null)"),
        "servers": ("array", REQ, 'per DC: "server", "archives", "newest_restorable" (a '
                                  'name or null), "created", "days_left", "flagged" (true '
                                  "when no backup of it can be restored)"),
        "seconds": _SECONDS,
    },
    "pruned": {
        "_doc": "prune: what was removed (with --dry-run: would be) and what is kept",
        "location": ("string", REQ, "the folder or s3://BUCKET/PREFIX/"),
        "dry_run": ("boolean", REQ, "whether nothing was deleted"),
        "kept": ("array", REQ, '"name", "server", "created", "reason": the rule ("daily '
                               '#2"), "newest restorable", "locked" or "unreadable"'),
        "removed": ("array", REQ, 'the same fields, "reason" "no rule keeps it", and '
                                  '"removed": the names deleted (the archive, its .minisig '
                                  "and .verified.json)"),
    },
    "key": {
        "_doc": "key generate: a new key written",
        "kind": ("string", REQ, '"age" (an identity) or "minisign" (a signing key pair)'),
        "secret_file": ("string", REQ, "the secret key file written (mode 0600)"),
        "public_file": (("string", "null"), REQ, "minisign: the public key file, FILE.pub"),
        "public": ("string", REQ, "the recipient (age1...) or the public key line (RW...)"),
        "key_id": (("string", "null"), REQ, "minisign: the key ID as minisign prints it"),
    },
    "public": {
        "_doc": "key public: what to hand out for a secret key file",
        "kind": ("string", REQ, '"age" or "minisign"'),
        "public": ("array", REQ, "the recipients (one per identity in the file) or the "
                                 "public key line"),
    },
    "result": {
        "_doc": "restore: the restore (or its --dry-run) succeeded; restore --recover: "
                "what recovery did (then the fields of a recovered event)",
        "dry_run": ("boolean", OPT, "whether nothing was changed"),
        "seconds": ("number", OPT, "wall-clock seconds"),
        "verify_seconds": ("number", OPT, "--dry-run: the verify pass"),
        "stage_seconds": ("number", OPT, "the stage pass"),
        "swap_seconds": ("number", OPT, "the swap"),
        "mb_per_s": ("number", OPT, "raw MB/s"),
        "recovered": (("object", "null"), OPT, "a recovered event's fields, if an earlier "
                                               "restore was settled first"),
        "server": ("string", REQ, "the DC"),
        "archive": ("string", OPT, "the archive"),
        "backup_created": (("string", "null"), OPT, "when the backup was taken"),
        "backup_server": (("string", "null"), OPT, "the DC it is a backup of"),
        "checks": ("array", OPT, '{"check", "ok", "detail"} per pre-flight check'),
        "files": ("array", OPT, "each file's plan: name, bft, size, source, target, "
                                "local_path, replaces_existing"),
        "log_generations": ("object", OPT, '{"low", "high"}'),
        "token_days_left": (("number", "null"), OPT, "days the expiry token has left"),
        "total_bytes": ("integer", OPT, "bytes restored"),
        "moved_aside": ("array", OPT, "files of the DC moved out of the way"),
        "outcome": ("string", OPT, "--recover: as in recovered"),
        "detail": ("string", OPT, "--recover: as in recovered"),
        "journal": (("string", "null"), OPT, "--recover: as in recovered"),
        "journal_state": (("string", "null"), OPT, "--recover: as in recovered"),
    },
    # -- dc --------------------------------------------------------------------------
    "created": {
        "_doc": "dc create",
        "seconds": _SECONDS,
        "status": ("object", REQ, "the new DC's status (the fields of a status event)"),
    },
    "started": {
        "_doc": "dc start: the DC is online",
        "mode": ("string", REQ, '"online"'),
        "checked": ("boolean", REQ, "whether the consistency check ran (after a restore)"),
        "report": (("object", "null"), REQ, "that check's counts"),
    },
    "stopped": {
        "_doc": "dc stop: the DC is in Directory Services Restore Mode",
        "mode": ("string", REQ, '"dsrm"'),
    },
    "status": {
        "_doc": "dc status",
        "name": ("string", REQ, "the DC"),
        "path": ("string", REQ, "its folder"),
        "mode": ("string", REQ, '"online" or "dsrm"'),
        "online": ("boolean", REQ, "whether the directory service runs"),
        "domain": ("string", REQ, "its domain"),
        "tombstone_days": ("integer", REQ, "tombstone lifetime"),
        "clock_offset": ("integer", REQ, "seconds its clock is shifted"),
        "accounts": ("array", REQ, "DOMAIN\\user of each account"),
        "default_privileges": ("array", REQ, "privileges of callers with no identity"),
        "faults": ("object", REQ, "injected faults"),
        "restore": (("object", "null"), REQ, "the registered restore: state, hr, gen_low, "
                                             "gen_high"),
        "database": (("object", "null"), REQ, "ntds.dit's header"),
    },
    "activity": {
        "_doc": "dc activity",
        "pages_rewritten": ("integer", REQ, "pages changed"),
        "pages_total": ("integer", REQ, "pages in the database"),
        "dbtime": ("integer", REQ, "the database's new time"),
        "generations_added": ("integer", REQ, "log generations written"),
        "current_generation": ("integer", REQ, "the current log's generation"),
        "checkpoint_generation": ("integer", REQ, "the checkpoint's generation"),
    },
    "account": {
        "_doc": "dc account",
        "server": ("string", REQ, "the DC"),
        "user": (("string", "null"), REQ, "DOMAIN\\user set, null with --default-privileges"),
        "privileges": ("array", REQ, "the privileges given"),
    },
    "fault": {
        "_doc": "dc fault",
        "server": ("string", REQ, "the DC"),
        "faults": ("object", REQ, "every injected fault now set"),
        "clock_offset": ("integer", REQ, "seconds the DC's clock is shifted"),
        "trace": ("boolean", REQ, "whether calls are journalled to calls.log"),
    },
    # -- bench -----------------------------------------------------------------------
    "bench": {
        "_doc": "bench: the report",
        "kind": ("string", REQ, '"compare", "sweep", "scale", "objects" or "latency_model"'),
        "report": ("object", REQ, "the measurements (benchmarks/README.md)"),
    },
    # -- any command -----------------------------------------------------------------
    "error": {
        "_doc": "the command failed (the last line; the exit code says how)",
        "error": ("string", REQ, "the exception's class, e.g. ArchiveError"),
        "message": ("string", REQ, "the error, as also printed on standard error"),
        "exit_code": ("integer", REQ, "the process's exit code"),
    },
}


def fields(event: str) -> dict[str, tuple]:
    """The fields of `event`: name -> (types, required, description)."""
    return {k: v for k, v in EVENTS[event].items() if not k.startswith("_")}


def problems(obj) -> list[str]:
    """What is wrong with one decoded JSON line; [] when it follows the schema."""
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    event = obj.get("event")
    if event not in EVENTS:
        return [f"unknown event {event!r}"]
    found = []
    if obj.get("schema") != SCHEMA_VERSION:
        found.append(f"{event}: schema {obj.get('schema')!r}, not {SCHEMA_VERSION}")
    spec = fields(event)
    for name, value in obj.items():
        if name in ("event", "schema"):
            continue
        if name not in spec:
            found.append(f"{event}: undocumented field {name!r}")
            continue
        types = spec[name][0]
        types = (types,) if isinstance(types, str) else types
        allowed = tuple(t for name_ in types for t in _TYPES[name_])
        # bool is an int to Python, never to JSON.
        if not isinstance(value, allowed) or (isinstance(value, bool) and "boolean" not in types):
            found.append(f"{event}: {name} is {value!r}, not {'|'.join(types)}")
    found += [f"{event}: no {name!r}" for name, (_t, required, _d) in spec.items()
              if required and name not in obj]
    return found
