"""Time the states that exist, per scale."""
import numpy as np

import seg6a
from seg6a.perf import PerfRecorder
from seg6a.policies import load_config
from seg6a.states import s0_gate, s1_parties, s2_accounts


class States:
    params = ["tiny", "small"]
    param_names = ["scale"]
    timeout = 300

    def setup(self, scale):
        self.config = load_config()
        self.sealed = s0_gate.run(42, scale, self.config, PerfRecorder())
        self.parties, _, _ = s1_parties.run(self.sealed, PerfRecorder())
        s2_accounts.run(self.sealed, self.parties, PerfRecorder())

    def time_s0_gate(self, scale):
        s0_gate.run(42, scale, self.config, PerfRecorder())

    def time_s1_parties(self, scale):
        s1_parties.run(self.sealed, PerfRecorder())

    def time_s2_accounts(self, scale):
        s2_accounts.run(self.sealed, self.parties, PerfRecorder())

    def time_simulate(self, scale):
        seg6a.simulate(42, scale=scale, config=self.config)

    def peakmem_simulate(self, scale):
        seg6a.simulate(42, scale=scale, config=self.config)


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
