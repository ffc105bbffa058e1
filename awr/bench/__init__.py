"""Benchmarks: training throughput, evaluation time and peak memory, and the prepared GPU run.

    python -m awr.bench --quick
    python -m awr.bench --out bench.json        # the full table
    python -m awr.bench --datasets synthetic:ml-1m --max-lens 50,100,200 --device cuda
    python -m awr.bench --set hidden_size=128 --set length_groups=1   # other TrialConfig fields
    python -m awr.bench gpu --out results/bench/gpu-<date>  # the prepared GPU run (8 min)
    python -m awr.bench.packed_seeds --device cpu --size cpu --out packed-cpu.json

The harness (`python -m awr.bench`), one job a file:
    cli.py        options, the loop over datasets x max_len x backbone x mechanism, the table
    workload.py   the settings every record shares and the tensors of one (dataset, max_len)
    measure.py    timing (synchronised on CUDA), peak memory, the machine; one record measured
    record.py     BenchRecord (the JSON keys), ratios, the table, the JSON file
    packed.py     N trials' epochs side by side in N processes (`--packed N`)
Prepared runs beyond the harness:
    packed_seeds.py  K seeds as one packed model against K separate trials
    gpu_plan.py      the GPU run's steps, commands and time budgets
    gpu_run.py       runs that plan step by step into one folder (`python -m awr.bench gpu`)
The synthetic data shapes (`synthetic:<name>`) live in awr/data/synthetic.py.

This file and record.py import no torch, so that reading BenchRecord stays cheap (analysis).
"""
