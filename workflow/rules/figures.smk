# One papermill notebook per figure (workflow/notebooks/{figure}.ipynb); the executed
# notebook is kept in results/notebooks/ so a reader sees the code beside the plot.


localrules:
    figures,


rule figure:
    input:
        notebook=os.path.join(REPO_DIR, "workflow", "notebooks", "{figure}.ipynb"),
        tables=[LAYOUT.table(name) for name in TABLES],
        claims="results/claims.json",
    output:
        report(
            "figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
        ),
        [f"figures/{{figure}}.{ext}" for ext in config["figures"]["formats"] if ext != "png"],
        notebook="results/notebooks/{figure}.ipynb",
    params:
        dpi=config["figures"]["dpi"],
        formats=config["figures"]["formats"],
        code=source_hash(["plots", "archs", "notebooks"]),
    wildcard_constraints:
        figure="|".join(FIGURES),
    conda:
        CONDA_ENV
    log:
        LOGS / "figures/{figure}.log",
    script:
        "../scripts/figure.py"


rule figures:
    input:
        figure_outputs(),

