"""The fleet view of a backup location (a folder or an s3:// prefix): every
archive with its DC, age, lock and what is left of its tombstone lifetime
(catalog.py), the cached verify results (verified.py), and retention by
bucket rules that never deletes the newest restorable backup of a DC
(rules.py, prune.py).  store.py hides whether the location is local."""
