#!/usr/bin/python3
# Runs bench-append several times (a fresh scratch directory each time) and
# prints medians and the ratios the core issue sets targets for.
# Usage: run-append.py BENCH_BINARY [RUNS] [VOLUME_MIB]
# SPDX-License-Identifier: Apache-2.0
import os, shutil, statistics, subprocess, sys, tempfile

binary = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
volume = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("BENCH_VOLUME_MIB", "1024")
base = os.environ.get("BENCH_DIR") or None

samples = {}
for i in range(runs):
    d = tempfile.mkdtemp(prefix="sluice-bench-", dir=base)
    try:
        out = subprocess.run([binary, "--dir", d, "--volume-mib", volume, "--seconds", "3"],
                             check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for tok in out.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            samples.setdefault(k, []).append(float(v))
    print(f"run {i + 1}: " + " ".join(out.split()), flush=True)

m = {k: statistics.median(v) for k, v in samples.items()}
def row(name, value, unit, peer="", ratio="", target=""):
    print(f"| {name} | {value} {unit} | {peer} | {ratio} | {target} |")

print()
print(f"Medians of {runs} runs, {volume} MiB per volume run, same disk, same run:")
print()
print("| measurement | Sluice | peer (same run) | ratio (median of per-run ratios) | target |")
print("|---|---|---|---|---|")
# Each run pairs Sluice with dd on the same disk moments apart: the ratio is
# taken per run, then the median of the ratios (the machine is shared and its
# absolute numbers swing by 2x between runs).
def ratio(a, b):
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))
r1 = ratio("records_mbps", "dd_mbps")
r2 = ratio("large_mbps", "dd_mbps")
row("100-byte records, batches of 1,000, `interval`, incl. final fsync",
    f"{m['records_mbps']:.0f} MB/s ({m['records_records_per_s']/1e6:.2f} M records/s)", "",
    f"dd bs=1M conv=fdatasync: {m['dd_mbps']:.0f} MB/s", f"{r1:.2f}", ">= 0.40")
row("1 MiB batches, `interval`, incl. final fsync", f"{m['large_mbps']:.0f} MB/s", "",
    f"dd: {m['dd_mbps']:.0f} MB/s", f"{r2:.2f}", ">= 0.80")
row("`batch`, 64 concurrent appenders", f"{m['group_acks_per_s']:.0f} acks/s, "
    f"{m['group_acks_per_fsync']:.1f} acks per fsync ({m['group_fsyncs_per_s']:.0f} fsyncs/s)", "",
    f"fdatasync rate: {m['fdatasync_per_s']:.0f}/s",
    f"{ratio('group_acks_per_s', 'fdatasync_per_s'):.1f}x the raw fdatasync rate", "report")
print(f"\nmax RSS of the benchmark process: {m['max_rss_kib']/1024:.0f} MiB")
ok = r1 >= 0.40 and r2 >= 0.80
print("targets met" if ok else "TARGETS NOT MET")
