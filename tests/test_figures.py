"""Figures: every plots function on small tables shaped like the contract
(results/tables/*.csv, see the evaluation stage), save_figure, and one papermill notebook
end to end. The tables are synthetic: the figures are tested for structure, not numbers."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from wdnorm import plots  # noqa: E402
from wdnorm.models import (  # noqa: E402
    ARCHITECTURES,
    PREDICTED_JOINT_INVARIANT,
    PREDICTED_PER_LAYER_INVARIANT,
    layer_names,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "workflow" / "notebooks"
SCRIPTS = NOTEBOOKS.parent / "scripts"
GRID_LR, MOMENTUM = 0.05, 0.9
WDS = (0.0, 1e-4, 1e-3, 1e-2)
PAIRS = ((0.1, 5e-3), (0.05, 1e-2), (0.025, 2e-2))  # the middle one is also a grid point
MIMIC_WD = 1e-2
# data axes per figure for one (dataset, optimiser) and the eight architectures
EXPECTED_AXES = dict(symmetry_map=4, accuracy_vs_wd=4, norm_dynamics=4, penalty_removal=3,
                     lr_wd_collapse=2 * len(ARCHITECTURES), mechanism=1)


def _run_id(lr, wd, seed):
    return f"lr{lr:g}_wd{wd:g}_s{seed}"


def _layer_invariant(arch, index, n_hidden):
    rule = PREDICTED_PER_LAYER_INVARIANT[arch]
    return (rule == "hidden" and index < n_hidden) or (rule == "blocks" and 1 <= index < n_hidden)


def synthetic_tables(archs=ARCHITECTURES, depth=2, seeds=(0, 1, 2), dataset="digits",
                     optimiser="sgdm", seed=0) -> dict[str, pd.DataFrame]:
    """Every table of the contract with plausible values (one dataset, one optimiser)."""
    rng = np.random.default_rng(seed)
    base = dict(dataset=dataset, optimiser=optimiser)
    points = list(dict.fromkeys([(GRID_LR, wd) for wd in WDS] + list(PAIRS)))
    runs, dynamics, penalty, curve, symmetry, floors, identity = ([] for _ in range(7))
    for arch in archs:
        names = layer_names(arch, depth)
        n_hidden = len(names) - 1
        members = [("runs", lr, wd, s) for s in seeds for lr, wd in points]
        members += [("mimic", GRID_LR, 0.0, s) for s in seeds]
        for kind, lr, wd, s in members:
            rid = _run_id(lr, wd, s)
            test_acc = 0.95 + 0.02 * math.tanh(wd * 100) + rng.normal(0, 0.005)
            train_acc = min(1.0, test_acc + 0.03 + rng.normal(0, 0.003))
            runs.append(dict(
                base, arch=arch, kind=kind, run_id=rid, lr=lr, weight_decay=wd, seed=s,
                algorithm="sgd", momentum=MOMENTUM, status="ok", steps=1500,
                train_loss=0.05, train_acc=train_acc, test_loss=0.2, test_acc=test_acc,
                gen_gap_loss=0.15, gen_gap_acc=train_acc - test_acc,
                hidden_penalty=10.0, head_sq_norm=3.0,
                is_matched_pair=(lr, wd) in PAIRS,
                mimic_reference=_run_id(GRID_LR, MIMIC_WD, s) if kind == "mimic" else None))
            for i, name in enumerate(names):
                pred = math.sqrt(2 * lr * wd / (1 + MOMENTUM)) if wd > 0 else math.nan
                t_eq = 3 / (2 * lr * wd) if wd > 0 else math.inf
                mean = (pred if wd > 0 else 1e-3) * math.exp(rng.normal(0, 0.08))
                dynamics.append(dict(
                    base, arch=arch, kind=kind, run_id=rid, lr=lr, weight_decay=wd, seed=s,
                    algorithm="sgd", momentum=MOMENTUM, beta1=math.nan, layer=name,
                    layer_index=i, is_head=name == "head",
                    predicted_invariant=_layer_invariant(arch, i, n_hidden), steps=1500,
                    t_equilibrium=t_eq, past_equilibrium=1500 >= t_eq, window_start=1125,
                    angle_mean=mean, angle_pred=pred, angle_ratio=mean / pred,
                    cos_abs_mean=10 ** rng.uniform(-7, -1), sq_norm_init=20.0,
                    sq_norm_final=5.0, eff_lr_final=lr / 5.0))
        method = ("invariant_shrink" if PREDICTED_JOINT_INVARIANT[arch]
                  or PREDICTED_PER_LAYER_INVARIANT[arch] != "none"
                  else "relu_rebalance" if arch in ("plain", "res", "preln") else "none")
        for s in seeds:
            for wd in WDS:
                ratio = {"invariant_shrink": 1e-6, "relu_rebalance": 0.4, "none": 1.0}[method]
                penalty.append(dict(
                    base, arch=arch, run_id=_run_id(GRID_LR, wd, s), weight_decay=wd, seed=s,
                    method=method, penalty_before=10.0, penalty_after=10.0 * ratio,
                    ratio=ratio, scale=1e-3 if method == "invariant_shrink" else math.nan,
                    loss_before=0.05, loss_after=0.05, rel_loss_change=5e-5,
                    eps_limited=method == "invariant_shrink", total_penalty_before=13.0,
                    total_penalty_after=3.0 + 10.0 * ratio,
                    ratio_eps0=ratio * 1e-6 if method == "invariant_shrink" else ratio))
        if method == "invariant_shrink":
            for a in np.logspace(-12, 0, 13):
                for variant, change in (("model_eps", min(1.0, 1e-5 / (a * a) - 1e-5)),
                                        ("eps0", 1e-7 * (a < 1))):
                    curve.append(dict(
                        base, arch=arch, run_id=_run_id(GRID_LR, MIMIC_WD, 0), variant=variant,
                        method=method, scale=a, penalty=10.0 * a * a,
                        total_penalty=3.0 + 10.0 * a * a, rel_loss_change=change))
        modes = ("train", "eval", "eval_rescaled") if arch == "bn" else ("eval",)
        transforms = [("layer", i) for i in range(n_hidden)] + [("joint", -1)]
        for mode in modes:
            for transform, i in transforms:
                if mode == "eval" and arch == "bn":
                    pred = False
                elif transform == "joint":
                    pred = PREDICTED_JOINT_INVARIANT[arch]
                else:
                    pred = _layer_invariant(arch, i, n_hidden)
                for a in (1e-2, 1e-1, 10.0, 100.0):
                    rel = 10 ** rng.uniform(-16, -14) if pred else abs(math.log10(a)) * 0.3
                    symmetry.append(dict(
                        dataset=dataset, arch=arch,
                        layer=names[i] if i >= 0 else "joint", layer_index=i,
                        transform=transform, scale=a, mode=mode, rel_change=rel,
                        predicted_invariant=pred, invariant=rel < 1e-5,
                        matches_prediction=(rel < 1e-5) == pred,
                        rel_change_model_eps=rel, invariant_model_eps=rel < 1e-5,
                        norm_eps=1e-5, tol=1e-5))
            if arch in ("ln", "resln", "preln_final"):
                for i in [j for j in range(n_hidden) if _layer_invariant(arch, j, n_hidden)]:
                    for dtype in ("float32", "float64"):
                        floors.append(dict(
                            dataset=dataset, arch=arch, layer=names[i], layer_index=i,
                            dtype=dtype, floor=3e-3, grid_floor=5e-3, reached_grid_end=False,
                            norm_eps=1e-5, a_eps=1e-3, first_order_floor=3e-3))
        for i, name in enumerate(names):
            inv = _layer_invariant(arch, i, n_hidden) and name != "head"
            identity.append(dict(
                dataset=dataset, arch=arch, layer=name, layer_index=i, is_head=name == "head",
                predicted_invariant=inv, steps=300, lr=0.05,
                cos_abs_max=10 ** rng.uniform(-8, -6) if inv else 10 ** rng.uniform(-2, -0.5),
                cos_abs_mean=10 ** rng.uniform(-9, -7) if inv else 10 ** rng.uniform(-3, -1),
                identity_rel_err=1e-6 if inv else 0.3, identity_rel_err_total=1e-7 if inv else 0.1,
                norm_growth=1.5))
    return dict(runs=pd.DataFrame(runs), dynamics=pd.DataFrame(dynamics),
                penalty=pd.DataFrame(penalty), penalty_curve=pd.DataFrame(curve),
                symmetry=pd.DataFrame(symmetry), epsilon_floor=pd.DataFrame(floors),
                gradient_identity=pd.DataFrame(identity))


def synthetic_claims() -> dict:
    """claims.json's shape: a list of records, plus top-level verdicts and tolerances."""
    verdicts = dict(C1="supported", C2="supported", C3="supported", C4="inconclusive",
                    C5="refuted", C6="supported")
    records = [{"id": cid, "title": f"claim {cid}", "verdict": v,
                "summary": f"synthetic summary of {cid}", "measured": {}}
               for cid, v in verdicts.items()]
    records[-1]["measured"] = {"headline_weight_decay": MIMIC_WD, "mechanism": {
        "ln": {"mimic_minus_decay": {"mean": -0.004}, "reproduces": True}}}
    records[4]["measured"] = {"per_arch": {"plain": {
        "test_acc_spread": 0.02, "accuracy_tolerance": 0.01, "accuracy_consistent": False}}}
    return {"claims": records, "verdicts": verdicts,
            "tolerances": {"c1_invariant": 1e-5, "c1_non_invariant": 1e-2, "c2_rel_loss": 1e-4,
                           "c3_cos": 1e-3, "c3_identity": 1e-2, "c4_rel": 0.15}}


@pytest.fixture(scope="module")
def tables():
    return synthetic_tables()


@pytest.fixture(scope="module")
def claims():
    return synthetic_claims()


def _titles(fig: Figure) -> str:
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return "\n".join(texts)


def _data_axes(fig: Figure):
    return [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]


@pytest.mark.parametrize("name", plots.FIGURES)
def test_every_figure_builds(name, tables, claims):
    fig = plots.build_figure(name, tables, claims)
    assert isinstance(fig, Figure)
    axes = _data_axes(fig)
    assert len(axes) == EXPECTED_AXES[name]
    assert all(ax.has_data() for ax in axes)
    for cid in plots.FIGURE_CLAIMS[name]:
        assert f"{cid}: {plots.verdict(claims, cid)}" in _titles(fig)


def test_symmetry_map_marks_predictions_and_mismatches(tables, claims):
    sym = tables["symmetry"].copy()
    # one cell predicted invariant but measured not: it must be outlined as a mismatch
    row = sym.index[(sym["arch"] == "ln") & (sym["transform"] == "layer")][0]
    sym.loc[row, ["rel_change", "invariant", "matches_prediction"]] = [0.5, False, False]
    fig = plots.symmetry_map(sym, claims)
    axes = _data_axes(fig)
    assert len(axes) == sym["scale"].nunique()
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert any("train" in lab for lab in labels) and any("rescaled" in lab for lab in labels)
    mismatches = sum(len([p for p in ax.patches if p.get_gid() == "mismatch"]) for ax in axes)
    assert mismatches == 1


def test_accuracy_vs_wd_uses_grid_lr_only(tables, claims):
    runs = tables["runs"]
    grid = plots.grid_runs(runs)
    assert set(grid["lr"]) == {GRID_LR}
    assert (grid["kind"] == "runs").all()
    assert 1e-2 in set(grid["weight_decay"])  # the matched pair at the grid lr stays
    fig = plots.accuracy_vs_wd(runs, claims)
    bottom_left = _data_axes(fig)[2]
    assert "0" in [t.get_text() for t in bottom_left.get_xticklabels()]


def test_mechanism_reads_reference_wd(tables):
    assert plots.mimic_weight_decay(tables["runs"]) == pytest.approx(MIMIC_WD)


def test_figures_without_claims_or_with_unknown_verdict(tables):
    fig = plots.mechanism(tables["runs"], None)
    assert "n/a" in _titles(fig)
    fig = plots.mechanism(tables["runs"], {"claims": {"C6": {"verdict": "weird"}}})
    assert "weird" in _titles(fig)


def test_claim_lookup_and_tolerances(claims):
    assert plots.claim(claims, "C5")["verdict"] == "refuted"
    assert plots.claim({"claims": {"C2": {"verdict": "supported"}}}, "C2")["verdict"] == "supported"
    assert plots.verdict({"verdicts": {"C3": "refuted"}}, "C3") == "refuted"
    assert plots.claim(claims, "C9") == {} and plots.verdict(None, "C1") == "n/a"
    assert plots.tolerance(claims, "c3_cos", 5.0) == 1e-3
    assert plots.tolerance(claims, "nope", 5.0) == 5.0


def test_claim_numbers_reach_the_figures(tables, claims):
    fig = plots.mechanism(tables["runs"], claims)
    assert "mimic − decay\n-0.4 pp" in _titles(fig)
    fig = plots.lr_wd_collapse(tables["runs"], tables["dynamics"], claims)
    assert "spread 2 pp" in _titles(fig) and "tol 1 pp" in _titles(fig)


def test_mechanism_with_two_optimisers(tables, claims):
    runs = tables["runs"]
    adam = runs.assign(optimiser="adamw", lr=runs["lr"] / 50,
                       mimic_reference=runs["mimic_reference"].str.replace("lr0.05", "lr0.001"))
    fig = plots.mechanism(pd.concat([runs, adam], ignore_index=True), claims)
    assert len(_data_axes(fig)) == 2
    assert all(ax.has_data() for ax in _data_axes(fig))


def test_two_settings_stack_subfigures(tables, claims):
    runs = tables["runs"]
    both = pd.concat([runs, runs.assign(dataset="mnist")], ignore_index=True)
    fig = plots.accuracy_vs_wd(both, claims)
    assert len(fig.subfigs) == 4  # header, one block per dataset, legend
    assert "digits" in fig.subfigs[1].get_suptitle() and "mnist" in fig.subfigs[2].get_suptitle()
    assert len(_data_axes(fig)) == 2 * EXPECTED_AXES["accuracy_vs_wd"]


def test_palette_and_labels_cover_every_architecture():
    assert list(plots.PALETTE) == list(ARCHITECTURES)
    assert len(set(plots.PALETTE.values())) == len(ARCHITECTURES)
    assert plots.arch_label("ln") == "ln: ReLU(LN(Wh+b))"
    assert all(plots.arch_label(a).startswith(f"{a}: ") for a in ARCHITECTURES)


def _small_figure() -> Figure:
    fig = Figure(figsize=(2, 1.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [1, 0], label="λ → 0")
    ax.set_title("ε floor")
    ax.legend()
    return fig


def test_save_figure_writes_every_format_atomically(tmp_path):
    fig = _small_figure()
    stem = tmp_path / "figs" / "mechanism"
    paths = plots.save_figure(fig, stem, ["png", "pdf", "svg"], dpi=50)
    assert [p.suffix for p in paths] == [".png", ".pdf", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in paths[2].read_bytes()[:1000]
    assert sorted(p.name for p in stem.parent.iterdir()) == [
        "mechanism.pdf", "mechanism.png", "mechanism.svg"]  # no temporary files left
    # a rebuilt figure saves byte-identically: no dates or random ids in the files
    fig = _small_figure()
    again = plots.save_figure(fig, tmp_path / "again" / "mechanism", ["png", "pdf", "svg"],
                              dpi=50)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_save_figure_rejects_unknown_format(tmp_path):
    fig = _small_figure()
    with pytest.raises(ValueError, match="format"):
        plots.save_figure(fig, tmp_path / "x", ["nope"], dpi=50)
    assert list(tmp_path.iterdir()) == []


class _Names(list):
    """Stand-in for snakemake's Namedlist: a list whose items also have names."""

    def __init__(self, items=(), **named):
        super().__init__([*items, *named.values()])
        self.__dict__.update(named)


@pytest.mark.slow
def test_figure_script_executes_notebook(tmp_path, monkeypatch, tables, claims):
    """workflow/scripts/figure.py runs the real template with papermill on synthetic
    tables: the figure files and the executed notebook (with the image) appear, and no
    temporary file is left."""
    pytest.importorskip("papermill")
    tables_dir = tmp_path / "results" / "tables"
    tables_dir.mkdir(parents=True)
    for name, frame in tables.items():
        frame.to_csv(tables_dir / f"{name}.csv", index=False)
    (tmp_path / "results" / "claims.json").write_text(json.dumps(claims))
    monkeypatch.chdir(tmp_path)
    snakemake = SimpleNamespace(
        input=_Names(notebook=str(NOTEBOOKS / "mechanism.ipynb"),
                     tables=[f"results/tables/{n}.csv" for n in tables],
                     claims="results/claims.json"),
        output=_Names(["figures/mechanism.png"], notebook="results/notebooks/mechanism.ipynb"),
        params=SimpleNamespace(dpi=40, formats=["png"]),
        wildcards=SimpleNamespace(figure="mechanism"),
        log=["results/logs/figures/mechanism.log"],
    )
    runpy.run_path(str(SCRIPTS / "figure.py"), init_globals={"snakemake": snakemake})
    assert (tmp_path / "figures" / "mechanism.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    executed = json.loads((tmp_path / "results" / "notebooks" / "mechanism.ipynb").read_text())
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert sorted(p.name for p in (tmp_path / "results" / "notebooks").iterdir()) == [
        "mechanism.ipynb"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["mechanism.png"]


@pytest.mark.parametrize("name", plots.FIGURES)
def test_notebook_templates_have_parameters(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for key in ("tables_dir", "claims_path", "output_stem", "formats", "dpi"):
        assert f"{key} =" in tagged[0].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f"plots.{name}(" in code and "plots.save_figure(" in code
