"""Thin adapter: snakemake object -> papermill run of workflow/notebooks/{figure}.ipynb
(the notebook writes figures/{figure}.{fmt}; the executed notebook is kept)."""
from pathlib import Path

from wdnorm import notebooks
from wdnorm.logs import setup_logging

setup_logging(snakemake.log[0])
figures = [p for p in snakemake.output if not p.endswith(".ipynb")]
notebooks.execute(
    snakemake.input.notebook, snakemake.output.notebook,
    # relative paths, resolved in the workflow directory (the kernel's cwd)
    parameters=dict(tables_dir=str(Path(snakemake.input.tables[0]).parent),
                    claims_path=snakemake.input.claims,
                    output_stem=str(Path(figures[0]).with_suffix("")),
                    formats=list(snakemake.params.formats), dpi=int(snakemake.params.dpi)),
    expected_outputs=figures, failed_dir=Path(snakemake.log[0]).parent)
