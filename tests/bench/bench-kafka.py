#!/usr/bin/python3
# Kafka benchmark: the same librdkafka producer and consumer
# (tests/bench/kafka-load) against sluiced's transport-kafka (storage-file)
# and against librdkafka's own mock cluster (rdkafka_mock.h: brokers inside
# the load generator's process on loopback sockets, records in memory; the
# client's ceiling), in the same run. MiB/s counts the values' bytes (Kafka's
# published 78.3 MB/s is 821,557 x 100 bytes in MiB).
#
#   produce   acks=1, durability `interval`, 1 and 4 partitions; 100-byte
#             values, batching on (linger.ms 5, batch.size 1 MB); target
#             >= 0.8 x the mock's records/s
#   consume   the records just produced, from the beginning; target
#             >= 1.0 x the produce rate (the mock keeps only about the last
#             5 MB of a partition, so it has no consume row)
#   acks=-1   durability `batch` (answered after fsync), beside
#             `dd bs=1M conv=fdatasync` on the data directory's file system
#   latency   delivery-report p50 / p99 at half the maximum rate measured
#             in the same run (sluiced: its own acks=1 rate; the mock: its own)
#   anchor    Kafka's published single-producer-thread result,
#             821,557 records/s (100-byte records, no replication)
#   context   the same mock cluster in a process of its own
#             (`kafka-load --mock 1 --serve`), produced to like sluiced:
#             what crossing a process boundary costs the client on this
#             machine, next to what sluiced costs (reported, no target)
#
# Throughput measurements last BENCH_SECONDS (5) of load, latency ones 5 s.
# Every measurement runs BENCH_RUNS times (3), each run with a fresh sluiced
# and data directory; the table shows medians, and each ratio is taken per
# run (both sides moments apart on the same machine), then its median.
#
#   make bench-kafka                                  (from the build directory)
#   tests/bench/bench-kafka.py --load tests/bench/kafka-load --seconds 5 --runs 3
# SPDX-License-Identifier: Apache-2.0

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

ANCHOR = 821557
TARGET_PRODUCE = 0.8
TARGET_CONSUME = 1.0
PARTITIONS = (1, 4)
DD_MIB = 1024


def die(message):
    print("bench-kafka: " + message, file=sys.stderr)
    sys.exit(1)


def note(message):
    print("# " + message, flush=True)


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


class Bench:
    def __init__(self, args):
        self.args = args
        self.commands = {}
        self.results = []          # dicts: run, what, partitions, target + kafka-load's JSON
        self.hub_pid = None

    def load(self, run, what, target, argv, timeout=600):
        """Run kafka-load; returns its JSON objects by phase."""
        cmd = [self.args.load] + argv
        self.commands.setdefault((what, target), " ".join(
            os.path.basename(c) if c == self.args.load else c for c in cmd))
        # CPU of both sides over the whole invocation (both phases when it
        # produces and consumes): on a shared machine the ratios mean more
        # beside what each side burned.
        hub_cpu0 = cpu_seconds(self.hub_pid) if self.hub_pid else None
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, timeout=timeout)
        wall = time.monotonic() - t0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        hub_cpu1 = cpu_seconds(self.hub_pid) if self.hub_pid else None
        load_cores = (child1.ru_utime + child1.ru_stime
                      - child0.ru_utime - child0.ru_stime) / wall
        hub_cores = (hub_cpu1 - hub_cpu0) / wall if hub_cpu0 is not None and hub_cpu1 else None
        out = res.stdout.decode(errors="replace")
        phases = {}
        for line in out.splitlines():
            if line.startswith("{"):
                obj = json.loads(line)
                obj.update(run=run, what=what, target=target, load_cores=load_cores,
                           hub_cores=hub_cores if target == "sluiced" else None)
                phases[obj["phase"]] = obj
                self.results.append(obj)
        if res.returncode != 0 or not phases:
            die("%s failed (%d):\n%s%s" % (" ".join(cmd), res.returncode, out,
                                           res.stderr.decode(errors="replace")))
        return phases

    def get(self, what, target, key, run=None):
        vals = [r.get(key) for r in self.results
                if r["what"] == what and r["target"] == target and (run is None or r["run"] == run)]
        return vals


def cpu_seconds(pid):
    """utime + stime of a process, in seconds; None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hub_config(data_dir, key):
    sections = [
        ("hub", {"hostname": "localhost", "data-dir": data_dir, "workers": 2}),
        ("storage", {"plugin": "file"}),
        ("auth", {"chain": "key"}),
        ("auth.key", {"plugin": "key"}),
        ("policy.bench", {"primary-key": key, "rights": ["ServiceConnect", "Send", "Listen"]}),
    ]
    for p in PARTITIONS:
        sections.append(("stream.interval%d" % p, {"partitions": p, "durability": "interval"}))
        sections.append(("stream.batch%d" % p, {"partitions": p, "durability": "batch"}))
        sections.append(("stream.latency%d" % p, {"partitions": p, "durability": "interval"}))
    # No SASL on this listener: every connection acts as the bench policy.
    sections.append(("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:0",
                                         "anonymous-policy": "bench"}))
    return st.config_text(sections)


def run_dd(directory):
    """MiB/s of `dd bs=1M conv=fdatasync` writing DD_MIB MiB in `directory`."""
    path = os.path.join(directory, "dd.bin")
    cmd = ["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % DD_MIB, "conv=fdatasync"]
    res = subprocess.run(cmd, capture_output=True, timeout=300)
    os.unlink(path)
    err = res.stderr.decode(errors="replace")
    m = re.search(r"^(\d+) bytes .* copied, ([\d.,]+) s", err, re.M)
    if res.returncode != 0 or not m:
        die("dd failed: %s" % err)
    return int(m.group(1)) / float(m.group(2).replace(",", ".")) / 1048576.0


def one_run(bench, run, key, work):
    args = bench.args
    n = ["--count", str(args.count)] if args.count else ["--seconds", str(args.seconds)]
    lat = ["--seconds", str(args.latency_seconds)]

    def mock(what, p, extra):
        return bench.load(run, what, "mock", ["--mock", "1", "--topic", "bench", "--partitions",
                                              str(p), "--produce", "--acks", "1"] + extra)

    def rate_of(what, target):
        return median(bench.get(what, target, "records_per_s", run))

    data_dir = os.path.join(work, "data-%d" % run)
    hub_dir = os.path.join(work, "hub-%d" % run)
    os.makedirs(hub_dir)
    hub = st.Hub(hub_config(data_dir, key), workdir=hub_dir, data_dir=data_dir)
    hub.start()
    bench.hub_pid = hub.pid
    try:
        broker = "%s:%d" % hub.address("kafka")
        # Each sluiced measurement right after its mock peer, so that both
        # see the same machine (other jobs come and go).
        for p in PARTITIONS:
            r = mock("produce-%d" % p, p, n)["produce"]
            note("mock     produce  %d partition(s) acks=1   %10.0f records/s %7.1f MiB/s"
                 % (p, r["records_per_s"], r["mib_per_s"]))
            with subprocess.Popen([args.load, "--mock", "1", "--topic", "bench", "--partitions",
                                   str(p), "--serve"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE) as serve:
                remote = json.loads(serve.stdout.readline())["bootstrap"]
                r = bench.load(run, "produce-%d" % p, "mock-process",
                               ["--bootstrap", remote, "--topic", "bench", "--produce", "--acks",
                                "1"] + n)["produce"]
                serve.stdin.close()
                serve.wait(60)
            note("mock in its own process  %d partition(s) %10.0f records/s %7.1f MiB/s"
                 % (p, r["records_per_s"], r["mib_per_s"]))
            ph = bench.load(run, "produce-%d" % p, "sluiced",
                            ["--bootstrap", broker, "--topic", "interval%d" % p, "--produce",
                             "--acks", "1", "--consume"] + n)
            r, c = ph["produce"], ph["consume"]
            c["what"] = "consume-%d" % p
            note("sluiced  produce  %d partition(s) acks=1   %10.0f records/s %7.1f MiB/s"
                 % (p, r["records_per_s"], r["mib_per_s"]))
            note("sluiced  consume  %d partition(s)          %10.0f records/s %7.1f MiB/s"
                 " (%d of %d delivered)" % (p, c["records_per_s"], c["mib_per_s"],
                                            c["consumed"], r["delivered"]))
            if c["consumed"] != r["delivered"]:
                note("warning: consumed %d records, %d were delivered"
                     % (c["consumed"], r["delivered"]))
        for p in PARTITIONS:
            r = bench.load(run, "acks-all-%d" % p, "sluiced",
                           ["--bootstrap", broker, "--topic", "batch%d" % p, "--produce",
                            "--acks", "-1"] + n)["produce"]
            note("sluiced  produce  %d partition(s) acks=-1  %10.0f records/s %7.1f MiB/s "
                 "(durability batch)" % (p, r["records_per_s"], r["mib_per_s"]))
        for p in PARTITIONS:
            rate = rate_of("produce-%d" % p, "mock") / 2
            r = mock("latency-%d" % p, p, ["--rate", "%.0f" % rate] + lat)["produce"]
            note("mock     latency  %d partition(s) at %.0f/s: p50 %.2f ms, p99 %.2f ms"
                 % (p, rate, r["p50_ms"], r["p99_ms"]))
            rate = rate_of("produce-%d" % p, "sluiced") / 2
            r = bench.load(run, "latency-%d" % p, "sluiced",
                           ["--bootstrap", broker, "--topic", "latency%d" % p, "--produce",
                            "--acks", "1", "--rate", "%.0f" % rate] + lat)["produce"]
            note("sluiced  latency  %d partition(s) at %.0f/s: p50 %.2f ms, p99 %.2f ms"
                 % (p, rate, r["p50_ms"], r["p99_ms"]))
    finally:
        bench.hub_pid = None
        code = hub.stop()
        if code != 0:
            die("sluiced exited with %s:\n%s" % (code, hub.log_tail()))
    # What the records cost on disk (batch and segment framing, indexes):
    # the acks=-1 rows are beside dd in payload MiB/s, and the disk writes
    # this much more.
    stored = sum(os.path.getsize(os.path.join(d, f))
                 for d, _, files in os.walk(data_dir) for f in files)
    records = sum(r["delivered"] for r in bench.results
                  if r["run"] == run and r["target"] == "sluiced" and r["phase"] == "produce")
    if records:
        bench.results.append({"run": run, "what": "disk", "target": "disk",
                              "bytes_per_record": stored / records})
        note("on disk: %.1f bytes per 100-byte record" % (stored / records))
    mib = run_dd(data_dir)
    bench.results.append({"run": run, "what": "dd", "target": "dd", "mib_per_s": mib})
    note("dd bs=1M conv=fdatasync                  %7.1f MiB/s" % mib)
    shutil.rmtree(data_dir, ignore_errors=True)


def ratio_per_run(bench, what_a, target_a, what_b, target_b, key_a="records_per_s",
                  key_b="records_per_s"):
    out = []
    for run in range(bench.args.runs):
        a = bench.get(what_a, target_a, key_a, run)
        b = bench.get(what_b, target_b, key_b, run)
        if a and b and b[0]:
            out.append(a[0] / b[0])
    return out


def report(bench):
    args = bench.args
    runs = args.runs

    def med(what, target, key="records_per_s"):
        return median(bench.get(what, target, key))

    def fmt_ratios(rs):
        return " ".join("%.2f" % r for r in rs)

    verdicts = []
    print()
    print("Medians of %d runs (100-byte records; %s of load per throughput measurement):"
          % (runs, "%d records" % args.count if args.count else "%d s" % args.seconds))
    print()
    print("| measurement | sluiced records/s | sluiced MiB/s | peer | peer value | ratio "
          "(median; per run) | target | met |")
    print("|---|---:|---:|---|---:|---|---:|---|")
    for p in PARTITIONS:
        rs = ratio_per_run(bench, "produce-%d" % p, "sluiced", "produce-%d" % p, "mock")
        ok = median(rs) is not None and median(rs) >= TARGET_PRODUCE
        verdicts.append(("produce acks=1 interval, %d partition(s) >= %.1f x mock"
                         % (p, TARGET_PRODUCE), ok))
        print("| produce acks=1, `interval`, %d partition(s) | %.0f | %.1f | mock cluster | "
              "%.0f records/s | %.2f; %s | >= %.1f | %s |"
              % (p, med("produce-%d" % p, "sluiced"),
                 med("produce-%d" % p, "sluiced", "mib_per_s"), med("produce-%d" % p, "mock"),
                 median(rs) or 0, fmt_ratios(rs), TARGET_PRODUCE, "yes" if ok else "NO"))
    for p in PARTITIONS:
        rs = ratio_per_run(bench, "consume-%d" % p, "sluiced", "produce-%d" % p, "sluiced")
        ok = median(rs) is not None and median(rs) >= TARGET_CONSUME
        verdicts.append(("consume, %d partition(s) >= %.1f x produce" % (p, TARGET_CONSUME), ok))
        print("| consume from the beginning, %d partition(s) | %.0f | %.1f | sluiced produce | "
              "%.0f records/s | %.2f; %s | >= %.1f | %s |"
              % (p, med("consume-%d" % p, "sluiced"),
                 med("consume-%d" % p, "sluiced", "mib_per_s"),
                 med("produce-%d" % p, "sluiced"), median(rs) or 0, fmt_ratios(rs),
                 TARGET_CONSUME, "yes" if ok else "NO"))
    for p in PARTITIONS:
        rs = ratio_per_run(bench, "acks-all-%d" % p, "sluiced", "dd", "dd", "mib_per_s",
                           "mib_per_s")
        print("| produce acks=-1, `batch`, %d partition(s) | %.0f | %.1f | dd bs=1M "
              "conv=fdatasync | %.1f MiB/s | %.2f; %s | report | - |"
              % (p, med("acks-all-%d" % p, "sluiced"),
                 med("acks-all-%d" % p, "sluiced", "mib_per_s"), med("dd", "dd", "mib_per_s"),
                 median(rs) or 0, fmt_ratios(rs)))
    for p in PARTITIONS:
        rs = ratio_per_run(bench, "produce-%d" % p, "mock-process", "produce-%d" % p, "mock")
        rs2 = ratio_per_run(bench, "produce-%d" % p, "sluiced", "produce-%d" % p, "mock-process")
        print("| produce acks=1, %d partition(s): the mock in a process of its own | %.0f "
              "(mock-process) | %.1f | mock cluster in-process | %.0f records/s | %.2f; %s | "
              "report | - |"
              % (p, med("produce-%d" % p, "mock-process"),
                 med("produce-%d" % p, "mock-process", "mib_per_s"),
                 med("produce-%d" % p, "mock"), median(rs) or 0, fmt_ratios(rs)))
        print("| produce acks=1, `interval`, %d partition(s) vs the mock in its own process | "
              "%.0f | %.1f | mock-process | %.0f records/s | %.2f; %s | report | - |"
              % (p, med("produce-%d" % p, "sluiced"),
                 med("produce-%d" % p, "sluiced", "mib_per_s"),
                 med("produce-%d" % p, "mock-process"), median(rs2) or 0, fmt_ratios(rs2)))
    for p in PARTITIONS:
        rs = [r / ANCHOR for r in bench.get("produce-%d" % p, "sluiced", "records_per_s")]
        print("| produce acks=1 vs the anchor, %d partition(s) | %.0f | %.1f | Kafka, published "
              "| %d records/s (78.3 MiB/s) | %.2f; %s | report | - |"
              % (p, med("produce-%d" % p, "sluiced"),
                 med("produce-%d" % p, "sluiced", "mib_per_s"), ANCHOR, median(rs) or 0,
                 fmt_ratios(rs)))
    per_record = med("disk", "disk", "bytes_per_record")
    if per_record:
        print()
        print("On disk, a 100-byte record takes %.1f bytes (median over the runs), so the "
              "disk writes %.2f x the payload MiB/s above." % (per_record, per_record / 100))
    print()
    print("Delivery-report latency at half the maximum rate (acks=1, `interval`; %d s each):"
          % args.latency_seconds)
    print()
    print("| partitions | target | rate (records/s) | p50 (ms) | p99 (ms) | max (ms) |")
    print("|---:|---|---:|---:|---:|---:|")
    for p in PARTITIONS:
        for target in ("sluiced", "mock"):
            print("| %d | %s | %.0f | %.2f | %.2f | %.2f |"
                  % (p, target, med("latency-%d" % p, target, "rate_limit") or 0,
                     med("latency-%d" % p, target, "p50_ms") or 0,
                     med("latency-%d" % p, target, "p99_ms") or 0,
                     med("latency-%d" % p, target, "max_ms") or 0))
    print()
    print("CPU over each kafka-load invocation (cores busy; sluiced's produce rows include "
          "the consume that follows in the same invocation; the mock runs inside kafka-load):")
    print()
    print("| measurement | target | kafka-load | sluiced |")
    print("|---|---|---:|---:|")
    seen = []
    for r in bench.results:
        if "load_cores" in r and (r["what"], r["target"]) not in seen and r["phase"] == "produce":
            seen.append((r["what"], r["target"]))
    for what, target in seen:
        hub = med(what, target, "hub_cores")
        print("| %s | %s | %.2f | %s |" % (what, target, med(what, target, "load_cores") or 0,
                                          "%.2f" % hub if hub is not None else "-"))
    print()
    print("Commands (first run; `--bootstrap` is sluiced's Kafka listener, `--mock 1` the "
          "in-process mock cluster):")
    for (what, target), cmd in bench.commands.items():
        print("    %-19s %s" % ("%s %s" % (target, what), cmd))
    print("    dd                  dd if=/dev/zero of=DATA_DIR/dd.bin bs=1M count=%d conv=fdatasync"
          % DD_MIB)
    print("machine: %d cores shared by kafka-load and sluiced (2 workers); librdkafka %s"
          % (os.cpu_count(), librdkafka_version()))
    print()
    for text, ok in verdicts:
        print("target %s: %s" % (text, "met" if ok else "NOT met"))
    failed = [r for r in bench.results if r.get("failed")]
    for r in failed:
        print("warning: %s %s run %d: %d messages failed (%s)"
              % (r["what"], r["target"], r["run"], r["failed"], r.get("error")))


def librdkafka_version():
    res = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True)
    return res.stdout.decode().strip() or "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", default=os.path.join(st.builddir(), "tests/bench/kafka-load"),
                        help="the kafka-load program")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 5)),
                        help="seconds of load per throughput measurement (5)")
    parser.add_argument("--count", type=int, default=0,
                        help="or this many records per throughput measurement")
    parser.add_argument("--latency-seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)),
                        help="repeat everything; the tables show medians")
    args = parser.parse_args()
    if not os.access(args.load, os.X_OK):
        die("%s not found: make tests/bench/kafka-load" % args.load)
    if not os.path.exists(os.path.join(st.builddir(), "plugins", "transport-kafka",
                                       "transport-kafka.la")):
        die("plugins/transport-kafka is not built")

    # `make` runs this with the test environment; its allocator checks would
    # be measured too.
    for name in ("MALLOC_CHECK_", "G_SLICE", "G_DEBUG", "MALLOC_PERTURB_"):
        os.environ.pop(name, None)
    work = st.tempdir("sluice-bench-kafka-")
    key = st.new_key()
    bench = Bench(args)
    for run in range(args.runs):
        note("run %d of %d" % (run + 1, args.runs))
        try:
            one_run(bench, run, key, work)
        except st.HubError as e:
            die(str(e))
    report(bench)
    return 0


if __name__ == "__main__":
    sys.exit(main())
