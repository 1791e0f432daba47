"""The page checks of an archive's members, collected as a reader reads
them (the engine's workers check the pages of each chunk they decompress;
the pure-Python reader feeds its blocks to the same checker), and the
verdict on the set: the DC's consistency check after a restore of it."""

from __future__ import annotations

from typing import Any

from ..archive.layout import Consumer, MemberResult
from .folder import log_generation
from .pages import KIND_DATABASE, KIND_LOG, KIND_NONE, PageResult, kind_of, new_checker, result_of
from .verdict import FileFacts, Verdict, judge


class ArchivePages:
    """One archive's page checks, member by member."""

    def __init__(self) -> None:
        self.results: dict[str, tuple[int, PageResult]] = {}

    def checker_for(self, member: MemberResult) -> Any:
        """A checker for the member (pages= of restore_file), or None."""
        kind = kind_of(member.bft)
        return new_checker(kind, member.size) if kind != KIND_NONE else None

    def done(self, member: MemberResult, checker: Any) -> None:
        if checker is not None:
            self.results[member.name] = (kind_of(member.bft), result_of(checker))

    def consumer(self, inner: Consumer) -> Consumer:
        """`inner`, with every block also fed to the member's checker."""
        return _Feeding(self, inner)

    def verdict(self, trailer: dict[str, Any]) -> Verdict:
        """What the DC would find after restoring these files: the database, its
        logs, and the generations the restore registers (the trailer's range)."""
        database = None
        logs = []
        for name, (kind, result) in self.results.items():
            if kind == KIND_DATABASE and database is None:
                database = FileFacts(name, result)
            elif kind == KIND_LOG:
                logs.append(FileFacts(name, result, log_generation(name.rsplit("/", 1)[-1])))
        gens = trailer.get("log_generations") or {}
        return judge(database, logs, gen_low=gens.get("low"), gen_high=gens.get("high"))


class _Feeding(Consumer):
    def __init__(self, pages: ArchivePages, inner: Consumer):
        self.pages, self.inner = pages, inner
        self.checker = None
        self.offset = 0

    def open_member(self, member: MemberResult) -> None:
        self.checker = self.pages.checker_for(member)
        self.offset = 0
        self.inner.open_member(member)

    def block(self, member: MemberResult, data: bytes) -> None:
        if self.checker is not None:
            self.checker.feed(data, self.offset)
        self.offset += len(data)
        self.inner.block(member, data)

    def close_member(self, member: MemberResult) -> None:
        checker, self.checker = self.checker, None
        if checker is not None:
            checker.finish()
            self.pages.done(member, checker)
        self.inner.close_member(member)
