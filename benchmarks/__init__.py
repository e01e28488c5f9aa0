"""asv benchmarks of seg6a. Inputs are built in ``setup`` (which also compiles every
kernel once), so JIT compilation is never timed. Benchmarks never assert."""
