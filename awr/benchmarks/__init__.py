"""Prepared benchmark runs beyond the harness (awr/bench.py): `python -m awr.bench gpu` runs
gpu_run.py's plan (gpu_plan.py) of CUDA tests, harness records, trial packing, packed seeds
(packed_seeds.py) and a time-boxed sweep into one folder."""
