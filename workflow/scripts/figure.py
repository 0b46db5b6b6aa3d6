"""Thin adapter: snakemake object -> papermill run of workflow/notebooks/{figure}.ipynb.

The notebook draws the figure from exactly the tables its registry record names (the
rule's inputs, by table name), writes figures/{figure}.{fmt} and the caption the report
shows; the executed notebook is kept beside the figures' code in results/notebooks/."""
from pathlib import Path

from wdnorm import notebooks
from wdnorm.figures import registry
from wdnorm.logs import setup_logging

setup_logging(snakemake.log[0])
record = registry.get(snakemake.wildcards.figure)
named = {snakemake.output.notebook, snakemake.output.caption}
figure_files = [p for p in snakemake.output if p not in named]
template = Path(snakemake.scriptdir).parent / "notebooks" / f"{record.name}.ipynb"
notebooks.execute(
    template, snakemake.output.notebook,
    # relative paths, resolved in the workflow directory (the notebook's cwd)
    parameters=dict(table_paths={name: snakemake.input[name] for name in record.tables},
                    claims_path=snakemake.input.claims,
                    output_stem=str(Path(figure_files[0]).with_suffix("")),
                    caption_path=snakemake.output.caption,
                    formats=list(snakemake.params.formats), dpi=int(snakemake.params.dpi)),
    expected_outputs=[*figure_files, snakemake.output.caption],
    failed_dir=Path(snakemake.log[0]).parent)
