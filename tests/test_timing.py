"""The time budget of a run, read from snakemake's log and the training jobs' logs."""

from pathlib import Path

from wdnorm import timing

SNAKEMAKE_LOG = """SNAKEMAKE
=========
  Date: 2026-12-02 10:00:00
Building DAG of jobs...
[Wed Dec  2 10:00:05 2026]
localrule prepare_data:
    log: results/logs/prepare_data/d.log
    jobid: 2
[Wed Dec  2 10:00:10 2026]
Finished jobid: 2 (Rule: prepare_data)
[Wed Dec  2 10:00:10 2026]
rule train_slab:
    log: results/logs/train/d/o/ln.log
    jobid: 1
[Wed Dec  2 10:01:50 2026]
Finished jobid: 1 (Rule: train_slab)
[Wed Dec  2 10:02:00 2026]
rule claims:
    jobid: 0
[Wed Dec  2 10:02:30 2026]
Finished jobid: 0 (Rule: claims)
"""
TRAIN_LOG = """2026-12-02 10:00:12,000 slab d/o/ln: 10 members on cpu
2026-12-02 10:00:30,000 o/ln: epoch 1/2 step 5/10 | compiled in 15.0 s
2026-12-02 10:01:40,000 checkpoint at step 5 -> x.pt
2026-12-02 10:01:45,000 trained in 92.0 s (90.0 s inside the training loop, of which evaluations 2.0 s; step compiled)
"""


def test_budget_from_the_logs(tmp_path: Path):
    (tmp_path / "sm.log").write_text(SNAKEMAKE_LOG)
    log = tmp_path / "results/logs/train/d/o/ln.log"
    log.parent.mkdir(parents=True)
    log.write_text(TRAIN_LOG)
    b = timing.budget(tmp_path, tmp_path / "sm.log")
    assert b["wall_s"] == 150 and b["training_phase_s"] == 100
    assert b["gaps_s"] == 150 - 5 - 100 - 30  # before the first job, and 10:01:50-10:02:00
    assert b["core_s_per_rule"] == {"claims": 30, "prepare_data": 5, "train_slab": 100}
    slab = b["slabs"][0]
    assert slab["slab"] == "d/o/ln" and slab["compile_s"] == 15.0 and slab["evaluation_s"] == 2.0 and slab["checkpoints"] == 1
    assert slab["steps_s"] == 73.0 and slab["setup_and_writing_s"] == 10.0
    assert "wall 150 s" in timing.render(b)


def test_a_run_without_training_says_so(tmp_path: Path):
    log = tmp_path / "sm.log"
    log.write_text("\n".join(line for line in SNAKEMAKE_LOG.splitlines()
                             if "train_slab" not in line))
    text = timing.render(timing.budget(tmp_path, log))
    assert "no training job" in text and "None" not in text
