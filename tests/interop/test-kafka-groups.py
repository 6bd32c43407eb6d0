#!/usr/bin/python3
# transport-kafka consumer groups against a real sluiced: two
# python3-confluent-kafka members of one group share the partitions and the
# survivor takes them all when the other leaves; python3-kafka and kcat
# consume in a group and commit; the committed offsets are what the HTTPS
# read API's consumer group says; after a restart of sluiced a consumer of
# the same group resumes from them. Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()

if not shutil.which("kcat"):
    tap.bail_out("kcat not found: install the Debian package kcat (apt-get install kcat)")
try:
    import kafka  # noqa: F401
    import confluent_kafka  # noqa: F401
except ImportError as e:
    tap.bail_out("%s: install the Debian packages python3-kafka and python3-confluent-kafka" % e)
for plugin in ("transport-https", "transport-kafka"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))

owner_key = st.new_key()
policies = {"owner": {"primary-key": owner_key,
                      "rights": ["ServiceConnect", "Send", "Listen", "Manage"]}}
streams = {"grp": {"partitions": 4, "durability": "batch"},
           "resume": {"partitions": 2, "durability": "batch"}}
work = st.tempdir()
data_dir = os.path.join(work, "data")
kafka_section = ("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:0",
                                     "anonymous-policy": "owner"})
hub = st.Hub(st.https_hub_config(data_dir, policies, streams, extra=[kafka_section]),
             workdir=work, data_dir=data_dir,
             env={"SLUICE_PLUGIN_PATH": st.plugin_path(
                 [os.path.join(st.builddir(), "plugins", "transport-kafka")])})
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
OWNER = st.sas_token("localhost", owner_key, skn="owner")


def broker():
    return "%s:%d" % hub.address("kafka", "plain")


def kcat(*args, input=None, timeout=60):
    res = subprocess.run(["kcat", "-b", broker()] + list(args), input=input,
                         capture_output=True, timeout=timeout)
    return res.returncode, res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")


def produce(topic, n, prefix):
    lines = "".join("%s-%d:%s value %d\n" % (prefix, i, prefix, i) for i in range(n))
    rc, out, err = kcat("-P", "-t", topic, "-K:", input=lines.encode())
    return rc == 0


def python(script, *args, timeout=180):
    res = subprocess.run(["/usr/bin/python3", "-c", script] + list(args), capture_output=True,
                         timeout=timeout)
    try:
        result = json.loads(res.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    return res.returncode, result, res.stderr.decode(errors="replace")[-1500:]


tap.ok(produce("grp", 40, "g"), "40 keyed messages produced to 'grp' (4 partitions)")

# --- two members, then one --------------------------------------------------------------------

TWO = r"""
import json, sys, time, confluent_kafka as ck
broker = sys.argv[1]
conf = {"bootstrap.servers": broker, "group.id": "pair", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500, "partition.assignment.strategy": "range"}
a, b = ck.Consumer(dict(conf, **{"client.id": "a"})), ck.Consumer(dict(conf, **{"client.id": "b"}))
a.subscribe(["grp"]); b.subscribe(["grp"])
seen = {}
def poll(c, name):
    m = c.poll(0.2)
    if m is not None and m.error() is None:
        seen.setdefault(name, set()).add((m.partition(), m.offset()))
deadline = time.time() + 60
both = None
while time.time() < deadline:
    poll(a, "a"); poll(b, "b")
    pa = sorted(p.partition for p in a.assignment()); pb = sorted(p.partition for p in b.assignment())
    # The union: a member may read a partition before a rebalance hands it
    # to the other, which reads it again (nothing was committed).
    if len(pa) == 2 and len(pb) == 2 and len(seen.get("a", set()) | seen.get("b", set())) >= 40:
        both = [pa, pb]
        break
b_only = None
if both:
    a.close()
    while time.time() < deadline:
        poll(b, "b")
        pb = sorted(p.partition for p in b.assignment())
        if len(pb) == 4:
            b_only = pb
            break
b.close()
total = len(seen.get("a", set()) | seen.get("b", set()))
print(json.dumps({"both": both, "b_only": b_only, "total": total}))
"""
rc, res, err = python(TWO, broker())
res = res or {}
both = res.get("both")
tap.ok(rc == 0 and both is not None and sorted(both[0] + both[1]) == [0, 1, 2, 3],
       "two confluent-kafka members of one group split the 4 partitions 2 / 2",
       (rc, res, err))
tap.eq(res.get("total"), 40, "together they read each of the 40 messages")
tap.ok(res.get("b_only") == [0, 1, 2, 3],
       "when one leaves, the group rebalances and the other gets all 4 partitions", (res, err))

# --- a member that dies: its session expires and the survivor takes over ------------------------

MEMBER = r"""
import sys, time, confluent_kafka as ck
broker, want = sys.argv[1], int(sys.argv[2])
c = ck.Consumer({"bootstrap.servers": broker, "group.id": "crash", "auto.offset.reset": "earliest",
                 "enable.auto.commit": False, "session.timeout.ms": 6000,
                 "heartbeat.interval.ms": 500, "partition.assignment.strategy": "range"})
c.subscribe(["grp"])
said = set()
deadline = time.time() + 90
while time.time() < deadline:
    c.poll(0.2)
    n = len(c.assignment())
    if n not in said:
        said.add(n)
        print("assigned %d" % n, flush=True)
    if n == want:
        print("done", flush=True)
        break
"""


def wait_line(proc, want, timeout):
    import select
    import time as _t
    end = _t.monotonic() + timeout
    seen = []
    while _t.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, end - _t.monotonic()))
        if not r:
            break
        line = proc.stdout.readline().decode().strip()
        if not line:
            break
        seen.append(line)
        if line == want:
            return True, seen
    return False, seen


a = subprocess.Popen(["/usr/bin/python3", "-c", MEMBER, broker(), "99"], stdout=subprocess.PIPE)
ok_a, seen_a = wait_line(a, "assigned 4", 40)
b = subprocess.Popen(["/usr/bin/python3", "-c", MEMBER, broker(), "4"], stdout=subprocess.PIPE)
ok_b, seen_b = wait_line(b, "assigned 2", 40)
tap.ok(ok_a and ok_b, "a second member joins: the partitions are split", (seen_a, seen_b))
a.kill()
a.wait()
ok_all, seen_all = wait_line(b, "done", 40)
b.kill()
b.wait()
tap.ok(ok_all, "the first member is killed (no LeaveGroup): when its session expires the "
       "survivor gets all 4 partitions", seen_b + seen_all)

# --- python3-kafka in a group, commit -------------------------------------------------------------

KP = r"""
import json, sys, kafka
broker, group, topic = sys.argv[1:4]
c = kafka.KafkaConsumer(topic, bootstrap_servers=broker, group_id=group,
                        auto_offset_reset="earliest", enable_auto_commit=False,
                        consumer_timeout_ms=6000)
vals = [m.value.decode() for m in c]
c.commit()
committed = {p.partition: c.committed(p) for p in c.assignment()}
c.close()
print(json.dumps({"values": vals, "committed": committed}))
"""
tap.ok(produce("resume", 10, "r"), "10 messages produced to 'resume'")
rc, res, err = python(KP, broker(), "kpg", "resume")
res = res or {}
tap.ok(rc == 0 and len(res.get("values", [])) == 10,
       "python3-kafka group consumer reads the 10 messages", (rc, res, err))
committed = {int(k): v for k, v in res.get("committed", {}).items()}
tap.ok(sum(committed.values()) == 10 if committed else False,
       "and commits offsets summing to 10 (next to read per partition)", committed)

status, _, data = st.http_request(hub.address("https", "plain"), "GET",
                                  "/resume/consumergroups/kpg/offsets",
                                  headers={"Authorization": OWNER})
offs = {}
try:
    for o in json.loads(data):
        offs[int(o["partition"])] = int(o["offset"])
except (ValueError, KeyError, TypeError):
    pass
tap.ok(status == 200 and all(offs.get(p) == v for p, v in committed.items()) and committed,
       "the HTTPS read API's consumer group 'kpg' has the offsets committed over Kafka",
       (status, data[:300], committed))

# kcat's balanced consumer commits too (auto-commit on close).
rc, out, err = kcat("-G", "kcg", "-o", "beginning", "-e", "-f", "%s\n", "-X",
                    "enable.auto.commit=true", "resume", timeout=90)
tap.ok(rc == 0 and len(out.splitlines()) == 10,
       "kcat -G reads the 10 messages as a balanced consumer group", (rc, out[-200:], err[-500:]))

# --- restart: resume from the committed offsets ---------------------------------------------------

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly")
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not restart: %s" % e)
tap.ok(produce("resume", 5, "after"), "5 more messages after the restart")
rc, res, err = python(KP, broker(), "kpg", "resume")
res = res or {}
tap.ok(rc == 0 and sorted(res.get("values", [])) == sorted("after value %d" % i for i in range(5)),
       "the same group resumes from its committed offsets: only the 5 new messages",
       (rc, res, err))

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly (exit 0)")
tap.done()
