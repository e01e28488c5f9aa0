"""asv benchmarks: every state and the pipeline at `small` (and `medium`), peak memory, and
the realism gates as tracked values, so the dashboard shows speed next to realism."""
import numpy as np

import seg6a
from seg6a.perf import PerfRecorder
from seg6a.policies import load_config
from seg6a.states import s0_gate, s1_parties, s2_accounts, s3_instruments, s4_devices, s5_fraud_roles


def _upstream(scale, config):
    """S0..S4 of seed 42, with the datasets S5 reads."""
    sealed = s0_gate.run(42, scale, config, PerfRecorder())
    parties, d1, _ = s1_parties.run(sealed, PerfRecorder())
    accounts, d2, _ = s2_accounts.run(sealed, parties, PerfRecorder())
    instruments, d3, _ = s3_instruments.run(sealed, parties, accounts, PerfRecorder())
    devices, d4, _ = s4_devices.run(sealed, parties, PerfRecorder())
    return sealed, parties, accounts, instruments, devices, d1 + d2 + d3 + d4


class States:
    """Each state alone, on the outputs of the states before it (warm JIT cache)."""

    params = ["small", "medium"]
    param_names = ["scale"]
    timeout = 600

    def setup(self, scale):
        self.config = load_config()
        (self.sealed, self.parties, self.accounts, self.instruments, self.devices,
         self.datasets) = _upstream(scale, self.config)

    def time_s0_gate(self, scale):
        s0_gate.run(42, scale, self.config, PerfRecorder())

    def time_s1_parties(self, scale):
        s1_parties.run(self.sealed, PerfRecorder())

    def time_s2_accounts(self, scale):
        s2_accounts.run(self.sealed, self.parties, PerfRecorder())

    def time_s3_instruments(self, scale):
        s3_instruments.run(self.sealed, self.parties, self.accounts, PerfRecorder())

    def time_s4_devices(self, scale):
        s4_devices.run(self.sealed, self.parties, PerfRecorder())

    def time_s5_fraud_roles(self, scale):
        s5_fraud_roles.run(self.sealed, self.parties, self.accounts, self.devices,
                           self.datasets, PerfRecorder())


class Pipeline:
    """The whole segment: S0..S5 with gates, in memory and published."""

    params = ["small", "medium"]
    param_names = ["scale"]
    timeout = 900

    def setup(self, scale):
        self.config = load_config()
        seg6a.simulate(42, scale="tiny", config=self.config)  # load every kernel

    def time_simulate(self, scale):
        seg6a.simulate(42, scale=scale, config=self.config)

    def time_simulate_and_publish(self, scale):
        import tempfile

        with tempfile.TemporaryDirectory() as root:
            seg6a.simulate(42, scale=scale, config=self.config, out=root, run_id="bench")

    def peakmem_simulate(self, scale):
        seg6a.simulate(42, scale=scale, config=self.config)


def shortfall(component):
    """How far a gate component is from its B+ threshold on its failing side: positive
    fails, negative passes with that margin. asv draws every track as "lower is better",
    so a falling odds ratio shows as a rise."""
    if component["comparator"] == "le":
        return component["value"] - component["threshold_Bplus"]
    return component["threshold_Bplus"] - component["value"]


class Gates:
    """Gate values of seed 42 at `small`, tracked as their shortfall from B+ (lower is
    better for every one, as asv assumes)."""

    timeout = 600

    def setup_cache(self):
        result = seg6a.simulate(42, scale="small")
        return {r["test_id"]: r for r in result.fraud.gates}

    def track_t3_ip_share_error_shortfall(self, board):
        return shortfall(board["T3_IP_PRIOR_ALIGNMENT"])

    def track_t4_linked_device_shortfall(self, board):
        return shortfall(board["T4_DEVICE_IP_COVERAGE"])

    def track_t5_devices_per_ip_p99_shortfall(self, board):
        return shortfall(board["T5_IP_REUSE_TAIL_BOUNDS"]["components"]["p99"])

    def track_t7_or_account_shortfall(self, board):
        return shortfall(board["T7_RISK_PROPAGATION_EFFECT"]["components"]["OR_account"])

    def track_t7_or_device_shortfall(self, board):
        return shortfall(board["T7_RISK_PROPAGATION_EFFECT"]["components"]["OR_device"])

    def track_t8_max_jsd_shortfall(self, board):
        return shortfall(board["T8_DISTRIBUTION_ALIGNMENT_JSD"])

    def track_t10_fraud_label_lift_shortfall(self, board):
        return shortfall(board["T10_DOWNSTREAM_COMPAT_6B"]["components"]["fraud_label_lift"])


for _name in [n for n in vars(Gates) if n.startswith("track_")]:
    getattr(Gates, _name).unit = "shortfall from B+ (lower is better)"


class Prf:
    def setup(self):
        from seg6a.kernels.prf import uniform_range

        self.uniform_range = uniform_range
        uniform_range(np.uint64(1), 0, 10, 0)

    def time_uniform_range_10m(self):
        self.uniform_range(np.uint64(12345), 0, 10_000_000, 0)


def timeraw_import_seg6a():
    # Importing seg6a must not compile or load kernels.
    return "import seg6a"
