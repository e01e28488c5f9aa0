"""The Python API: ``simulate``, ``certify`` and ``rejudge``. Orchestration only; the
numerics live in the states and the gates."""
import json
import weakref

from . import __version__, kernel_cache
from .kernels.prf import PRF_VERSION
from .perf import PerfRecorder
from .runs import keep, layout, receipts
from .runs.commit import RunCommit, check_committed, read_manifest
from .runs.publish import digest, json_bytes, jsonl_bytes, sha256_hex, stage_files
from .runs.store import is_remote, location, remove
from .states import s0_gate, s1_parties, s2_accounts, s3_instruments, s4_devices, s5_fraud_roles
from .engine import ENGINES, DaskEngine, make_engine
from .errors import InputError, ParameterError, PublishConflictError
from .gates import data as gate_data



class SimulationResult:
    """The outcome of one ``simulate`` call.

    The accounts, instruments, devices, roles and tables are kept per canonical block where
    the engine computed them (on the workers, with Dask; the tables as their Parquet
    bytes) and joined when first read; ``close()`` (or ``with``) releases them and stops a
    cluster ``simulate`` started.

    Attributes
    ----------
    seed : int
    scale : seg6a.policies.Scale
    sealed : seg6a.states.s0_gate.Sealed
        Validated config, world and the run's hashes.
    parties : seg6a.states.s1_parties.PartyBase
        The party population as arrays.
    accounts : seg6a.states.s2_accounts.Accounts
        Accounts as arrays, with the CSR ``party -> accounts`` and the K_max counters.
    instruments : seg6a.states.s3_instruments.Instruments
        Instruments as arrays, with the CSR ``account -> instruments``.
    devices : seg6a.states.s4_devices.DeviceGraph
        Devices and IPs as arrays, with the CSRs ``device -> parties``, ``device -> ips``
        and ``ip -> devices``.
    fraud : seg6a.states.s5_fraud_roles.FraudPosture
        Roles per entity kind, S5's validation report and the uplift evidence.
    datasets : dict
        Dataset name -> ``seg6a.tables.Dataset``.
    perf : list of dict
        One event per timed substep (``state, substep, seconds, rows``).
    run_dir : pathlib.Path or None
        Where the run was published, if it was.
    """

    def __init__(self, sealed, parties, accounts, instruments, devices, fraud, datasets,
                 substreams, perf, engine):
        self.sealed = sealed
        self.seed = sealed.seed
        self.scale = sealed.scale
        self.parties = parties
        self.accounts = accounts
        self.instruments = instruments
        self.devices = devices
        self.fraud = fraud
        self.datasets = {d.name: d for d in datasets}
        self._substreams = substreams
        self._perf = perf
        self.run_dir = None
        # The blocks stay where the engine computed them until the result is closed (or
        # collected): a cluster started for the run lives as long as its result.
        self._engine = engine
        weakref.finalize(self, engine.close)

    def close(self):
        """Release the engine's blocks (and stop the cluster ``simulate`` started for them);
        arrays and tables not read before are gone then."""
        self._engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def perf(self):
        return list(self._perf.events)

    @property
    def gates(self):
        """The gateboard T1-T10 of this seed as an ``xarray.Dataset`` (dim ``test``)."""
        from .gates import to_xarray

        return to_xarray(self.fraud.gates)

    @property
    def tables(self):
        """Dataset name -> ``pyarrow.Table``."""
        return {name: d.table for name, d in self.datasets.items()}

    def table(self, name):
        """The ``pyarrow.Table`` of one dataset, e.g. ``"s1_party_base_6A"``."""
        try:
            return self.datasets[name].table
        except KeyError:
            known = ", ".join(self.datasets)
            raise KeyError(f"no dataset {name!r}; datasets: {known}") from None

    def write(self, run_dir, rerun_from=None):
        """Publish every output into the run folder ``run_dir``; return its path.

        Publishing is idempotent: writing the same result again changes nothing. If any
        target already holds different data, ``PublishConflictError`` is raised before
        anything is written. With ``rerun_from`` (a state, e.g. ``"S5"``), the states before
        it must reproduce exactly the outputs their receipts list, and the evidence of the
        rerun states (their receipts, the RNG audit, the gateboard) is superseded.
        """
        run_dir = location(run_dir)
        sealed = self.sealed
        seed, mf = sealed.seed, sealed.manifest_fingerprint
        files = {}  # published path -> bytes (the parts: their staged files' records)
        s0_files = s0_gate.published_files(
            sealed, layout.partition_dir(run_dir, "s0_gate_receipt_6A", seed,
                                         sealed.parameter_hash, mf),
            layout.partition_dir(run_dir, s0_gate.MERCHANT_BASE, seed, sealed.parameter_hash,
                                 mf))
        files.update(s0_files)
        rng_rows, audit_rows = [], []
        for rng in self._substreams:
            with self._perf.substep(rng.state, "rng_publish"):
                rng_rows.extend(rng.trace)
                audit_rows.extend(rng.audit())
        # The gates' draws last: a rejudge replaces them and keeps the states' rows.
        rng_rows.extend(self.fraud.gate_streams.trace)
        audit_rows.extend(self.fraud.gate_streams.audit())
        rng_dir = layout.rng_dir(run_dir, seed)
        files.update(rng_files(rng_dir, audit_rows, rng_rows))
        verdict, _ = judgement_files(run_dir, sealed, self.fraud.report, self.fraud.gates)
        files.update(verdict)
        with RunCommit(run_dir) as run:
            # Staged under the run's lock (a commit collects the staged files it finds); the
            # commit places or removes them, an error before it removes them here.
            staged = self._stage_parts(run_dir)
            try:
                self._commit(run, files, staged, verdict, s0_files, rerun_from)
            except BaseException:
                for _, _, record in staged:
                    remove(record.path)
                raise
        self.run_dir = run_dir
        return run_dir

    def _stage_parts(self, run_dir):
        """Have every dataset part written where its block is (on a worker, straight to the
        destination), under a staging name beside its published path; return
        ``[(state, path, Staged)]``: the records come back, never the bytes."""
        sealed = self.sealed
        with self._perf.substep("publish", "stage_parts") as event:
            jobs = {}  # block -> [(state, path, part)], staged by one task
            for dataset in self.datasets.values():
                folder = layout.partition_dir(run_dir, dataset.name, sealed.seed,
                                              dataset.parameter_hash,
                                              sealed.manifest_fingerprint)
                for block, part in enumerate(dataset.part_handles):
                    jobs.setdefault(block, []).append(
                        (dataset.state, folder / layout.part_name(block), part))
            jobs = list(jobs.values())
            records = self._engine.map(stage_files,
                                       [[path for _, path, _ in job] for job in jobs],
                                       [[part for _, _, part in job] for job in jobs])
            event["rows"] = sum(d.num_rows for d in self.datasets.values())
        return [(state, path, record) for job, staged in zip(jobs, records)
                for (state, path, _), record in zip(job, staged)]

    def _commit(self, run, files, staged, verdict, s0_files, rerun_from):
        """Commit the staged parts and ``files`` into the open ``run``, with every state's
        receipt and the perf files (a rerun ``--from`` a state retires what it supersedes)."""
        run_dir, seed = run.run_dir, self.sealed.seed
        outputs = {}  # state -> its outputs' relative paths -> SHA-256, in state order
        for state, path, record in staged:
            files[path] = record
            outputs.setdefault(state, {})[path.relative_to(run_dir).as_posix()] = record.sha256
        for path, data in verdict.items():
            outputs["S5"][path.relative_to(run_dir).as_posix()] = sha256_hex(data)
        rng_dir = layout.rng_dir(run_dir, seed)
        if rerun_from is not None:
            receipts.check_recomputed(run_dir, seed, rerun_from, outputs)
        perf_files = self._perf_files(run_dir)
        # What this seed had and no longer publishes (a rerun's old partitions, a flag
        # its new verdict withdraws), and a certification (and freeze) judged on the
        # old data.
        retired, new = [], {run.relative(p) for p in [*files, *perf_files, *(
            receipts.receipt_path(run_dir, seed, state) for state in outputs)]}
        if rerun_from is not None:
            retired = [p for p in run.committed if f"seed={seed}" in p.split("/")
                       and p not in new]
            changed = retired or any(
                run.committed.get(run.relative(p), {}).get("sha256") != digest(data)
                for p, data in files.items())
            for name in (layout.CERTIFICATION_SUMMARY, layout.GATE_DELTA, layout.FREEZE):
                judged = run.relative(layout.validation_dir(run_dir) / name)
                if changed and judged in run.committed:
                    retired.append(judged)
        self._add_receipts(files, run_dir, outputs, rerun_from, [
            {"path": p, "sha256": run.committed[p]["sha256"]} for p in retired], new)
        replace = ()
        if rerun_from is not None:
            rerun = receipts.STATES[receipts.STATES.index(rerun_from):]
            replace = [receipts.receipt_path(run_dir, seed, state) for state in rerun]
            replace += [rng_dir / "rng_audit_6A.json", rng_dir / "rng_trace_6A.jsonl"]
            # A rerun whose S5 partition is the old one's (only the judging changed)
            # supersedes its verdict; S0's receipt and published config change in place
            # with any policy a partition path does not carry (the perf budgets, the
            # judging policy).
            replace += list(verdict) + list(s0_files)
        with self._perf.substep("publish", "publish_files") as event:
            try:
                written = run.publish(files, replace=replace,
                                      retire=[run_dir / p for p in retired])
            except PublishConflictError as conflict:
                if rerun_from is None:
                    raise
                # A rerun state's parameters are unchanged where its paths are: another
                # --from cannot help.
                raise PublishConflictError(
                    "already holds different data: the code or the engine computes other "
                    f"bytes than it did, and {receipts.NEW_RUN_ID}", file=conflict.file) from None
            event["rows"] = written
        if written or any(run.relative(p) not in run.committed for p in perf_files):
            # Measurements of the run that produced what was just committed: they differ
            # from run to run, so the latest producing run's replace earlier ones.
            run.publish(self._perf_files(run_dir), replace=perf_files)

    def _add_receipts(self, files, run_dir, outputs, rerun_from, superseded, live):
        """Every state's receipt into ``files``. The ``--from`` state's adds the files this
        rerun supersedes to those its earlier receipt listed (``superseded``; but none this
        publish makes live again, ``live``), so that completing an interrupted rerun, or
        repeating it, gives the same bytes."""
        sealed = self.sealed
        seed, mf = sealed.seed, sealed.manifest_fingerprint
        s0_inputs = next(data for path, data in files.items()
                         if path.name == "sealed_inputs_6A.json")
        counters = {"S2": self.accounts.counters, "S3": self.instruments.counters,
                    "S4": self.devices.counters, "S5": self.fraud.counters}
        modulation = {"S2": self.accounts.country_modulation,
                      "S3": self.instruments.country_modulation,
                      "S4": self.devices.country_modulation}
        # A state's inputs: the sealed world and every upstream state's published outputs.
        # (The sealed world by name: S0's folder carries the segment hash, which a policy
        # change of a later state changes, and must not make an earlier receipt differ.)
        upstream = {"sealed_inputs_6A.json": sha256_hex(s0_inputs)}
        for state, state_outputs in outputs.items():
            receipt = {
                "state": state,
                "seed": seed,
                "manifest_fingerprint": mf,
                "parameter_hash": sealed.parameter_hashes[state],
                "prf_version": PRF_VERSION,
                "seg6a_version": __version__,
                "inputs": dict(upstream),
                "outputs": state_outputs,
                "counters": counters.get(state, {}),
            }
            if state in modulation:  # the country deltas applied to its priors
                receipt["country_modulation"] = modulation[state]
            if state == "S5":  # the judging policy its verdict files were judged by
                receipt["validation_hash"] = sealed.judging.validation_hash
            path = receipts.receipt_path(run_dir, seed, state)
            earlier = (receipts.load(run_dir, seed, state) or {}).get("superseded", [])
            listed = {(e["path"], e["sha256"])
                      for e in earlier + (superseded if state == rerun_from else [])
                      if e["path"] not in live}
            if listed:
                receipt["superseded"] = [{"path": p, "sha256": d} for p, d in sorted(listed)]
            upstream.update(state_outputs)
            files[path] = json_bytes(receipt)

    def _perf_files(self, run_dir):
        """The perf artifacts of this run so far, as files."""
        from . import perf as perf_reports

        sealed = self.sealed
        folder = layout.perf_dir(run_dir, sealed.seed, sealed.parameter_hash,
                                 sealed.manifest_fingerprint)
        summary = perf_reports.summary(self._perf, sealed.scale.name, sealed.seed)
        check = perf_reports.budget_check(summary, sealed.config[perf_reports.PERF_BUDGET])
        return {folder / "perf_events_6A.jsonl": jsonl_bytes(self._perf.events),
                folder / "perf_summary_6A.json": json_bytes(summary),
                folder / "perf_budget_check_6A.json": json_bytes(check)}

    def perf_summary(self):
        """The perf summary of this run so far (as ``perf_summary_6A.json``)."""
        from . import perf as perf_reports

        return perf_reports.summary(self._perf, self.sealed.scale.name, self.sealed.seed)


def judgement_files(run_dir, sealed, report, gates):
    """The verdict of one seed as files: S5's validation report, its ``_passed.flag`` when it
    passes, and the gateboard; and the flag's path when it does not pass (to withdraw)."""
    s5_dir = layout.partition_dir(run_dir, "s5_validation_report_6A", sealed.seed,
                                  sealed.parameter_hashes["S5"], sealed.manifest_fingerprint)
    report_path, flag = s5_dir / s5_fraud_roles.REPORT, s5_dir / s5_fraud_roles.PASSED_FLAG
    files = {report_path: json_bytes(report)}
    passed = report["overall_status"] == "PASS"
    if passed:
        # Fail-closed: consumers read the segment only where this flag exists.
        files[flag] = json_bytes({"state": "S5", "overall_status": "PASS",
                                  "report_sha256": sha256_hex(files[report_path])})
    files[layout.validation_dir(run_dir, sealed.seed) / layout.GATEBOARD] = json_bytes(gates)
    return files, ([] if passed else [flag])


def rng_files(rng_dir, audit_rows, trace_rows):
    """The RNG audit and trace of one seed as files."""
    return {rng_dir / "rng_audit_6A.json": json_bytes({"prf_version": PRF_VERSION,
                                                       "substreams": audit_rows}),
            rng_dir / "rng_trace_6A.jsonl": jsonl_bytes(trace_rows)}


def simulate(seed, scale="small", config=None, out=None, engine="local", run_id=None,
             progress=None, from_state=None, client=None, waive=None):
    """Generate segment 6A for one seed.

    Parameters
    ----------
    seed : int
        In ``[0, 2**63)``. Same seed, config and world give identical bytes.
    scale : str, default "small"
        A preset of ``scales.yaml``: ``tiny`` (20k parties), ``small`` (200k), ``medium``
        (1M), ``full`` (3.7M, the reference surface) or ``xl`` (14.8M, for the Dask engine).
    config : str, os.PathLike or seg6a.policies.Config, optional
        A folder of YAML files that overlay the embedded defaults by file name (and may
        hold a ``world/`` folder replacing the embedded world).
    out : str or os.PathLike, optional
        A runs root; when given, the run is published to ``out/<run_id>/``.
    engine : {"local", "dask"}
        Where the per-block work runs: in this process, or as one task per canonical block
        on a Dask cluster (``client``, else a ``LocalCluster`` of 2 worker processes started
        here). Both give identical bytes. The blocks stay where they were computed, and the
        result's arrays and tables are joined from them when first read; ``result.close()``
        (or dropping the result) releases them and stops a cluster started here.
    run_id : str, optional
        The run folder's name under ``out`` (default: a fresh id).
    progress : callable, optional
        Called as ``progress(state, seconds)`` after each state.
    from_state : {"S1", "S2", "S3", "S4", "S5"}, optional
        Rerun into the existing run ``out/run_id`` from this state: the states before it
        are kept only if their receipts match the current config and world and their files
        are intact (else ``StaleStateError`` names the first stale state, and nothing is
        published).
    client : distributed.Client, optional
        The Dask cluster of ``engine="dask"``.
    waive : str, optional
        The reason for accepting a config that loosens the embedded judging policy (a
        threshold, ``min_support``, ...). Without it such a config is refused; with it every
        verdict the loosened values touch carries a waiver (``seg6a.judging``).

    Returns
    -------
    SimulationResult

    Raises
    ------
    seg6a.errors.InputError
        For any bad input (unknown scale, seed out of range, invalid config or world);
        nothing is published then.

    Examples
    --------
    >>> import seg6a
    >>> result = seg6a.simulate(42, scale="tiny")
    >>> result.table("s1_party_base_6A").num_rows
    20000
    """
    if engine not in ENGINES:
        raise ParameterError(f"unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    if out is not None:
        run_id = layout.check_run_id(run_id) if run_id is not None else layout.new_run_id()
        out = location(out)
        layout.check_output_folder(out / run_id)
    if from_state is not None:
        if from_state not in receipts.STATES:
            raise ParameterError(f"unknown state {from_state!r} for --from; one of "
                                 f"{', '.join(receipts.STATES)}")
        if out is None:
            raise ParameterError("a rerun --from a state needs an existing run: --out ROOT and "
                                 "--run-id of a run folder under it")
        if not (out / run_id).is_dir():
            raise ParameterError(f"run {out / run_id} not found: --from reruns an "
                                 "existing run")
    perf = PerfRecorder()
    with perf.jit_timer():  # on a cold cache, a helper process compiles kernels meanwhile
        warmup = kernel_cache.Warmup()
    try:
        sealed = s0_gate.run(seed, scale, config, perf, waive=waive)
        if from_state is not None:
            _check_rerun(out / run_id, sealed, from_state)
    except BaseException:
        warmup.cancel()
        raise
    _report(progress, perf, "S0")
    with perf.jit_timer():
        warmup.finish()
    runner = make_engine(engine, client)
    try:
        parties, s1_datasets, s1_rng = s1_parties.run(sealed, perf, runner)
        _report(progress, perf, "S1")
        accounts, s2_datasets, s2_rng = s2_accounts.run(sealed, parties, perf, runner)
        _report(progress, perf, "S2")
        instruments, s3_datasets, s3_rng = s3_instruments.run(sealed, parties, accounts, perf,
                                                              runner)
        _report(progress, perf, "S3")
        devices, s4_datasets, s4_rng = s4_devices.run(sealed, parties, perf, runner)
        _report(progress, perf, "S4")
        fraud, s5_datasets, s5_rng = s5_fraud_roles.run(
            sealed, parties, accounts, devices,
            s1_datasets + s2_datasets + s3_datasets + s4_datasets, perf, runner)
        _report(progress, perf, "S5")
    except BaseException:
        runner.close()
        raise
    result = SimulationResult(
        sealed, parties, accounts, instruments, devices, fraud,
        s1_datasets + s2_datasets + s3_datasets + s4_datasets + s5_datasets,
        [s1_rng, s2_rng, s3_rng, s4_rng, s5_rng], perf, runner,
    )
    if out is not None:
        result.write(out / run_id, rerun_from=from_state)
    return result


def _check_rerun(run_dir, sealed, from_state):
    """A ``--from`` rerun needs a committed run holding the seed, and its earlier states
    intact and committed."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        check_committed(run_dir)  # names what is wrong: not a run, or never committed
    if receipts.load(run_dir, sealed.seed, "S1") is None:
        listed = ", ".join(map(str, receipts.seeds(run_dir))) or "none"
        raise ParameterError(f"run {run_dir} has no seed {sealed.seed} (its seeds: {listed}); "
                             "run without --from to add it")
    receipts.check_upstream(run_dir, sealed, from_state, manifest["files"])


def _report(progress, perf, state):
    if progress is not None:
        progress(state, perf.state_seconds().get(state, 0.0))


class CertificationResult:
    """The outcome of ``certify`` (or of a rejudged certification): the decision, the
    summary and where it was published.

    Attributes
    ----------
    decision : str
        ``PASS_BPLUS``, ``PASS_B``, ``RETAIN_PASS_B`` or ``HOLD_REMEDIATE``.
    shown : str
        The decision as displayed, with its number of waivers: ``PASS_BPLUS (2 waivers)``.
    summary : dict
        The content of ``realism_gate_summary_6A.json``.
    run_dir : pathlib.Path or None
    """

    def __init__(self, summary, run_dir):
        self.summary = summary
        self.decision = summary["decision"]
        self.shown = summary["decision_shown"]
        self.run_dir = run_dir

    @property
    def gates(self):
        """Every seed's gateboard as an ``xarray.Dataset`` with dims ``seed, test``."""
        from .gates import to_xarray

        return to_xarray(self.summary["per_seed"])


def certify(seeds=None, scale="full", config=None, out=None, run_id=None, progress=None,
            engine="local", client=None, waive=None, baseline=None):
    """Run the witness seeds and decide (SPEC section 6).

    A certificate needs its evidence: every seed of ``certification.required_seeds`` at a
    scale of at least ``certification.min_scale`` (default ``small``); otherwise the
    decision is ``HOLD_REMEDIATE`` with reason ``incomplete_evidence``, whatever the gates.

    Parameters
    ----------
    seeds : sequence of int, optional
        Default: ``certification.required_seeds`` of the validation policy (42, 7, 101, 202).
        Extra seeds are judged too.
    scale : str, default "full"
        The reference surface (about a minute on a 2-core machine for the four seeds).
    config : as for ``simulate``
    out : str or os.PathLike, optional
        A runs root: every seed is published into ``out/<run_id>/`` (seed partitions) with
        ``layer3/6A/validation/realism_gate_summary_6A.json``, which supersedes an earlier
        certification of the same run.
    run_id : str, optional
    progress : callable, optional
        Called as ``progress(seed, state, seconds)`` after each state of each seed.
    engine, client : as for ``simulate``
        With ``engine="dask"`` and no client, one ``LocalCluster`` serves every seed.
    waive : str, optional
        As for ``simulate``: the reason loosened judging values are accepted for.
    baseline : str or os.PathLike, optional
        A certified run folder every gate is compared with, per seed (default: the
        keep-set's ``baseline`` under ``out``, if any): a regression holds the decision,
        and ``gate_delta_6A.json`` records the comparison. A baseline certified at another
        population size is not comparable: a given one is refused, the keep-set's is not
        compared and the summary says so (``baseline_not_compared``).

    An accepted decision (``PASS_B``, ``PASS_BPLUS``, ``RETAIN_PASS_B``) with ``out`` freezes
    the run (``freeze_6A.json``) and records it as ``last_good`` in ``out/keep_set.json``;
    a ``last_good`` frozen at ``PASS_BPLUS`` makes a mere B ``HOLD_REMEDIATE``
    (``posture_regression``), one frozen at B makes it ``RETAIN_PASS_B``.

    Returns
    -------
    CertificationResult
    """
    if out is not None:
        run_id = layout.check_run_id(run_id) if run_id is not None else layout.new_run_id()
        out = location(out)
        layout.check_output_folder(out / run_id)
    explicit = baseline is not None
    baseline = _baseline(out, run_id, baseline)  # refused before any seed runs
    sealed = s0_gate.run(0, scale, config, PerfRecorder(), waive=waive)
    not_compared = _incomparable(baseline, sealed)
    if not_compared is not None:
        if explicit:
            raise InputError(f"{not_compared}; give a baseline certified at this scale",
                             file=baseline)
        baseline = None  # the keep-set's: not compared, and the summary says why
    policy = sealed.judging.policy
    seeds = list(policy["certification"]["required_seeds"] if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ParameterError(f"certification needs distinct seeds, got {seeds}")
    if engine not in ENGINES:
        raise ParameterError(f"unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    cluster = DaskEngine() if engine == "dask" and client is None else None
    boards = []
    try:
        for seed in seeds:
            report = None if progress is None else (
                lambda state, s, seed=seed: progress(seed, state, s))
            result = simulate(seed, scale=scale, config=sealed.config, out=out, run_id=run_id,
                              progress=report, engine=engine, waive=waive,
                              client=cluster.client if cluster is not None else client)
            boards.append(result.fraud.gates)
            del result  # one seed's arrays at a time
    finally:
        if cluster is not None:
            cluster.close()
    run_dir = None if out is None else out / run_id
    last_good = None if out is None else keep.last_good_decision(out)
    return _certification(sealed, boards, run_dir, baseline, last_good, not_compared)


def _incomparable(baseline, sealed):
    """Why ``baseline`` cannot be compared with a certification of ``sealed``'s scale (gate
    values such as tails and CIs depend on the population), or None."""
    if baseline is None:
        return None
    summary = json.loads((layout.validation_dir(baseline) / layout.CERTIFICATION_SUMMARY)
                         .read_text(encoding="utf-8"))
    theirs = summary.get("evidence", {}).get("n_parties")
    ours = sealed.receipt["scale"]["n_parties"]
    if theirs is None or theirs == ours:
        return None
    return (f"baseline {baseline.name} was certified at {theirs:,} parties "
            f"({summary.get('scale')}), this certification runs {ours:,}: gates at "
            "different scales are not comparable")


def _baseline(out, run_id, baseline):
    """The baseline run folder of a certification: the given one (which must be a committed,
    certified run), else the keep-set's ``baseline`` under ``out`` (not the run itself)."""
    if baseline is None:
        name = None if out is None else keep.load(out)["baseline"]
        if not name or name == run_id or not (location(out) / name).is_dir():
            return None
        baseline = location(out) / name
    baseline = location(baseline)
    if not is_remote(baseline):
        baseline = baseline.resolve()
    check_committed(baseline)
    if not (layout.validation_dir(baseline) / layout.CERTIFICATION_SUMMARY).exists():
        raise InputError("is not a certified run; a baseline is one (`seg6a certify`)",
                         file=baseline)
    return baseline


def _baseline_evidence(baseline):
    """``(boards, T9)`` of a baseline run folder."""
    boards = [json.loads(path.read_text(encoding="utf-8"))
              for _, path in layout.gateboards(baseline)]
    summary = layout.validation_dir(baseline) / layout.CERTIFICATION_SUMMARY
    t9 = json.loads(summary.read_text(encoding="utf-8"))["T9"] if summary.exists() else None
    return boards, t9


def _certification(sealed, boards, run_dir, baseline=None, last_good=None, not_compared=None):
    """Decide over the seeds' boards; with ``run_dir``, publish the summary (and the gate
    delta against ``baseline``, and the freeze of an accepted decision) in one commit, then
    record a frozen run as the keep-set's ``last_good``."""
    if run_dir is None:
        summary = _certification_summary(sealed, boards, baseline, last_good, not_compared)
        summary.pop("gate_delta")
        return CertificationResult(summary, run_dir)
    with RunCommit(run_dir) as run:
        summary, files, retire = _certification_files(run, sealed, boards, baseline, last_good,
                                                      not_compared=not_compared)
        run.publish(files, replace=list(files), retire=retire)
    return _frozen(CertificationResult(summary, run_dir))


def _certification_files(run, sealed, boards, baseline, last_good, pending=None,
                         not_compared=None):
    """``(summary, files, retire)`` of a certification inside an open commit: the summary,
    the gate delta against ``baseline`` and the freeze of an accepted decision (the files
    it no longer earns are retired). ``pending``: files the same commit publishes with it
    (a rejudge's verdicts), which the freeze lists as they will be."""
    from .gates.certification import ACCEPTED

    summary = _certification_summary(sealed, boards, baseline, last_good, not_compared)
    delta = summary.pop("gate_delta")
    folder = layout.validation_dir(run.run_dir)
    files = {folder / layout.CERTIFICATION_SUMMARY: json_bytes(summary)}
    if baseline is not None:
        files[folder / layout.GATE_DELTA] = json_bytes({
            "baseline": str(baseline), "candidate": str(run.run_dir), "gates": delta,
            "perf": _perf_delta(baseline, run.run_dir, summary["seeds"])})
    if summary["decision"] in ACCEPTED:
        files[folder / layout.FREEZE] = json_bytes(_freeze(run, sealed, summary, pending or {}))
    retire = [folder / name for name in (layout.GATE_DELTA, layout.FREEZE)
              if folder / name not in files]
    return summary, files, retire


def _frozen(certification):
    """Record a frozen run as its root's ``last_good`` (after its commit); returns it."""
    from .gates.certification import ACCEPTED

    if certification.decision in ACCEPTED:
        keep.record_last_good(certification.run_dir.parent, certification.run_dir.name,
                              certification.decision)
    return certification


def _freeze(run, sealed, summary, pending):
    """``freeze_6A.json``: what an accepted posture stands on, to the byte."""
    digests = {path: entry["sha256"] for path, entry in run.committed.items()}
    digests.update({run.relative(path): sha256_hex(data) for path, data in pending.items()})
    by_seed = {seed: {path: digest for path, digest in sorted(digests.items())
                      if f"seed={seed}" in path.split("/") and not path.startswith("reports/")}
               for seed in summary["seeds"]}
    configs = {seed: layout.partition_dir(".", "s0_gate_receipt_6A", seed, sealed.parameter_hash,
                                          sealed.manifest_fingerprint).joinpath(
        s0_gate.CONFIG_FOLDER).as_posix().removeprefix("./") for seed in summary["seeds"]}
    return {"decision": summary["decision"], "seeds": summary["seeds"],
            "scale": summary["scale"], "seg6a_version": __version__,
            "prf_version": PRF_VERSION, "policies": sealed.receipt["policies"],
            "parameter_hashes": sealed.parameter_hashes,
            "validation_hash": summary["validation_hash"],
            "manifest_fingerprint": sealed.manifest_fingerprint,
            "config": configs, "files": by_seed, "waivers": summary["waivers"]}


def _perf_delta(baseline, run_dir, seeds):
    """Seconds per state of each seed against the baseline's (reported, never judged)."""
    def state_seconds(folder, seed):
        found = sorted(location(folder).glob(f"reports/layer3/6A/perf/seed={seed}/*/*/"
                                         "perf_summary_6A.json"))
        return json.loads(found[0].read_text(encoding="utf-8"))["state_seconds"] \
            if found else None

    out = {}
    for seed in seeds:
        old, new = state_seconds(baseline, seed), state_seconds(run_dir, seed)
        if old is not None and new is not None:
            out[str(seed)] = {state: {"baseline": old[state], "candidate": new[state],
                                      "delta": round(new[state] - old[state], 6)}
                              for state in new if state in old}
    return out


def _certification_summary(sealed, boards, baseline=None, last_good=None, not_compared=None):
    from .gates.certification import decide
    from .judging import evidence

    seeds = [board[0]["seed"] for board in boards]
    summary = decide(sealed.judging.policy, boards,
                     evidence(sealed.judging.policy, seeds, sealed.receipt["scale"]),
                     sealed.judging,
                     baseline=None if baseline is None else _baseline_evidence(baseline),
                     last_good=last_good)
    summary.update(parameter_hash=sealed.parameter_hash,
                   manifest_fingerprint=sealed.manifest_fingerprint,
                   baseline=None if baseline is None else str(baseline))
    if not_compared is not None:
        summary["baseline_not_compared"] = not_compared
    return summary


class Rejudged:
    """The outcome of ``rejudge``.

    Attributes
    ----------
    boards : dict
        Seed -> its new gateboard (list of records).
    reports : dict
        Seed -> S5's new validation report.
    certification : CertificationResult or None
        The new decision, when the run was certified.
    run_dir : pathlib.Path
    """

    def __init__(self, boards, reports, certification, run_dir):
        self.boards = boards
        self.reports = reports
        self.certification = certification
        self.run_dir = run_dir


def rejudge(run_dir, config=None, waive=None, engine="local", client=None):
    """Judge a published run anew under a (changed) validation policy, from its Parquet.

    The judging policy generates nothing, so a change to it needs no state rerun: every
    seed's gateboard, S5 validation report and ``_passed.flag``, S5's receipt, the gates'
    rows of the RNG audit and, for a certified run, the certification summary are
    recomputed from the published parts and superseded; no dataset byte changes.

    Parameters
    ----------
    run_dir : str or os.PathLike
        A run folder, ``ROOT/<run_id>``.
    config : str, os.PathLike or seg6a.policies.Config, optional
        The config the run was made with, with the validation policy to judge by; its other
        policies must be the run's (else ``StaleStateError`` names the state they change).
        Default: the run's own published config (which reproduces its verdicts).
    waive : str, optional
        As for ``simulate``.
    engine, client : as for ``simulate``

    Returns
    -------
    Rejudged
    """
    run_dir = location(run_dir)
    if read_manifest(run_dir) is None:
        check_committed(run_dir)  # names what is wrong: not a run, or never committed
    seeds = receipts.seeds(run_dir)
    summary_path = layout.validation_dir(run_dir) / layout.CERTIFICATION_SUMMARY
    runner = make_engine(engine, client)
    boards, reports, sealed_of, files, withdrawn = {}, {}, {}, {}, []
    try:
        # One commit for the whole run: its verdicts change together or not at all.
        with RunCommit(run_dir) as run:
            for seed in seeds:
                s0_folder = _published_s0(run_dir, seed)
                scale = json.loads((s0_folder / "s0_gate_receipt_6A.json").read_text(
                    encoding="utf-8"))["scale"]["name"]
                # By default the run's own config judges: a rejudge without --config
                # reproduces the verdicts it has.
                sealed = sealed_of[seed] = s0_gate.run(
                    seed, scale, config if config is not None else
                    s0_folder / s0_gate.CONFIG_FOLDER, waive=waive)
                # The data judged must be the committed data (the verdict files are what
                # this recomputes, and may be an interrupted rejudge's).
                receipts.check_states(run_dir, sealed, receipts.STATES, run.committed)
                parts = {path: digest for state in receipts.STATES
                         for path, digest in receipts.load(run_dir, seed, state)["outputs"].items()
                         if path.endswith(".parquet")}
                blocks, bases = gate_data.published_blocks(run_dir, parts)
                gates, report, streams = s5_fraud_roles.judge(sealed, blocks, bases, runner)
                seed_files, seed_withdrawn = _judgement(run_dir, sealed, gates, report, streams)
                files.update(seed_files)
                withdrawn += seed_withdrawn
                boards[seed], reports[seed] = gates, report
            certification = None
            if run.relative(summary_path) in run.committed:
                # Judged anew in the context it was certified in: its baseline and the
                # posture that was last good then.
                old = json.loads(summary_path.read_text(encoding="utf-8"))
                lost = [s for s in old["seeds"] if s not in boards]
                if lost:
                    raise InputError(f"its certified seeds {lost} are no longer in the run; "
                                     "certify it anew", file=run_dir)
                baseline = old.get("baseline")
                if baseline is not None:
                    if not location(baseline).is_dir():
                        raise InputError(f"the baseline it was certified against, {baseline}, "
                                         "is gone; certify it anew", file=run_dir)
                    baseline = _baseline(None, None, baseline)
                # The evidence of the certified seeds: the smallest scale among them.
                smallest = min(old["seeds"],
                               key=lambda s: sealed_of[s].receipt["scale"]["n_parties"])
                summary, certified, retire = _certification_files(
                    run, sealed_of[smallest], [boards[s] for s in old["seeds"]], baseline,
                    old.get("last_good_decision"), pending=files,
                    not_compared=old.get("baseline_not_compared"))
                files.update(certified)
                withdrawn += retire
                certification = CertificationResult(summary, run_dir)
            run.publish(files, replace=list(files), retire=withdrawn)
    finally:
        runner.close()
    if certification is not None:
        _frozen(certification)
    return Rejudged(boards, reports, certification, run_dir)


def _published_s0(run_dir, seed):
    """S0's partition of a seed's segment (its receipt and published config)."""
    segment = receipts.load(run_dir, seed, "S5")["parameter_hash"]
    found = layout.s0_partitions(run_dir, seed, segment)
    if not found:
        raise InputError(f"no S0 receipt of seed {seed} for its S5 partition", file=run_dir)
    return found[0]


def _published_judging_policy(run_dir, sealed):
    """Where a seed's published config holds the validation policy."""
    from .policies import JUDGING_POLICY, POLICY_FILES

    return (layout.partition_dir(run_dir, "s0_gate_receipt_6A", sealed.seed,
                                 sealed.parameter_hash, sealed.manifest_fingerprint)
            / s0_gate.CONFIG_FOLDER / POLICY_FILES[JUDGING_POLICY] / JUDGING_POLICY)


def _judgement(run_dir, sealed, gates, report, streams):
    """One seed's new verdict as files (its verdict files, S5's receipt, the RNG audit with
    the gates' new rows, the validation policy of its published config), and the flag it
    withdraws (if any)."""
    from .policies import JUDGING_POLICY

    seed = sealed.seed
    files, withdrawn = judgement_files(run_dir, sealed, report, gates)
    verdict = {path.relative_to(run_dir).as_posix() for path in list(files) + withdrawn}
    s5_receipt = receipts.load(run_dir, seed, "S5")
    outputs = {path: digest for path, digest in s5_receipt["outputs"].items()
               if path not in verdict}
    outputs.update({path.relative_to(run_dir).as_posix(): sha256_hex(data)
                    for path, data in files.items()})
    receipt_path = receipts.receipt_path(run_dir, seed, "S5")
    files[receipt_path] = json_bytes({**s5_receipt, "outputs": outputs,
                                      "validation_hash": sealed.judging.validation_hash})
    rng_dir = layout.rng_dir(run_dir, seed)
    audit = json.loads((rng_dir / "rng_audit_6A.json").read_text(encoding="utf-8"))
    trace = [json.loads(line) for line in
             (rng_dir / "rng_trace_6A.jsonl").read_text(encoding="utf-8").splitlines()]
    files[_published_judging_policy(run_dir, sealed)] = \
        sealed.config.texts[JUDGING_POLICY].encode("utf-8")
    files.update(rng_files(rng_dir,
                           [r for r in audit["substreams"] if r["state"] != streams.state]
                           + streams.audit(),
                           [r for r in trace if r["state"] != streams.state] + streams.trace))
    return files, withdrawn
