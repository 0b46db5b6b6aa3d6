# One papermill notebook per figure (workflow/notebooks/{figure}.ipynb), executed inside
# the job's own process (wdnorm.notebooks: no kernel to start); the executed notebook is
# kept in results/notebooks/ so a reader sees the code beside the plot. What a figure
# reads is its record in the figure registry (wdnorm.figures.registry): its inputs are
# exactly those tables and results/claims.json, so a changed table redraws only the
# figures that read it, and its code hash covers only the modules it runs.

from wdnorm.figures import registry as figure_registry


localrules:
    figures,
    verdict_table,


def figure_inputs(wildcards):
    """The template, results/claims.json and the figure's own tables, named by table."""
    record = figure_registry.get(wildcards.figure)
    return {
        "notebook": os.path.join(REPO_DIR, "workflow", "notebooks", f"{record.name}.ipynb"),
        "claims": "results/claims.json",
        **{name: str(LAYOUT.table(name)) for name in record.tables},
    }


def figure_code(wildcards):
    return source_hash(figure_registry.get(wildcards.figure).code_modules)


def figure_labels(wildcards):
    return {"figure": wildcards.figure,
            "claims": ", ".join(figure_registry.get(wildcards.figure).claims)}


# png first: the report shows it and the notebook displays it
FIGURE_FORMATS = ["png", *(ext for ext in config["figures"]["formats"] if ext != "png")]


rule figure:
    input:
        unpack(figure_inputs),
    output:
        report(
            "figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels=figure_labels,
        ),
        [f"figures/{{figure}}.{ext}" for ext in FIGURE_FORMATS[1:]],
        notebook="results/notebooks/{figure}.ipynb",
        caption="results/captions/{figure}.rst",
    params:
        dpi=config["figures"]["dpi"],
        formats=FIGURE_FORMATS,
        code=figure_code,
    wildcard_constraints:
        figure="|".join(figure_registry.NAMES),
    conda:
        CONDA_ENV
    log:
        LOGS / "figures/{figure}.log",
    script:
        "../scripts/figure.py"


# The verdict table the report opens on (workflow/report/workflow.rst includes it).
rule verdict_table:
    input:
        claims="results/claims.json",
    output:
        "results/report/verdicts.rst",
    params:
        code=source_hash(figure_registry.REPORT_MODULES),
    conda:
        CONDA_ENV
    log:
        LOGS / "verdict_table.log",
    script:
        "../scripts/verdict_table.py"


rule figures:
    input:
        figure_outputs(),
        rules.verdict_table.output,
