"""The ``seg6a`` command line: parse, call the API, print.

Exit codes (SPEC §10): 0 success, 3 published but held for remediation (S5's fail-closed
validation failed: no ``_passed.flag``; or a certification decided HOLD_REMEDIATE), 4 a run
folder that ``verify`` finds different from its manifest, 2 bad usage or bad input (a config
that loosens the judging policy without ``--waive`` too; a run folder whose publish was
interrupted), 1 anything else.
The run id goes to standard output (so scripts can capture it); progress and the summary
table go to standard error.
"""
import argparse
import os
import sys
import time

OVERLAY_HELP = ("a config folder overlaying the embedded defaults: YAML files named like the "
                "embedded ones, flat or in the embedded layout (scales.yaml, priors/, policy/, "
                "world/); each file replaces the whole embedded file; `seg6a config export "
                "DIR` writes the defaults to start from")
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_HOLD, EXIT_UNVERIFIED = 0, 1, 2, 3, 4


def build_parser():
    parser = argparse.ArgumentParser(
        prog="seg6a",
        description="Generate Segment 6A: parties, accounts, instruments, devices, IPs and "
        "their fraud roles, deterministic by seed.",
    )
    parser.add_argument("--version", action="version", version=f"seg6a {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="generate and publish one run",
        description="Generate one seed and publish it to ROOT/<run_id>/. Prints the run id.",
    )
    run.add_argument("--seed", type=int, required=True, help="integer in [0, 2**63)")
    run.add_argument("--scale", default=None,
                     help="scale preset of scales.yaml: tiny (20k parties), small (200k), "
                     "medium (1M), full (3.7M, the reference surface), xl (14.8M, for Dask) "
                     "(default: small)")
    run.add_argument("--out", default="runs", metavar="ROOT",
                     help="runs root folder (default: ./runs)")
    run.add_argument("--run-id", default=None, metavar="ID",
                     help="run folder name under ROOT (default: a fresh id)")
    run.add_argument("--config", default=None, metavar="DIR", help=OVERLAY_HELP)
    run.add_argument("--from", dest="from_state", default=None, metavar="STATE",
                     choices=("S1", "S2", "S3", "S4", "S5"),
                     help="rerun the existing run --run-id from STATE (S1-S5), keeping the "
                     "earlier states after checking their receipts")
    run.add_argument("--engine", default="local", choices=("local", "dask"),
                     help="where the per-block work runs: this process (default) or a local "
                     "Dask cluster of 2 worker processes (needs seg6a[dask]); same bytes")
    run.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                     help="threads for the canonical blocks (default: all cores); outputs do "
                     "not depend on it")
    _waive_flag(run)
    _script_flags(run)

    certify = commands.add_parser(
        "certify",
        help="run the witness seeds and decide PASS_BPLUS, PASS_B, RETAIN_PASS_B or "
        "HOLD_REMEDIATE",
        description="Run every seed into one run folder, evaluate T1-T10 per seed and T9 "
        "across seeds, write realism_gate_summary_6A.json and print the decision (PASS_BPLUS, "
        "PASS_B, RETAIN_PASS_B or HOLD_REMEDIATE); an accepted one is frozen "
        "(freeze_6A.json) and recorded as the keep-set's last_good. A "
        "certificate needs every required seed of the validation policy at a scale of at "
        "least its min_scale; otherwise the decision is HOLD_REMEDIATE (incomplete_evidence). "
        "Exit 0 on PASS_B, PASS_BPLUS or RETAIN_PASS_B, 3 on HOLD_REMEDIATE.",
    )
    certify.add_argument("--seeds", type=_seed_list, default=None, metavar="S,S,...",
                         help="comma-separated seeds (default: the policy's required seeds "
                         "42,7,101,202; extra seeds are judged too)")
    certify.add_argument("--scale", default="full",
                         help="scale preset: tiny, small, medium, full, xl (default: full, the "
                         "reference surface; a certificate needs at least the policy's "
                         "min_scale, small)")
    certify.add_argument("--out", default="runs", metavar="ROOT",
                         help="runs root folder (default: ./runs)")
    certify.add_argument("--run-id", default=None, metavar="ID",
                         help="run folder name under ROOT (default: a fresh id)")
    certify.add_argument("--config", default=None, metavar="DIR", help=OVERLAY_HELP)
    certify.add_argument("--engine", default="local", choices=("local", "dask"),
                         help="as for run: this process or one local Dask cluster for every "
                         "seed; same bytes")
    certify.add_argument("--baseline", default=None, metavar="RUN_DIR",
                         help="a certified run to compare every gate with, per seed: a gate "
                         "worse than the baseline's beyond their CIs (exact gates: worse at "
                         "all) holds the decision; writes gate_delta_6A.json (default: the "
                         "keep-set's baseline under --out, if any)")
    _waive_flag(certify)
    _script_flags(certify)

    gates = commands.add_parser(
        "gates", help="print the gateboards of a run (or judge it anew with --rejudge)",
        description="Print T1-T10 of every seed of RUN_DIR (and the certification decision "
        "if the run was certified). With --rejudge, first judge the published run anew under "
        "the validation policy of --config: the boards, S5's validation reports and flags and "
        "the certification are superseded; no dataset byte changes.")
    gates.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, ROOT/<run_id>")
    gates.add_argument("--json", action="store_true",
                       help="print the boards as JSON ({seed: records}) on standard output")
    gates.add_argument("--rejudge", action="store_true",
                       help="recompute every verdict of the run from its published Parquet")
    gates.add_argument("--config", default=None, metavar="DIR",
                       help="with --rejudge: the run's config folder, whose validation policy "
                       "judges (default: the run's own published config)")
    _waive_flag(gates)

    perf = commands.add_parser(
        "perf", help="print the perf summary and budget check of a run",
        description="Print, per seed of RUN_DIR, the seconds per state against the scale's "
        "budgets, the hotspots and the JIT state (cold, cache_load or warm).")
    perf.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, ROOT/<run_id>")
    perf.add_argument("--json", action="store_true",
                      help="print summaries and budget checks as JSON on standard output")

    verify = commands.add_parser(
        "verify", help="check every file of a run against its manifest and receipts",
        description="Hash every file of RUN_DIR and compare it with the run's commit point, "
        "_manifest_6A.json, and every receipt's outputs with the manifest. Exit 0 when "
        "everything matches, 4 otherwise, naming each missing, changed and unexpected file.")
    verify.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, ROOT/<run_id>")
    verify.add_argument("--json", action="store_true",
                        help="print the findings as JSON on standard output")

    report = commands.add_parser(
        "report", help="write an HTML report (with PNG plots) of a run",
        description="Write a self-contained HTML page of RUN_DIR: the gateboard of every seed "
        "with CIs against the thresholds, devices per IP on log-log axes, accounts per holder "
        "against K_max, role prevalence against targets and the perf table against budgets. "
        "Prints the page's path.")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, ROOT/<run_id>")
    report.add_argument("--config", default=None, metavar="DIR",
                        help="the config folder the run was made with (default: the "
                        "run's own, published beside S0's receipt)")
    report.add_argument("--out", default=None, metavar="DIR",
                        help="where to write report_6A.html and the PNGs (default: "
                        "RUN_DIR/reports/layer3/6A/report)")

    runs = commands.add_parser("runs", help="manage a runs root: keep-set and pruning")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    keep = runs_commands.add_parser(
        "keep", help="record a run in the keep-set",
        description="Record RUN_ID in ROOT/keep_set.json as baseline, candidate, last_good or "
        "a witness; prune never removes a kept run.")
    keep.add_argument("root", metavar="ROOT", help="the runs root")
    keep.add_argument("run_id", metavar="RUN_ID", help="a run folder under ROOT")
    keep.add_argument("--as", dest="role", required=True,
                      choices=("baseline", "candidate", "last_good", "witness"))
    prune = runs_commands.add_parser(
        "prune", help="list (or with --yes remove) runs outside the keep-set",
        description="List the run folders of ROOT that the keep-set does not name; with "
        "--yes remove them. Nothing else is touched.")
    prune.add_argument("root", metavar="ROOT", nargs="?", default="runs",
                       help="the runs root (default: ./runs, where run writes)")
    prune.add_argument("--yes", action="store_true", help="remove them (default: dry run)")

    config = commands.add_parser("config", help="inspect and validate configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    validate = config_commands.add_parser(
        "validate",
        help="validate the embedded config overlaid by --config DIR, and the world",
        description="Check every config file against its contract and the world; "
        "exit 0 if valid, 2 naming the file and key otherwise.",
    )
    validate.add_argument("--config", default=None, metavar="DIR", help=OVERLAY_HELP)
    _waive_flag(validate)
    export = config_commands.add_parser(
        "export", help="write the embedded defaults into DIR, to edit and pass as --config",
        description="Write every embedded config file (scales.yaml, priors/, policy/ and the "
        "world/) into DIR, a new or empty folder. Edit what you need and run with --config "
        "DIR; unedited files give the embedded defaults' bytes.")
    export.add_argument("dir", metavar="DIR", help="a new or empty folder")
    return parser


def _waive_flag(parser):
    parser.add_argument("--waive", default=None, metavar="REASON",
                        help="accept a --config that loosens the embedded validation policy "
                        "(thresholds, min_support, required seeds, ...), recording REASON as a "
                        "waiver on every verdict it touches; without it such a config is "
                        "refused")


def _script_flags(parser):
    parser.add_argument("--quiet", action="store_true",
                        help="no progress or summary on standard error (errors still shown)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary on standard output instead of the plain "
                        "result (for scripts)")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    # NUMBA_NUM_THREADS is read once, when numba is first imported; once numba runs in
    # this process, changing it breaks later compiles, and _apply_threads lowers instead.
    if getattr(args, "threads", None) is not None and "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    from .errors import InputError

    try:
        if args.command == "run":
            return _run(args)
        if args.command == "certify":
            return _certify(args)
        if args.command == "gates":
            return _gates(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "perf":
            return _perf(args)
        if args.command == "report":
            return _report(args)
        if args.command == "verify":
            return _verify(args)
        if args.config_command == "export":
            return _config_export(args)
        return _config_validate(args)
    except InputError as exc:
        _err(f"seg6a: error: {exc}")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader went away (e.g. `seg6a gates RUN | head`): not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the CLI reports every failure and exits 1
        _err(f"seg6a: failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE


def _run(args):
    from .api import simulate
    from .runs.layout import new_run_id

    _apply_threads(args.threads)
    run_id = args.run_id if args.run_id is not None else new_run_id()
    say = (lambda text: None) if args.quiet else _err
    started = time.perf_counter()
    result = simulate(
        args.seed,
        scale=args.scale,
        config=args.config,
        out=args.out,
        engine=args.engine,
        run_id=run_id,
        progress=None if args.quiet else _progress(),
        from_state=args.from_state,
        waive=args.waive,
    )
    with result:  # stops a Dask cluster started for the run
        return _summarise_run(args, result, run_id, time.perf_counter() - started, say)


def _summarise_run(args, result, run_id, wall, say):
    """The one-screen summary of a run, and its exit code."""
    from .judging import shown

    rows = [
        (name, f"{d.num_rows:,}", str(len(d.block_offsets) - 1))
        for name, d in result.datasets.items()
    ]
    say("")
    say(_table(("dataset", "rows", "parts"), rows))
    say(f"\nrun {run_id}: seed {result.seed}, scale {result.scale.name}, "
        f"{wall:.2f} s -> {result.run_dir}")
    report = result.fraud.report
    say(f"S5 validation: {shown(report['overall_status'], report['waivers'])}")
    for failure in report["failures"]:
        say(_failure_line(failure["check_id"], failure))
    _say_judging(say, report, args.waive)
    if args.json:
        _print_json({
            "run_id": run_id, "run_dir": str(result.run_dir), "seed": result.seed,
            "scale": result.scale.name, "seconds": round(wall, 3),
            "datasets": {name: d.num_rows for name, d in result.datasets.items()},
            "validation": report["overall_status"], "failures": report["failures"],
            "waivers": report["waivers"], "overrides": report["overrides"],
            "gates": {r["test_id"]: {"value": r["value"], "pass_B": r["pass_B"],
                                     "pass_Bplus": r["pass_Bplus"], "reason": r["reason"]}
                      for r in result.fraud.gates},
        })
    else:
        print(run_id)
    return EXIT_OK if result.fraud.passed else EXIT_HOLD


def _certify(args):
    from .api import certify
    from .runs.layout import new_run_id

    run_id = args.run_id if args.run_id is not None else new_run_id()
    say = (lambda text: None) if args.quiet else _err
    started = time.perf_counter()
    outcome = certify(
        seeds=args.seeds, scale=args.scale, config=args.config, out=args.out, run_id=run_id,
        engine=args.engine, waive=args.waive, baseline=args.baseline,
        progress=None if args.quiet else (
            lambda seed, state, seconds: _progress(f"seed {seed}: ")(state, seconds)),
    )
    summary = outcome.summary
    say("")
    _say_certification(say, summary, run_id=run_id, out=args.out, config=args.config)
    say(f"\ncertify {run_id}: seeds {','.join(map(str, summary['seeds']))}, scale "
        f"{summary['scale']}, {time.perf_counter() - started:.1f} s -> {outcome.run_dir}")
    _say_judging(say, summary, args.waive)
    if args.json:
        t9 = summary["T9"]
        _print_json({"decision": outcome.decision, "shown": outcome.shown,
                     "reason": summary["reason"], "run_dir": str(outcome.run_dir),
                     "seeds": summary["seeds"], "evidence": summary["evidence"],
                     "failures": summary["failures"],
                     "T9": {k: t9[k] for k in ("value", "pass_B", "pass_Bplus", "worst_metric")},
                     "pooled": summary["pooled"], "waivers": summary["waivers"],
                     "overrides": summary["overrides"]})
    else:
        print(outcome.shown)
    return EXIT_HOLD if outcome.decision == "HOLD_REMEDIATE" else EXIT_OK


def _say_certification(say, summary, run_id=None, out=None, config=None):
    """The pooled table of a certification, its failures with their remedies, and what
    would complete its evidence when it is incomplete."""
    from .gates.tables import verdict
    from .judging import completing_command

    rows = [(r["test_id"], _number(r["value"]), verdict(r),
             ",".join(map(str, r["failing_seeds"])) or "-") for r in summary["pooled"]]
    t9 = summary["T9"]
    rows.insert(8, (t9["test_id"], _number(t9["value"]), verdict(t9), t9["worst_metric"] or "-"))
    say(_table(("test", "worst value", "pass", "failing seeds / worst metric"), rows))
    for failure in summary["failures"]:
        say(_failure_line(f"{failure['test_id']} (seed {failure['seed']})", failure))
    if summary.get("baseline"):
        say(f"baseline {summary['baseline']}: {len(summary['regressions'])} regression(s) "
            f"(gate_delta_6A.json)")
    if summary.get("baseline_not_compared"):
        say(f"not compared: {summary['baseline_not_compared']}")
    if summary["reason"] == "posture_regression":
        say("HOLD_REMEDIATE: posture regression: the last good posture was PASS_BPLUS and "
            "this reaches only B")
    if summary["reason"] == "incomplete_evidence":
        found = summary["evidence"]
        lacking = []
        if found["missing_seeds"]:
            lacking.append("required seeds " + ",".join(map(str, found["missing_seeds"])))
        if found["n_parties"] < found["min_parties"]:
            lacking.append(f"scale {found['scale']} ({found['n_parties']:,} parties) below "
                           f"min_scale {found['min_scale']} ({found['min_parties']:,})")
        say(f"HOLD_REMEDIATE: incomplete evidence: {'; '.join(lacking)}. Complete it with:\n"
            f"  {completing_command(summary, run_id=run_id, out=out, config=config)}")


def _failure_line(what, failure):
    component = f" [{failure['component']}]" if failure.get("component") else ""
    remedy = failure.get("remedy") or (f"rerun {failure['rerun']}" if failure["rerun"]
                                       else "more support: a larger --scale")
    return (f"  {what}{component} failed ({failure['reason']}): owner "
            f"{failure['owner_state']}, {remedy}")


def _say_judging(say, document, waive):
    """The waivers and overrides a verdict carries (a summary or S5's report)."""
    for waiver in document["waivers"]:
        say(f"  waiver: {waiver['key']} {waiver['embedded']!r} -> {waiver['value']!r} "
            f"({waiver['reason']})")
    for override in document["overrides"]:
        say(f"  override: {override['key']} {override['embedded']!r} -> {override['value']!r}")
    if waive and not document["waivers"]:
        say("  note: --waive was given, but the config loosens nothing")


def _gates(args):
    import contextlib
    import json

    from .errors import InputError
    from .gates import format_board
    from .runs import layout
    from .runs.commit import reading
    from .runs.store import location

    run_dir = location(args.run_dir)
    if args.rejudge:
        from .api import rejudge

        rejudged = rejudge(run_dir, config=args.config, waive=args.waive)
        held = (rejudged.certification.decision == "HOLD_REMEDIATE"
                if rejudged.certification is not None else
                any(r["overall_status"] != "PASS" for r in rejudged.reports.values()))
    elif args.config is not None or args.waive is not None:
        raise InputError("--config and --waive judge a run anew: add --rejudge")
    with contextlib.nullcontext() if args.rejudge else reading(run_dir):
        boards = layout.gateboards(run_dir)
        if not boards:
            raise InputError(f"no gateboard under {layout.validation_dir(run_dir)}; "
                             "is this a run folder?")
        if args.json:
            _print_json({str(seed): json.loads(path.read_text(encoding="utf-8"))
                         for seed, path in boards})
        else:
            for seed, path in boards:
                records = json.loads(path.read_text(encoding="utf-8"))
                print(f"seed={seed}")
                print(format_board(records))
                waivers = {(w["key"], w["reason"])
                           for r in records for w in r.get("waivers", [])}
                for key, reason in sorted(waivers):
                    print(f"waiver: {key} ({reason})")
                overrides = {(o["key"], repr(o["embedded"]), repr(o["value"]))
                             for r in records for o in r.get("overrides", [])}
                for key, before, after in sorted(overrides):
                    print(f"override: {key} {before} -> {after}")
                print()
            summary = layout.validation_dir(run_dir) / layout.CERTIFICATION_SUMMARY
            if summary.exists():
                content = json.loads(summary.read_text(encoding="utf-8"))
                reason = f" ({content['reason']})" if content.get("reason") else ""
                print(f"certification: {content['decision_shown']}{reason} over seeds "
                      f"{','.join(map(str, content['seeds']))}, scale {content['scale']}")
    if args.rejudge:
        return EXIT_HOLD if held else EXIT_OK
    return EXIT_OK


def _verify(args):
    from .runs.commit import verify

    found = verify(args.run_dir)
    if args.json:
        _print_json(found)
    else:
        for kind in ("missing", "changed", "unexpected"):
            for path in found[kind]:
                print(f"{kind}: {path}")
        for line in found["receipts"]:
            print(f"receipt: {line} with another hash than the manifest")
        print(f"{args.run_dir}: {found['files']} files, "
              + ("verified" if found["ok"] else "NOT verified"))
    return EXIT_OK if found["ok"] else EXIT_UNVERIFIED


def _perf(args):
    import json

    from .errors import InputError
    from .perf import budget_rows
    from .runs.store import location

    folder = location(args.run_dir) / "reports" / "layer3" / "6A" / "perf"
    summaries = sorted(folder.glob("seed=*/*/*/perf_summary_6A.json"))
    if not summaries:
        raise InputError(f"no perf summary under {folder}; is this a run folder?")
    if args.json:
        _print_json({path.parts[-4].split("=", 1)[1]: {
            "summary": json.loads(path.read_text(encoding="utf-8")),
            "budget_check": json.loads((path.parent / "perf_budget_check_6A.json").read_text(
                encoding="utf-8"))} for path in summaries})
        return EXIT_OK
    for path in summaries:
        summary = json.loads(path.read_text(encoding="utf-8"))
        check = json.loads((path.parent / "perf_budget_check_6A.json").read_text(encoding="utf-8"))
        rows = budget_rows(summary, check)
        print(f"{path.parts[-4]} scale {summary['scale']}, jit {summary['jit']['mode']}, "
              f"peak RSS {summary['peak_rss_gib']:.2f} GiB, budget check {check['status']}")
        print(_table(("state", "seconds", "budget", ""), rows))
        print("hotspots: " + ", ".join(f"{h['substep']} {h['seconds']:.2f} s"
                                       for h in summary["hotspots"][:5]))
        print()
    return EXIT_OK


def _report(args):
    from .report import write_report

    print(write_report(args.run_dir, config=args.config, out_dir=args.out))
    return EXIT_OK


def _runs(args):
    from .runs import keep

    if args.runs_command == "keep":
        keep_set = keep.keep(args.root, args.run_id, args.role)
        print(_table(("role", "run"), [(role, keep_set[role] or "-")
                                       for role in keep.SINGLE_ROLES]
                     + [("witness", w) for w in keep_set["witnesses"]]))
        return EXIT_OK
    doomed = keep.prune(args.root, dry_run=not args.yes)
    verb = "removed" if args.yes else "would remove"
    for run_id in doomed:
        print(run_id)
    _err(f"{verb} {len(doomed)} run(s) outside the keep-set of {args.root}"
         + ("" if args.yes or not doomed else "; pass --yes to remove them"))
    return EXIT_OK


def _config_export(args):
    from .policies import export_config

    written = export_config(args.dir)
    for path in written:
        print(path)
    _err(f"wrote {len(written)} files; edit them and pass --config {args.dir}")
    return EXIT_OK


def _config_validate(args):
    from .states import s0_gate

    sealed = s0_gate.run(0, None, args.config, waive=args.waive)
    sources = sealed.config.sources
    rows = [(name, "user" if src != "embedded" else "embedded", "ok") for name, src in sources.items()]
    world = "user" if any(i["source"].startswith("user:") for i in sealed.world.inputs) \
        else "embedded"
    rows.append(("world", world, f"{len(sealed.world.countries_vocab)} countries, "
                 f"{len(sealed.world.regions_vocab)} regions, "
                 f"{sealed.world.merchants.num_rows:,} merchants"))
    print(_table(("file", "source", "status"), rows))
    print(f"config valid: parameter_hash {sealed.parameter_hash[:16]}..., "
          f"manifest_fingerprint {sealed.manifest_fingerprint[:16]}..., "
          f"validation_hash {sealed.judging.validation_hash[:16]}...")
    judging = sealed.judging
    _say_judging(print, {"waivers": judging.waivers, "overrides": judging.overrides},
                 args.waive)
    return EXIT_OK


def _apply_threads(threads):
    if threads is None:
        return
    import numba

    # numba may have been imported before main() ran (e.g. inside a test process); it can
    # then still lower the thread count, never raise it.
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _progress(prefix=""):
    """Per-state progress: a bar redrawn in place on a terminal, plain lines otherwise."""
    states = ("S0", "S1", "S2", "S3", "S4", "S5")
    if not sys.stderr.isatty():
        return lambda state, seconds: _err(f"  {prefix}{state} done in {seconds:.2f} s")

    def bar(state, seconds):
        done = states.index(state) + 1 if state in states else len(states)
        filled = "#" * (4 * done) + "-" * (4 * (len(states) - done))
        end = "\n" if done == len(states) else ""
        print(f"\r  {prefix}[{filled}] {state} done in {seconds:.2f} s ", end=end,
              file=sys.stderr, flush=True)
    return bar


def _print_json(obj):
    import json

    print(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False))


def _seed_list(text):
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return seeds


def _number(value):
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(header, rows):
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in (header, tuple("-" * w for w in widths), *rows)]
    return "\n".join(lines)


def _err(text):
    print(text, file=sys.stderr, flush=True)


def _version():
    from . import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
