# One papermill notebook per figure (workflow/notebooks/{figure}.ipynb); the executed
# notebook is kept in results/notebooks/ so a reader sees the code beside the plot.

FIGURES = ("symmetry_map", "accuracy_vs_wd", "norm_dynamics", "penalty_removal",
           "lr_wd_collapse", "mechanism")
FIG_FORMATS = config["figures"]["formats"]

localrules:
    figures,


def figure_outputs():
    return expand("figures/{figure}.{ext}", figure=FIGURES, ext=FIG_FORMATS)


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
        [f"figures/{{figure}}.{ext}" for ext in FIG_FORMATS if ext != "png"],
        notebook="results/notebooks/{figure}.ipynb",
    params:
        dpi=config["figures"]["dpi"],
        formats=FIG_FORMATS,
        code=source_hash(["plots"]),
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

