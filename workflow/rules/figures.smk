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


def figure_tables(wildcards):
    """{table: path} of every table the figure's registry record reads."""
    return {name: str(LAYOUT.table(name)) for name in figure_registry.get(wildcards.figure).tables}


def written_by_a_rule(path):
    return any(rule.is_producer(path) for rule in workflow.rules)


def figure_inputs(wildcards):
    """The template, results/claims.json and the figure's own tables, named by table --
    those some rule of this workflow writes: a table none writes (the protocols figure's
    effects.csv before the claims step writes it) is read as empty, and the figure says
    "no data" instead of stopping the whole workflow."""
    tables = figure_tables(wildcards)
    return {
        "notebook": os.path.join(REPO_DIR, "workflow", "notebooks", f"{wildcards.figure}.ipynb"),
        "claims": "results/claims.json",
        **{name: path for name, path in tables.items() if written_by_a_rule(path)},
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
        tables=figure_tables,
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


# The report's own pages: its front page (workflow/report/workflow.rst includes it), the
# verdict table and the configuration, each a report item of its own category. The
# configuration page is written from the config in force when this rule runs (it is not
# a parameter: a figure option must redraw the figures only).
rule verdict_table:
    input:
        claims="results/claims.json",
    output:
        front="results/report/front.rst",
        verdicts=report("results/report/verdicts.html", category="Verdicts",
                        labels={"page": "verdict table"}),
        configuration=report("results/report/configuration.html", category="Configuration",
                             labels={"page": "configuration (YAML)"}),
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
