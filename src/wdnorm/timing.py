"""Where a pipeline run's time went: each job's interval from snakemake's own log of the
run (``.snakemake/log/*.snakemake.log``: the time a job started and finished, to the
second), and inside each training job, from its log (``results/logs/train/``), its
compilation, training steps, evaluations and the set-up and writing around them. The
run's wall clock is split into the training phase (first training job's start to the
last one's end), the other jobs' core-seconds, and the gaps where no job ran.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
COMPILED = re.compile(r"compiled in ([\d.]+) s")
TRAINED = re.compile(r"trained in ([\d.]+) s \(([\d.]+) s inside the training loop")
EVALUATED = re.compile(r"of which evaluations ([\d.]+) s")
CHECKPOINT = re.compile(r"checkpoint at step \d+")


@dataclass
class Job:
    rule: str
    log: str           # its log file, relative to the run directory
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _stamp(line: str) -> dt.datetime | None:
    m = STAMP.match(line)
    return dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") if m else None


SNAKEMAKE_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE = re.compile(r"^(?:local)?rule (\w+):$")
HEADER_DATE = re.compile(r"^Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


def read_jobs(snakemake_log: Path) -> tuple[list[Job], tuple[dt.datetime, dt.datetime] | None]:
    """The jobs of one snakemake run and the run's first and last time stamp."""
    now, rule, log, started, jobs = None, None, None, {}, {}
    stamps = []
    for line in Path(snakemake_log).read_text(errors="replace").splitlines():
        text = line.strip()
        if m := HEADER_DATE.match(text):  # the run's start, before the DAG is built
            stamps.append(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
        elif m := SNAKEMAKE_STAMP.match(text):
            now = dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            stamps.append(now)
        elif m := RULE.match(text):
            rule, log = m.group(1), ""
        elif text.startswith("log:") and rule:
            log = text.split(":", 1)[1].strip().split(",")[0]
        elif text.startswith("jobid:") and rule and now:
            started[int(text.split(":")[1])] = (rule, log, now)
        elif (m := FINISHED.match(text)) and now and int(m.group(1)) in started:
            rule_, log_, start = started[int(m.group(1))]
            jobs[int(m.group(1))] = Job(rule_, log_, start, now)
    return list(jobs.values()), ((min(stamps), max(stamps)) if stamps else None)


def slab_budget(job: Job, root: Path) -> dict:
    """A training job's seconds: compiling, training steps, evaluating, writing."""
    path = Path(root) / job.log
    text = path.read_text(errors="replace") if job.log and path.is_file() else ""
    compiled = COMPILED.search(text)
    trained = TRAINED.search(text)
    compile_s = float(compiled.group(1)) if compiled else 0.0
    evaluated = EVALUATED.search(text)
    evaluation_s = float(evaluated.group(1)) if evaluated else 0.0
    loop_s = float(trained.group(2)) if trained else 0.0
    total_s = float(trained.group(1)) if trained else job.seconds
    return {"slab": Path(job.log).with_suffix("").as_posix().split("train/", 1)[-1],
            "job_s": round(job.seconds, 1), "compile_s": round(compile_s, 1),
            "steps_s": round(max(loop_s - compile_s - evaluation_s, 0.0), 1),
            "evaluation_s": round(evaluation_s, 1),
            "checkpoints": len(CHECKPOINT.findall(text)),
            "setup_and_writing_s": round(max(job.seconds - loop_s, 0.0), 1),
            "trained_s": round(total_s, 1)}


def covered(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    """Seconds covered by the union of the intervals."""
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += (b - a).total_seconds()
            end = b
        elif b > end:
            total += (b - end).total_seconds()
            end = b
    return total


def budget(root: Path, snakemake_log: Path) -> dict:
    """The time budget of the run that ``snakemake_log`` records, in directory ``root``."""
    jobs, wall = read_jobs(snakemake_log)
    if not jobs or wall is None:
        return {}
    train = [j for j in jobs if j.rule == "train_slab"]
    phase = (max(j.end for j in train) - min(j.start for j in train)).total_seconds() \
        if train else 0.0
    per_rule: dict[str, float] = {}
    for j in jobs:
        per_rule[j.rule] = per_rule.get(j.rule, 0.0) + j.seconds
    wall_s = (wall[1] - wall[0]).total_seconds()
    busy = covered([(j.start, j.end) for j in jobs])
    return {"wall_s": round(wall_s, 1), "training_phase_s": round(phase, 1),
            "wall_over_training": round(wall_s / phase, 2) if phase else None,
            "gaps_s": round(max(wall_s - busy, 0.0), 1),
            "core_s_per_rule": {k: round(v, 1) for k, v in sorted(per_rule.items())},
            "slabs": [slab_budget(j, root) for j in train]}


def latest_log(root: Path) -> Path | None:
    """snakemake's log of the latest run in ``root``."""
    logs = sorted(Path(root, ".snakemake", "log").glob("*.snakemake.log"))
    return logs[-1] if logs else None


def render(b: dict) -> str:
    """The budget as a few lines of text (the end of a run prints it)."""
    if not b:
        return "no job logs"
    slabs = b["slabs"]
    total = {k: sum(s[k] for s in slabs) for k in ("compile_s", "steps_s", "evaluation_s",
                                                   "setup_and_writing_s")}
    if not slabs:  # nothing was trained (figures or claims redone)
        head = f"wall {b['wall_s']:.0f} s; no training job; no job running {b['gaps_s']:.0f} s"
        training = []
    else:
        head = (f"wall {b['wall_s']:.0f} s; training phase {b['training_phase_s']:.0f} s "
                f"(wall / training {b['wall_over_training']}); no job running "
                f"{b['gaps_s']:.0f} s")
        training = [f"training, {len(slabs)} slabs, core-s: compile {total['compile_s']:.0f}, "
                    f"steps {total['steps_s']:.0f}, evaluation {total['evaluation_s']:.0f}, "
                    f"set-up and writing {total['setup_and_writing_s']:.0f}; checkpoints "
                    f"{sum(s['checkpoints'] for s in slabs)}"]
    lines = [head, *training,
             "other jobs, core-s: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                                b["core_s_per_rule"].items()
                                                if k != "train_slab")]
    return "\n".join(lines)
