"""``seg6a report``: one self-contained HTML page (and its PNGs) on a published run.

Everything shown is read back from the run folder: the gateboards (and the certification
summary, which holds T9), the datasets (devices per IP, accounts per holder, role
prevalence) and the perf artifacts. The targets drawn next to them (K_max and the holder
laws, role prevalences) come from the config, which must be the one the run was made with:
S0's receipt proves it by policy hashes and world fingerprint.
"""
import base64
import html
import importlib.util
import io
import json

import numpy as np

from .errors import InputError
from .gates import data as gate_data
from .gates import diagnostics
from .gates import metrics
from .gates import stats as gate_stats
from .gates.board import ACCOUNT_PRIORS, DESCRIPTIONS, VALIDATION_POLICY, holdings_by_rule
from .gates.tables import verdict
from .judging import shown
from .perf import budget_rows
from .policies import load_config, policy_hashes
from .states.s0_gate import CONFIG_FOLDER
from .runs import layout
from .runs.commit import RunCommit, reading
from .runs.publish import replace_bytes
from .runs.store import is_remote, location
from .world import load_world

REPORT_NAME = "report_6A.html"
T9 = "T9_CROSS_SEED_STABILITY"
_COLOURS = {"B+": "#1a7f37", "B": "#9a6700", "FAIL": "#cf222e", "n/a": "#6e7781"}


def report_dir(run_dir):
    """``RUN/reports/layer3/6A/report``: where the report goes by default."""
    return location(run_dir).joinpath("reports", *layout.SEGMENT_ROOT, "report")


def write_report(run_dir, config=None, out_dir=None):
    """Write the HTML report of a run and its PNGs; return the HTML's path.

    Parameters
    ----------
    run_dir : path-like
        A run folder, ``ROOT/<run_id>``.
    config : path-like, optional
        The config folder the run was made with (default: the one the run published beside
        S0's receipt).
    out_dir : path-like, optional
        Where to write (default: ``report_dir(run_dir)``). Existing files are replaced.

    Raises
    ------
    seg6a.errors.InputError
        Not a run folder, or the config is not the run's.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError("seg6a report draws with matplotlib: pip install 'seg6a[plot]'")
    run_dir = location(run_dir)
    boards = layout.gateboards(run_dir)
    if not boards:
        raise InputError(f"no gateboard under {layout.validation_dir(run_dir)}; "
                         "is this a run folder?")
    # Read under the run's shared lock (a publisher waits), write after it.
    with reading(run_dir):
        config = load_config(config if config is not None else _run_config(run_dir, boards[0][0]))
        world = load_world(config.world_dir)
        summary_path = layout.validation_dir(run_dir) / layout.CERTIFICATION_SUMMARY
        certification = (json.loads(summary_path.read_text(encoding="utf-8"))
                         if summary_path.exists() else None)
        out_dir = layout.check_output_folder(out_dir if out_dir is not None
                                             else report_dir(run_dir))
        sections, images = [], {}
        for seed, path in boards:
            records = json.loads(path.read_text(encoding="utf-8"))
            if certification is not None and seed in certification["seeds"]:
                records = [certification["T9"] if r["test_id"] == T9 else r for r in records]
            receipt = _s0_receipt(run_dir, seed, config, world)
            stats = gate_stats.measure_run(
                [gate_data.read_run(run_dir, seed, receipt["state_parameter_hashes"])],
                world.merchants.num_rows,
                int(config[VALIDATION_POLICY]["bootstrap"]["clusters"])).stats
            figures = {
                "gates": _plot_gates(records),
                "devices_per_ip": _plot_devices_per_ip(stats, records),
                "accounts_per_holder": _plot_accounts_per_holder(
                    holdings_by_rule(stats, config[ACCOUNT_PRIORS]["rules"])[0]),
                "role_prevalence": _plot_role_prevalence(stats,
                                                         config["fraud_role_taxonomy_6A.v1.yaml"]),
            }
            pngs = {f"seed={seed}_{name}.png": _png(figure) for name, figure in figures.items()}
            images.update(pngs)
            modulation = diagnostics.country_modulation(stats, config, world)
            sections.append(_seed_section(seed, records, pngs, _perf(run_dir, seed, receipt),
                                          modulation))
        identity, waived = [], set()
        for seed, path in boards:
            receipt = _s0_receipt(run_dir, seed, config, world)
            records = json.loads(path.read_text(encoding="utf-8"))
            identity.append((seed, receipt["seg6a_version"], receipt["parameter_hash"][:16],
                             (records[0].get("validation_hash") or "-")[:16],
                             receipt["manifest_fingerprint"][:16]))
            waived |= {(w["key"], f"{w['embedded']!r} -> {w['value']!r}", w["reason"])
                       for r in records for w in r.get("waivers", [])}
        page = _page(run_dir.name, certification, sections, identity, sorted(waived))
    files = {out_dir / name: png for name, png in images.items()}
    target = out_dir / REPORT_NAME
    files[target] = page.encode("utf-8")
    inside = (str(out_dir).startswith(str(run_dir).rstrip("/") + "/") if is_remote(run_dir)
              else out_dir.resolve().is_relative_to(run_dir.resolve()))
    if inside:
        with RunCommit(run_dir) as run:  # a page inside the run is one of its files
            run.publish(files, replace=list(files))
    else:
        for path, data in files.items():
            replace_bytes(path, data)
    return target


def _s0_receipt(run_dir, seed, config, world):
    """S0's receipt of ``seed`` made with this config and world, else an InputError."""
    receipts = [json.loads((folder / "s0_gate_receipt_6A.json").read_text(encoding="utf-8"))
                for folder in layout.s0_partitions(run_dir, seed)]
    if not receipts:
        raise InputError(f"no S0 receipt of seed {seed} in {run_dir}")
    wanted = policy_hashes(config)
    for receipt in receipts:
        if receipt["policies"] == wanted and receipt["manifest_fingerprint"] == world.fingerprint:
            return receipt
    differing = sorted({name for r in receipts for name in set(wanted) | set(r["policies"])
                        if r["policies"].get(name) != wanted.get(name)})
    if all(r["manifest_fingerprint"] != world.fingerprint for r in receipts):
        differing.append("the world")
    raise InputError(f"seed {seed} of {run_dir} was made with another config (differs: "
                     f"{', '.join(differing)}); leave out --config to use the run's own")


def _run_config(run_dir, seed):
    """The effective config a run published beside S0's receipt of ``seed``."""
    found = [folder / CONFIG_FOLDER for folder in layout.s0_partitions(run_dir, seed)
             if (folder / CONFIG_FOLDER).is_dir()]
    if not found:
        raise InputError(f"seed {seed} of {run_dir} has no published config; pass the config "
                         "folder the run was made with as --config")
    return found[0]


def _perf(run_dir, seed, receipt):
    """``(summary, budget check)`` of the run's perf artifacts, or None if it has none."""
    folder = layout.perf_dir(run_dir, seed, receipt["parameter_hash"],
                             receipt["manifest_fingerprint"])
    paths = folder / "perf_summary_6A.json", folder / "perf_budget_check_6A.json"
    if not all(p.exists() for p in paths):
        return None
    return tuple(json.loads(p.read_text(encoding="utf-8")) for p in paths)


# --- plots --------------------------------------------------------------------------------


def _figure(n_rows, n_cols, width, height):
    from matplotlib.figure import Figure

    # A bare Figure needs no pyplot state or GUI backend: safe in a server or a thread.
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(n_rows, n_cols, squeeze=False)


def _png(figure):
    buffer = io.BytesIO()
    # No software/version metadata: the same run gives the same PNG bytes.
    figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return buffer.getvalue()


# Gates with at most this many components get a row each in the plot (all are in the table).
_PLOTTED_COMPONENTS = 3


def _plot_rows(records):
    """``[(label, record-like)]``: one row per gate, or per component of a gate with a few."""
    rows = []
    for r in records:
        parts = r.get("components") or {}
        if 1 < len(parts) <= _PLOTTED_COMPONENTS:
            rows += [(f"{r['test_id']}.{name}", {**c, "metric_name": name})
                     for name, c in parts.items()]
        else:
            rows.append((r["test_id"], r))
    return rows


def _plot_gates(records):
    """One row per gate (per component for gates of a few): value, 95% CI and the B / B+
    thresholds on the row's own axis; the legend below the rows, clear of the data."""
    rows = _plot_rows(records)
    figure, axes = _figure(len(rows), 1, 8.0, 0.85 * len(rows) + 1.0)
    for ax, (name, r) in zip(axes[:, 0], rows):
        label = f"{name}  [{verdict(r)}]"
        ax.set_yticks([])
        ax.set_title(label, loc="left", fontsize=9, color=_COLOURS[verdict(r)])
        if r["value"] is None:
            ax.text(0.5, 0.5, r["reason"] or "no value", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color=_COLOURS["n/a"])
            ax.set_xticks([])
            continue
        points = [r["value"], r["threshold_B"], r["threshold_Bplus"], r["ci_low"], r["ci_high"]]
        points = [float(p) for p in points if p is not None]
        low, high = min(points), max(points)
        pad = 0.1 * (high - low) if high > low else max(abs(high), 1.0) * 0.5
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(-1, 1)
        ax.axvline(r["threshold_B"], color=_COLOURS["B"], linestyle="--", linewidth=1,
                   label="B threshold")
        ax.axvline(r["threshold_Bplus"], color=_COLOURS["B+"], linewidth=1,
                   label="B+ threshold")
        if r["ci_low"] is not None:
            # Every CI holds its value; T3's is the interval of the largest share error.
            ax.plot([r["ci_low"], r["ci_high"]], [0, 0], "|-", color="black", markersize=10,
                    label="95% CI")
        ax.plot([r["value"]], [0], "o", color="black", label="value")
        ax.tick_params(axis="x", labelsize=8)
    handles = {}
    for ax in axes[:, 0]:
        for line in ax.lines:
            handles.setdefault(line.get_label(), line)
    figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=4,
                  fontsize=7)
    return figure


def _plot_devices_per_ip(stats, records):
    """Share of IPs serving k devices, per ip_type, on log-log axes, with T5's bounds."""
    figure, axes = _figure(1, 1, 7.0, 4.2)
    ax = axes[0, 0]
    for ip_type, histogram in zip(stats.vocabularies["ip_types"], stats["devices_per_ip"]):
        served = histogram[1:]  # IPs serving k = 1, 2, ... devices
        if served.sum():
            k = np.flatnonzero(served)
            ax.loglog(k + 1, served[k] / served.sum(), "o", markersize=3,
                      label=f"{ip_type} ({served.sum()})")
    t5 = next((r for r in records if r["test_id"] == "T5_IP_REUSE_TAIL_BOUNDS"), None)
    for name, style in (("p99", "--"), ("max", "-")):
        component = (t5 or {}).get("components", {}).get(name)
        for band, key in (("B", "threshold_B"), ("B+", "threshold_Bplus")):
            if component:
                ax.axvline(component[key], color=_COLOURS[band], linestyle=style, linewidth=1,
                           label=f"T5 {name} bound ({band}) {component[key]:g}")
    ax.set_xlabel("devices per IP (k)")
    ax.set_ylabel("share of the type's IPs")
    ax.set_title("Devices per IP (S4)", fontsize=10)
    figure.legend(loc="outside right upper", fontsize=7)
    return figure


def _plot_accounts_per_holder(rules):
    """Per rule of the account priors: realised accounts per holder against the 1 + geometric
    law cut at K_max, and K_max itself."""
    n_cols = 4
    n_rows = max(1, -(-len(rules) // n_cols))
    figure, axes = _figure(n_rows, n_cols, 12.0, 2.3 * n_rows + 0.4)
    for ax in axes.flat[len(rules):]:
        ax.set_visible(False)
    for ax, (rule, histogram) in zip(axes.flat, rules):
        k_max = int(rule["k_max"])
        top = max(k_max, metrics.largest(histogram), 1)
        k = np.arange(1, top + 1)
        holders = int(histogram.sum())
        realised = np.zeros(top + 1)
        realised[:min(histogram.size, top + 1)] = histogram[:top + 1]  # no counts above top
        realised = realised[1:] / max(holders, 1)
        law = np.zeros(top)
        law[:k_max] = metrics.holder_law(rule["mean_accounts_per_holder"], k_max)
        ax.bar(k, realised, color="#8c959f", label="realised")
        ax.plot(k, law, "o", color="black", markersize=3, label="target law")
        ax.axvline(k_max + 0.5, color=_COLOURS["FAIL"], linewidth=1, label="K_max")
        ax.set_title(f"{rule['party_type']} / {rule['account_type']} ({holders} holders)",
                     fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, ["realised", "target law", "K_max"], loc="outside lower center",
                  ncols=3, fontsize=7)
    figure.suptitle("Accounts per holder (S2) against K_max", fontsize=10)
    return figure


def _plot_role_prevalence(stats, taxonomy):
    """Per entity kind: the realised share of each raw role next to its target prevalence."""
    kinds = gate_data.ROLE_KINDS
    figure, axes = _figure(1, len(kinds), 3.2 * len(kinds), 3.6)
    for ax, kind in zip(axes[0], kinds):
        raw_roles, _ = stats.vocabularies[f"roles.{kind}"]
        per_code = stats[f"roles.{kind}"].sum(axis=1)  # nulls last
        rows = int(per_code.sum())
        spec = taxonomy["entity_kinds"].get(kind, [])
        names = [r["raw_role"] for r in spec]
        share = {name: per_code[i] / max(rows, 1) for i, name in enumerate(raw_roles)}
        y = np.arange(len(names))
        ax.barh(y - 0.2, [share.get(n, 0.0) for n in names], height=0.4, color="#8c959f",
                label="realised")
        ax.barh(y + 0.2, [r["target_prevalence"] for r in spec], height=0.4, color="black",
                label="target")
        ax.set_yticks(y, names, fontsize=6)
        ax.set_xscale("log")
        ax.set_title(f"{kind} ({rows})", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=2,
                  fontsize=7)
    figure.suptitle("Role prevalence (S5) against the taxonomy's targets", fontsize=10)
    return figure


# --- HTML ---------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td:nth-child(2) { min-width: 16em; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""

# Counts the images the browser decoded, so a headless check can read it off the DOM.
_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesRendered = images.filter(function (i) {
    return i.complete && i.naturalWidth > 0; }).length;
});
"""


def _number(value):
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def _table(header, rows, numeric=()):
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(name, png, alt):
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}" ' \
           f'title="{html.escape(name)}">'


def _modulation_table(components):
    """The country-modulation diagnostic (``seg6a.gates.diagnostics``) as a table."""
    rows = [(html.escape(c["name"]), html.escape(c["indicator"] + (f" / {c['per']}"
                                                                 if c["per"] else "")),
             _number(c["spearman_vs_indicator"]), _number(c["value"]),
             _number(c["global_prior"]), _number(c["global_realised"]),
             _number(c["countries_judged"]))
            for c in components]
    return ("<h3>Country modulation (a diagnostic: shown, never judged)</h3>"
            "<p>Each country-modulated prior: Spearman's correlation of the realised "
            "per-country rates with the indicator, the largest |realised - target| over "
            f"the countries with at least {diagnostics.MIN_SUPPORT} entities, and the "
            "global rate against the global prior (conservation).</p>"
            + _table(("prior", "indicator", "Spearman", "largest error", "global prior",
                      "global realised", "countries"), rows, numeric=(2, 3, 4, 5, 6)))


def _seed_section(seed, records, pngs, perf, modulation):
    rows = []
    for r in records:
        mark = verdict(r)
        ci = "-" if r["ci_low"] is None else f"[{_number(r['ci_low'])}, {_number(r['ci_high'])}]"
        rows.append((f'<span id="{html.escape(r["test_id"])}-{seed}">'
                     f'{html.escape(r["test_id"])}</span>',
                     html.escape(DESCRIPTIONS[r["test_id"]]),
                     html.escape(r["metric_name"]), _number(r["value"]), ci,
                     _number(r["threshold_B"]), _number(r["threshold_Bplus"]),
                     f'<b style="color:{_COLOURS[mark]}">'
                     f'{html.escape(shown(mark, r.get("waivers", [])))}</b>',
                     html.escape(r["owner_state"]), html.escape(r["reason"] or "")))
    parts = [f"<h2>Seed {seed}</h2>", "<h3>Gateboard</h3>",
             _table(("test", "what it checks", "metric", "value", "95% CI", "B", "B+", "pass",
                     "owner", "reason"), rows, numeric=(3, 4, 5, 6))]
    component_rows = []
    for r in records:
        for name, c in (r.get("components") or {}).items():
            mark = verdict(c)
            ci = "-" if c["ci_low"] is None else \
                f"[{_number(c['ci_low'])}, {_number(c['ci_high'])}]"
            component_rows.append((html.escape(r["test_id"]), html.escape(name),
                                   _number(c["value"]), ci, _number(c["threshold_B"]),
                                   _number(c["threshold_Bplus"]),
                                   f'<b style="color:{_COLOURS[mark]}">{mark}</b>',
                                   html.escape(c["owner_state"]), html.escape(c["reason"] or "")))
    parts.append(f"<details><summary>Every component ({len(component_rows)})</summary>"
                 + _table(("test", "component", "value", "95% CI", "B", "B+", "pass", "owner",
                           "reason"), component_rows, numeric=(2, 3, 4, 5)) + "</details>")
    parts.append("<p>Rate gates pass only when their 95% CI lies wholly on the passing side. "
                 "T3's interval is that of its value, the largest share error: each (region, "
                 "ip_type) share's bootstrap CI turned into an interval of its absolute error "
                 "against the prior, then the largest of each end over the cells.</p>")
    waived = sorted({(w["key"], f"{w['embedded']!r} -> {w['value']!r}", w["reason"])
                     for r in records for w in r.get("waivers", [])})
    if waived:
        parts.append("<p>Waivers on this board:</p>" + _table(
            ("key", "embedded -> used", "reason"), [tuple(map(html.escape, w)) for w in waived]))
    if modulation:
        parts.append(_modulation_table(modulation))
    titles = {"gates": "Values and 95% CIs against the thresholds",
              "devices_per_ip": "Devices per IP", "accounts_per_holder": "Accounts per holder",
              "role_prevalence": "Role prevalence"}
    for name, png in pngs.items():
        plot = name.split("_", 1)[1].removesuffix(".png")
        parts += [f"<h3>{titles[plot]}</h3>", _image(name, png, f"{titles[plot]}, seed {seed}")]
    parts.append("<h3>Performance against budgets</h3>")
    if perf is None:
        parts.append("<p>No perf artifacts for this seed.</p>")
    else:
        summary, check = perf
        perf_rows = [tuple(html.escape(c) for c in row) for row in budget_rows(summary, check)]
        parts.append(f"<p>scale {html.escape(summary['scale'])}, JIT "
                     f"{html.escape(summary['jit']['mode'])}, peak RSS "
                     f"{summary['peak_rss_gib']:.2f} GiB, budget check "
                     f"{html.escape(check['status'])}</p>")
        parts.append(_table(("state", "seconds", "budget", ""), perf_rows, numeric=(1, 2)))
    return "\n".join(parts)


def _page(run_id, certification, sections, identity, board_waivers):
    head = f"<h1>seg6a run {html.escape(run_id)}</h1>"
    head += _table(("seed", "seg6a", "parameter_hash", "validation_hash",
                    "manifest_fingerprint"),
                   [tuple(html.escape(str(v)) for v in row) for row in identity])
    if certification is not None:
        reason = certification.get("reason")
        head += (f"<p>Certification over seeds {', '.join(map(str, certification['seeds']))} "
                 f"at scale {html.escape(certification['scale'])}: "
                 f"<b>{html.escape(certification['decision_shown'])}</b>"
                 + (f" ({html.escape(reason)})" if reason else "") + "</p>")
        waivers = [(w["key"], f"{w['embedded']!r} -> {w['value']!r}", w["reason"])
                   for w in certification["waivers"]]
        if waivers:
            head += ("<p>Waived judging values (loosened against the embedded validation "
                     "policy):</p>" + _table(("key", "embedded -> used", "reason"),
                                             [tuple(map(html.escape, w)) for w in waivers]))
        t9 = certification["T9"]
        cvs = sorted(((name, cv) for name, cv in t9["coefficients_of_variation"].items()),
                     key=lambda item: -(item[1] if item[1] is not None else float("inf")))
        head += (f"<p>T9: coefficient of variation across seeds of each stability metric "
                 f"(B {_number(t9['threshold_B'])}, B+ {_number(t9['threshold_Bplus'])}; "
                 f"the largest is T9's value)</p>"
                 + _table(("stability metric", "CV"),
                          [(html.escape(name), _number(cv)) for name, cv in cvs[:10]],
                          numeric=(1,)))
        if len(cvs) > 10:
            head += (f"<details><summary>All {len(cvs)} stability metrics</summary>"
                     + _table(("stability metric", "CV"),
                              [(html.escape(name), _number(cv)) for name, cv in cvs[10:]],
                              numeric=(1,)) + "</details>")
    else:
        head += "<p>Not certified: T9 (stability across seeds) needs <code>seg6a certify</code>.</p>"
        if board_waivers:
            head += ("<p>Waived judging values:</p>" + _table(
                ("key", "embedded -> used", "reason"),
                [tuple(map(html.escape, w)) for w in board_waivers]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>seg6a report {html.escape(run_id)}</title><style>{_STYLE}</style>"
            f"<script>{_SCRIPT}</script></head><body>\n{head}\n" + "\n".join(sections)
            + "\n</body></html>\n")
