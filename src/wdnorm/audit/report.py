"""What a check returns and what the audit returns: plain data, printed by wdnorm.cli."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

PASS, FAIL, SKIP = "pass", "fail", "skip"


class AuditError(Exception):
    """The audit cannot start (no such results directory, unusable config)."""


@dataclass
class Check:
    """One check's outcome: ``problems`` (each naming a run or a file) make it fail;
    ``notes`` inform; ``details`` hold structured findings for ``--json``."""

    name: str
    status: str = PASS
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def finish(self, summary: str) -> "Check":
        if self.problems:
            self.status = FAIL
        self.summary = summary
        return self

    def skip(self, summary: str) -> "Check":
        self.status = SKIP
        self.summary = summary
        return self


@dataclass
class AuditReport:
    results_dir: str
    data_dir: str
    n_runs: int
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.status == FAIL]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict:
        return {"results_dir": self.results_dir, "data_dir": self.data_dir,
                "n_runs": self.n_runs, "ok": self.ok, "failed": self.failed,
                "checks": [asdict(c) for c in self.checks]}
