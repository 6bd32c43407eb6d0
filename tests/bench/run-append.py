#!/usr/bin/python3
# Runs bench-append several times (a fresh scratch directory each time) and
# prints medians for both storage backends, 100-byte and 10-KB records and
# each durability policy, beside dd's sequential bandwidth and the disk's
# fdatasync rate from the same runs, and checks the targets of the storage
# issue: with 10-KB records in ~1 MB batches, storage-file reaches >= 80 %
# and storage-lmdb >= 50 % of dd's bandwidth.
# Usage: run-append.py BENCH_BINARY [RUNS] [VOLUME_MIB]
# SPDX-License-Identifier: Apache-2.0
import os, shutil, statistics, subprocess, sys, tempfile

binary = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
volume = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("BENCH_VOLUME_MIB", "512")
base = os.environ.get("BENCH_DIR") or None
backends = os.environ.get("BENCH_BACKENDS", "file,lmdb")
BACKENDS = backends.split(",")
SIZES = (100, 10000)
POLICIES = ("none", "interval", "batch")
TARGETS = {"file": 0.80, "lmdb": 0.50}

samples = {}
for i in range(runs):
    d = tempfile.mkdtemp(prefix="sluice-bench-", dir=base)
    try:
        out = subprocess.run([binary, "--dir", d, "--volume-mib", volume, "--seconds", "3",
                              "--backends", backends],
                             check=True, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for tok in out.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            samples.setdefault(k, []).append(float(v))
    print(f"run {i + 1}: " + " ".join(out.split()), flush=True)

m = {k: statistics.median(v) for k, v in samples.items()}


# Each run pairs Sluice with dd on the same disk moments apart: the ratio is
# taken per run, then the median of the ratios (the machine is shared and its
# absolute numbers swing between runs).
def ratio(a, b):
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))


print()
print(f"Medians of {runs} runs, {volume} MiB per volume run, same disk, same run: "
      f"dd bs=1M conv=fdatasync {m['dd_mbps']:.0f} MB/s, "
      f"appending 4 KiB + fdatasync {m['fdatasync_per_s']:.0f}/s.")
print()
print("Volume (32 appends in flight; 100-byte records in batches of 1,000, 10-KB records in "
      "batches of 100; timed up to and including the final fsync):")
print()
print("| backend | records | durability | MB/s | records/s | fsyncs | ratio to dd | target |")
print("|---|---|---|---|---|---|---|---|")
ok = True
for b in BACKENDS:
    for size in SIZES:
        for policy in POLICIES:
            k = f"{b}_{size}_{policy}"
            if k + "_mbps" not in m:
                continue
            r = ratio(k + "_mbps", "dd_mbps")
            target = ""
            if size == 10000 and policy == "interval":
                target = f">= {TARGETS[b]:.2f}"
                ok = ok and r >= TARGETS[b]
            print(f"| {b} | {size} B | {policy} | {m[k + '_mbps']:.0f} | "
                  f"{m[k + '_records_per_s']:.0f} | {m[k + '_fsyncs']:.0f} | {r:.2f} | {target} |")
print()
print("Read back through the host's read API right after writing (8 MiB reads, batches as "
      "stored, CRC checked by the backend; lmdb's data is in the page cache, "
      "storage-file's only its last cache-window (64 MiB) per partition once synced, "
      "the rest comes from disk):")
print()
print("| backend | records | durability | MB/s | records/s | ratio to dd |")
print("|---|---|---|---|---|---|")
for b in BACKENDS:
    for size in SIZES:
        for policy in POLICIES:
            name = f"{b}_{size}_{policy}"
            if f"{name}_read_mbps" not in m:
                continue
            print(f"| {b} | {size} B | {policy} | {m[name + '_read_mbps']:.0f} | "
                  f"{m[name + '_read_records_per_s']:.0f} | "
                  f"{ratio(name + '_read_mbps', 'dd_mbps'):.2f} |")
print()
print("Group commit (durability `batch`, 64 concurrent appenders of one record each):")
print()
print("| backend | record | acks/s | fsyncs/s | records per fsync | acks/s vs raw fdatasync/s |")
print("|---|---|---|---|---|---|")
for b in BACKENDS:
    for size in SIZES:
        k = f"{b}_{size}_group"
        if k + "_acks_per_s" not in m:
            continue
        print(f"| {b} | {size} B | {m[k + '_acks_per_s']:.0f} | {m[k + '_fsyncs_per_s']:.0f} | "
              f"{m[k + '_records_per_fsync']:.1f} | "
              f"{ratio(k + '_acks_per_s', 'fdatasync_per_s'):.1f}x |")
print(f"\nmax RSS of the benchmark process: {m['max_rss_kib']/1024:.0f} MiB")
print("targets met" if ok else "TARGETS NOT MET")
