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


rule figure:
    input:
        unpack(figure_inputs),
    output:
        report(
            LAYOUT.figure("{figure}", "png"),
            caption="../report/figure.rst",
            category="Figures",
            labels=figure_labels,
        ),
        [LAYOUT.figure("{figure}", ext) for ext in FIGURE_FORMATS[1:]],
        notebook=LAYOUT.notebook("{figure}"),
        caption=LAYOUT.caption("{figure}"),
    params:
        dpi=CONFIG["figures"]["dpi"],
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
        claims=LAYOUT.claims,
    output:
        front=LAYOUT.report_page("front.rst"),
        verdicts=report(LAYOUT.report_page("verdicts.html"), category="Verdicts",
                        labels={"page": "verdict table"}),
        configuration=report(LAYOUT.report_page("configuration.html"), category="Configuration",
                             labels={"page": "configuration (YAML)"}),
    params:
        code=script_code("verdict_table.py"),
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
