#!/usr/bin/python3
# transport-kafka against a C client on librdkafka (tests/interop/kafka-client)
# and a real sluiced (storage-file, a stream of 4 partitions):
#   1. the idempotent producer (acks=all) writes N keyed messages; every
#      delivery report's partition / offset holds exactly that message when
#      read back over the HTTPS read API (TLS), and none is stored twice;
#   2. two consumer processes in one group split the 4 partitions (each gets
#      some, none twice, no message read by both), then one leaves with
#      rd_kafka_consumer_close and the other is assigned all 4 and goes on
#      consuming new messages;
#   1b. the same producer through a proxy that cuts the connection after a
#      Produce request was answered but before the answer reaches the client:
#      the retries of batches already stored are not stored again and their
#      delivery reports name the original offsets;
#   3. the remaining member commits and stops, sluiced is restarted, more
#      messages are produced, and a new member of the same group resumes
#      exactly after the committed offsets;
#   4. a member committing in batches commits on revocation;
#   5. the same group dance with the cooperative-sticky assignor, the
#      survivor stopped with SIGTERM;
#   6. a member that stops by itself after N messages.
# Prints TAP.
# SPDX-License-Identifier: Apache-2.0

import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sluicetest as st  # noqa: E402

tap = st.Tap()

TOPIC = "rk"
PARTITIONS = 4
GROUP = "pair"

client_path = os.environ.get("KAFKA_CLIENT") or os.path.join(st.builddir(), "tests", "interop",
                                                             "kafka-client")
if not os.access(client_path, os.X_OK):
    tap.bail_out("%s is not built: make check builds it (needs the Debian package "
                 "librdkafka-dev)" % client_path)
for plugin in ("transport-https", "transport-kafka"):
    if not os.path.exists(os.path.join(st.builddir(), "plugins", plugin, plugin + ".la")):
        tap.bail_out("plugins/%s/%s.la is not built" % (plugin, plugin))



class DropProxy:
    """A TCP proxy in front of a Kafka listener. For the first `drops`
    Produce requests it closes both sides once sluiced has answered, so the
    batch is stored but the producer never hears so and must retry it."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = None
        self.drops = 0
        self.dropped = 0
        self.produce_requests = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _frame(sock):
        def exactly(n):
            buf = b""
            while len(buf) < n:
                chunk = sock.recv(n - len(buf))
                if not chunk:
                    return None
                buf += chunk
            return buf
        head = exactly(4)
        body = exactly(int.from_bytes(head, "big")) if head else None
        return None if body is None else head + body

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            up = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        produce_ids = set()

        def requests():
            try:
                while True:
                    frame = self._frame(client)
                    if frame is None:
                        break
                    if int.from_bytes(frame[4:6], "big") == 0:
                        with self.lock:
                            self.produce_requests += 1
                            produce_ids.add(frame[8:12])
                    up.sendall(frame)
            except OSError:
                pass
            for sock in (up, client):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=requests, daemon=True).start()
        try:
            while True:
                frame = self._frame(up)
                if frame is None:
                    break
                with self.lock:
                    drop = frame[4:8] in produce_ids and self.drops > 0
                    if drop:
                        self.drops -= 1
                        self.dropped += 1
                if drop:
                    break
                client.sendall(frame)
        except OSError:
            pass
        for sock in (up, client):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


proxy = DropProxy()
owner_key = st.new_key()
policies = {"owner": {"primary-key": owner_key,
                      "rights": ["ServiceConnect", "Send", "Listen", "Manage"]}}
RETRY_TOPIC = "rk-retry"
streams = {TOPIC: {"partitions": PARTITIONS, "durability": "batch"},
           RETRY_TOPIC: {"partitions": PARTITIONS, "durability": "batch"}}
work = st.tempdir()
data_dir = os.path.join(work, "data")
kafka_section = ("transport.kafka", {"plugin": "kafka", "listen": "127.0.0.1:0",
                                     "anonymous-policy": "owner"})
# A second listener that tells clients (Metadata, FindCoordinator) to come
# back through the proxy, so that every connection of the producer passes it.
proxied_section = ("transport.kafka-proxied",
                   {"plugin": "kafka", "listen": "127.0.0.1:0", "anonymous-policy": "owner",
                    "advertised": "127.0.0.1:%d" % proxy.port})
hub = st.Hub(st.https_hub_config(data_dir, policies, streams,
                                 extra=[kafka_section, proxied_section]),
             workdir=work, data_dir=data_dir)
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not start: %s" % e)
OWNER = st.sas_token("localhost", owner_key, skn="owner")
CA = os.path.join(data_dir, "tls", "dev-cert.pem")


def broker():
    return "%s:%d" % hub.address("kafka", "plain")


# Short timeouts so that a member that left or died is noticed quickly; the
# client itself leaves with LeaveGroup, so none of these should be waited out.
CONSUMER_PROPS = ["session.timeout.ms=10000", "heartbeat.interval.ms=500",
                  "topic.metadata.refresh.interval.ms=2000"]


def client_argv(mode, *args, brokers=None, topic=TOPIC):
    return [client_path, mode, "--brokers", brokers or broker(), "--topic", topic] + list(args)


def produce(prefix, n, *extra, brokers=None, topic=TOPIC):
    """Runs the idempotent producer; (exit status, delivery reports, done event, stderr)."""
    stderr_path = os.path.join(work, "produce-%s.err" % prefix)
    with open(stderr_path, "wb") as err:
        res = subprocess.run(client_argv("produce", "--count", str(n), "--prefix", prefix,
                                         *extra, brokers=brokers, topic=topic),
                             stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             timeout=180)
    events = []
    for line in res.stdout.decode(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"event": "garbage", "line": line})
    reports = [e for e in events if e.get("event") == "delivery"]
    done = next((e for e in events if e.get("event") == "done"), {})
    with open(stderr_path, errors="replace") as f:
        err_text = f.read()[-1500:]
    return res.returncode, reports, done, err_text


# One condition for the events of every consumer, so that a wait on a
# predicate over several of them wakes up whichever one moved.
events_cond = threading.Condition()


def wait_until(predicate, timeout=60.0):
    """Waits until predicate() holds; returns whether it did in time."""
    deadline = time.monotonic() + timeout
    with events_cond:
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            events_cond.wait(left)
        return True


class Consumer:
    """One kafka-client consume process, followed event by event."""

    def __init__(self, name, *extra, strategy="range"):
        self.name = name
        self.events = []
        self.cond = events_cond
        self.stderr_path = os.path.join(work, "consumer-%s.err" % name)
        with open(self.stderr_path, "wb") as err:
            argv = client_argv("consume", "--group", GROUP, "--client-id", name, *extra)
            for prop in CONSUMER_PROPS + ["partition.assignment.strategy=" + strategy]:
                argv += ["-X", prop]
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        # The events are kept in the work directory too (SLUICE_KEEP_TMP=1
        # keeps it) for a look after a failure.
        log = open(os.path.join(work, "consumer-%s.jsonl" % self.name), "wb")
        for line in self.proc.stdout:
            log.write(line)
            log.flush()
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line.decode(errors="replace")}
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()
        log.close()
        with self.cond:
            self.events.append({"event": "eof-stdout"})
            self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.events)

    def assignment(self):
        """The partitions held now (eager protocol: an assignment replaces
        everything, a revocation empties it; cooperative: both are increments)."""
        held = set()
        for e in self.snapshot():
            if e["event"] == "assigned" and e["protocol"] == "cooperative":
                held |= set(e["partitions"])
            elif e["event"] == "assigned":
                held = set(e["partitions"])
            elif e["event"] == "revoked":
                held -= set(e["partitions"])
        return held

    def messages(self):
        return [e for e in self.snapshot() if e["event"] == "message"]

    def eof_at(self):
        """partition -> the offset of its latest end-of-partition event."""
        return {e["partition"]: e["offset"] for e in self.snapshot() if e["event"] == "eof"}

    def closed(self):
        return next((e for e in self.snapshot() if e["event"] == "closed"), None)

    def leave(self, timeout=60.0):
        """Closes stdin (the client's cue to commit and leave the group) and
        waits for it to exit; returns its exit status (None: had to be killed)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def terminate(self, timeout=60.0):
        """SIGTERM: the other way to tell the client to commit and leave."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stderr_tail(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()[-1500:]

    def diag(self, n=15):
        return "%s: last events %r\nstderr: %s" % (self.name, self.snapshot()[-n:],
                                                   self.stderr_tail())


def read_stream(topic=TOPIC):
    """{partition: [record, ...]} of the whole stream, read over HTTPS (TLS)."""
    tls = hub.address("https", "tls")
    status, _, data = st.http_request(tls, "GET", "/" + topic, headers={"Authorization": OWNER},
                                      cafile=CA)
    if status != 200:
        raise st.HubError("GET /%s: %d %r" % (topic, status, data[:200]))
    info = json.loads(data)
    out = {}
    for part in info["partitions"]:
        p, first, end = int(part["id"]), int(part["first"]), int(part["next"])
        recs = []
        offset = first
        while offset < end:
            status, _, data = st.http_request(
                tls, "GET", "/%s/partitions/%d/messages?from=%d&limit=100" % (topic, p, offset),
                headers={"Authorization": OWNER}, cafile=CA)
            page = json.loads(data) if status == 200 else []
            if not page:
                raise st.HubError("partition %d: nothing at %d of %d (%d)"
                                  % (p, offset, end, status))
            recs.extend(page)
            offset = int(page[-1]["offset"]) + 1
        out[p] = recs
    return out


def ends():
    """{partition: next offset} over HTTPS."""
    status, _, data = st.http_request(hub.address("https", "tls"), "GET", "/" + TOPIC,
                                      headers={"Authorization": OWNER}, cafile=CA)
    return {int(p["id"]): int(p["next"]) for p in json.loads(data)["partitions"]} \
        if status == 200 else {}


def check_delivered(label, prefix, n, rc, reports, done, err):
    """The producer's own account: all n delivered, each key once, distinct places."""
    tap.ok(rc == 0 and done.get("delivered") == n and done.get("failed") == 0
           and done.get("error") is None,
           "%s: the idempotent producer delivered all %d messages (exit 0)" % (label, n),
           (rc, done, err))
    keys = sorted(r.get("key") or "" for r in reports)
    tap.ok(len(reports) == n and keys == sorted("%s-%d" % (prefix, i) for i in range(n))
           and all(r.get("error") is None for r in reports),
           "%s: one successful delivery report per message" % label,
           [r for r in reports if r.get("error") is not None][:5] or (len(reports), keys[:5]))
    places = {(r["partition"], r["offset"]) for r in reports}
    tap.ok(len(places) == len(reports) and all(0 <= p < PARTITIONS and o >= 0 for p, o in places),
           "%s: every report names its own partition and offset" % label, sorted(places)[:10])
    return {(r["partition"], r["offset"]): r for r in reports}


# --- 1. the idempotent producer ---------------------------------------------------------------

N1 = 200
rc, reports, done, err = produce("idem", N1)
first_reports = check_delivered("produce", "idem", N1, rc, reports, done, err)
tap.ok(len({p for p, _ in first_reports}) > 1,
       "the keys spread over more than one partition", sorted({p for p, _ in first_reports}))



def check_stored(label, topic, reports, n):
    """Each report's place holds its message, and the stream holds each once."""
    try:
        stored = read_stream(topic)
    except (st.HubError, ValueError, KeyError, OSError) as e:
        stored = {}
        tap.diag("reading the stream over HTTPS failed: %s" % e)
    by_place = {(p, int(r["offset"])): r for p, recs in stored.items() for r in recs}
    wrong = [(place, rep.get("key"), rep.get("value"), by_place.get(place))
             for place, rep in reports.items()
             if place not in by_place or by_place[place].get("key") != rep.get("key")
             or by_place[place].get("body") != rep.get("value")]
    tap.ok(stored and not wrong, "%s: each delivery report's partition / offset holds exactly "
           "that message (HTTPS read API)" % label, wrong[:5])
    bodies = [r.get("body") for recs in stored.values() for r in recs]
    tap.ok(len(bodies) == n and len(set(bodies)) == n,
           "%s: the stream holds the %d messages once each (no duplicates)" % (label, n),
           (len(bodies), len(set(bodies))))


check_stored("produce", TOPIC, first_reports, N1)

# --- 1b. retries of batches already stored ----------------------------------------------------

DROPS = 3
proxy.upstream = hub.address("kafka-proxied", "plain")
with proxy.lock:
    proxy.drops = DROPS
NR = 100
# Small batches, so that there are Produce requests left to pass after the drops.
rc, reports, done, err = produce("retry", NR, "-X", "batch.num.messages=5", "-X", "linger.ms=2",
                                 brokers="127.0.0.1:%d" % proxy.port, topic=RETRY_TOPIC)
tap.ok(proxy.dropped == DROPS and proxy.produce_requests > DROPS,
       "the proxy cut %d connections right after sluiced answered a Produce request" % DROPS,
       (proxy.dropped, proxy.produce_requests))
retry_reports = check_delivered("produce through the proxy", "retry", NR, rc, reports, done, err)
check_stored("produce through the proxy", RETRY_TOPIC, retry_reports, NR)

# --- 2. two members, then one -----------------------------------------------------------------

a = Consumer("a")
ok = wait_until(lambda: a.assignment() == set(range(PARTITIONS)) and len(a.messages()) >= N1)
tap.ok(ok, "member a alone is assigned all 4 partitions and reads the %d messages" % N1, a.diag())

b = Consumer("b")


def split():
    sa, sb = a.assignment(), b.assignment()
    return bool(sa) and bool(sb) and not (sa & sb) and (sa | sb) == set(range(PARTITIONS))


tap.ok(wait_until(split), "a second member joins: a and b split the 4 partitions, each gets some, "
       "none twice", (sorted(a.assignment()), sorted(b.assignment()), a.diag(), b.diag()))
held_a, held_b = a.assignment(), b.assignment()

N2 = 40
rc, reports, done, err = produce("mid", N2)
mid_reports = check_delivered("produce while both are members", "mid", N2, rc, reports, done, err)


def got(consumer, places):
    return {(m["partition"], m["offset"]) for m in consumer.messages()} & places


mid_places = set(mid_reports)
ok = wait_until(lambda: got(a, mid_places) | got(b, mid_places) == mid_places)
tap.ok(ok and all(p in held_a for p, _ in got(a, mid_places))
       and all(p in held_b for p, _ in got(b, mid_places)),
       "each member reads the new messages of its own partitions, together all %d" % N2,
       (len(got(a, mid_places)), len(got(b, mid_places)), sorted(held_a), sorted(held_b)))

code_a = a.leave()
closed_a = a.closed() or {}
tap.ok(code_a == 0 and closed_a.get("why") == "stdin" and closed_a.get("commit-errors") == 0
       and closed_a.get("error") is None,
       "member a commits and leaves the group (rd_kafka_consumer_close, exit 0)",
       (code_a, closed_a, a.diag()))
ok = wait_until(lambda: b.assignment() == set(range(PARTITIONS)), timeout=30)
tap.ok(ok, "after the rebalance member b is assigned all 4 partitions", b.diag())

N3 = 40
rc, reports, done, err = produce("late", N3)
late_reports = check_delivered("produce after the rebalance", "late", N3, rc, reports, done, err)
late_places = set(late_reports)
ok = wait_until(lambda: got(b, late_places) == late_places)
tap.ok(ok, "member b goes on consuming: it reads all %d new messages" % N3,
       (len(got(b, late_places)), b.diag()))

everything = set(first_reports) | mid_places | late_places
read_a = [(m["partition"], m["offset"]) for m in a.messages()]
read_b = [(m["partition"], m["offset"]) for m in b.messages()]
tap.ok(set(read_a) | set(read_b) == everything,
       "together the two members read every one of the %d messages" % len(everything),
       (len(everything - set(read_a) - set(read_b)), len((set(read_a) | set(read_b)) - everything)))
twice = [place for place in set(read_a) & set(read_b)] + \
    [place for place in set(read_a + read_b) if (read_a + read_b).count(place) > 1]
tap.ok(not twice, "no message was read twice (each member starts where the other committed)",
       sorted(set(twice))[:10])
all_reports = dict(first_reports)
all_reports.update(mid_reports)
all_reports.update(late_reports)
values_ok = all(m["value"] == all_reports.get((m["partition"], m["offset"]), {}).get("value")
                for m in a.messages() + b.messages())
tap.ok(values_ok, "every message read carries the value its delivery report named")

# --- 3. commit, restart, resume ---------------------------------------------------------------

code_b = b.leave()
closed_b = b.closed() or {}
committed_b = next((e for e in b.snapshot() if e["event"] == "committed"), {})
end_before = ends()
offs = {e["partition"]: e["offset"] for e in committed_b.get("partitions", [])}
tap.ok(code_b == 0 and closed_b.get("commit-errors") == 0 and closed_b.get("error") is None,
       "member b commits and stops (exit 0)", (code_b, closed_b, b.diag()))
tap.ok(committed_b.get("error") is None and end_before and offs == end_before,
       "the coordinator's committed offsets of the group are the ends of the 4 partitions",
       (committed_b, end_before))
status, _, data = st.http_request(hub.address("https", "plain"), "GET",
                                  "/%s/consumergroups/%s/offsets" % (TOPIC, GROUP),
                                  headers={"Authorization": OWNER})
try:
    https_offs = {int(o["partition"]): int(o["offset"]) for o in json.loads(data)}
except (ValueError, KeyError, TypeError):
    https_offs = None
tap.ok(status == 200 and https_offs == end_before,
       "the HTTPS read API's consumer group '%s' has the same offsets" % GROUP,
       (status, data[:300], end_before))

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly")
try:
    hub.start()
except st.HubError as e:
    tap.bail_out("sluiced did not restart: %s" % e)

N4 = 60
rc, reports, done, err = produce("after", N4)
after_reports = check_delivered("produce after the restart", "after", N4, rc, reports, done, err)
tap.ok(all(o >= end_before.get(p, 0) for p, o in after_reports),
       "the new messages come after the committed offsets", sorted(after_reports)[:5])
end_after = ends()

c = Consumer("c")
ok = wait_until(lambda: all(c.eof_at().get(p) == end_after.get(p) for p in range(PARTITIONS)))
tap.ok(ok, "a new member of the group reads up to the end of every partition", c.diag())
code_c = c.leave()
read_c = [(m["partition"], m["offset"]) for m in c.messages()]
first_c = {}
for p, o in read_c:
    first_c.setdefault(p, o)
tap.ok(all(o >= end_before[p] for p, o in read_c),
       "after the restart no message before the committed offsets is read again",
       [(p, o) for p, o in read_c if o < end_before.get(p, 0)][:10])
tap.ok(sorted(read_c) == sorted(after_reports) and len(read_c) == len(set(read_c)),
       "and none after them is missing: exactly the %d new messages, once each" % N4,
       (len(read_c), len(set(read_c)), sorted(set(after_reports) - set(read_c))[:10]))
tap.ok(all(first_c.get(p) == end_before[p] for p in first_c) and first_c,
       "each partition resumes at exactly its committed offset", (first_c, end_before))
closed_c = c.closed() or {}
committed_c = next((e for e in c.snapshot() if e["event"] == "committed"), {})
tap.ok(code_c == 0 and closed_c.get("commit-errors") == 0
       and {e["partition"]: e["offset"] for e in committed_c.get("partitions", [])} == end_after,
       "the resumed member commits the new ends and leaves cleanly",
       (code_c, closed_c, committed_c))

# --- 4. a member that commits in batches: its commit on revocation ---------------------------

# A consumer that commits only every so often commits what it processed when
# its partitions are revoked (librdkafka's rebalance callback, eager protocol).
# That commit arrives while the group prepares the rebalance; Kafka's
# GroupCoordinator accepts a commit of the current generation then and only
# refuses one during CompletingRebalance, so the next owner starts after it.
GROUP = "batch"
everything = set(first_reports) | mid_places | late_places | set(after_reports)
d = Consumer("d", "--commit-every", "1000000")
ok = wait_until(lambda: d.assignment() == set(range(PARTITIONS))
                and all(d.eof_at().get(p) == end_after.get(p) for p in range(PARTITIONS)))
tap.ok(ok and len(d.messages()) == len(everything),
       "a batch-committing member alone reads all %d messages" % len(everything),
       (len(d.messages()), d.diag()))
e = Consumer("e", "--commit-every", "1000000")
ok = wait_until(lambda: d.assignment() and e.assignment()
                and (d.assignment() | e.assignment()) == set(range(PARTITIONS))
                and all(e.eof_at().get(p) == end_after.get(p) for p in e.assignment()))
revoke = [ev for ev in d.snapshot() if ev["event"] == "commit" and ev["why"] == "revoke"]
tap.ok(ok and revoke and revoke[0]["error"] is None,
       "when a second member joins, the first one's commit on revocation is accepted",
       (revoke, e.diag()))
twice = {(m["partition"], m["offset"]) for m in d.messages()} & \
    {(m["partition"], m["offset"]) for m in e.messages()}
tap.ok(ok and not twice, "the second member starts after what the first one committed",
       sorted(twice)[:10])
# The second member leaves first: it commits on close what it read (nothing
# to commit when the first member's revocation commit left it nothing new).
e.leave()
close_e = [ev for ev in e.snapshot() if ev["event"] == "commit" and ev["why"] == "close"]
tap.ok((close_e[0]["error"] is None if close_e else not e.messages())
       and (e.closed() or {}).get("error") is None,
       "the second member commits on close (if it read anything) and leaves the group cleanly",
       e.diag())
d.leave()

# --- 5. the cooperative protocol ---------------------------------------------------------------

# With cooperative-sticky the members keep what they hold through a
# rebalance: the first member gives up only what moves to the second, in a
# second round of JoinGroup / SyncGroup the coordinator must serve as well.
GROUP = "coop"
f = Consumer("f", strategy="cooperative-sticky")
ok = wait_until(lambda: f.assignment() == set(range(PARTITIONS))
                and all(f.eof_at().get(p) == end_after.get(p) for p in range(PARTITIONS)))
tap.ok(ok and len(f.messages()) == len(everything),
       "cooperative-sticky: a member alone is assigned all 4 partitions and reads all %d "
       "messages" % len(everything), f.diag())
g = Consumer("g", strategy="cooperative-sticky")
coop_split = lambda: (f.assignment() and g.assignment()  # noqa: E731
                      and not (f.assignment() & g.assignment())
                      and (f.assignment() | g.assignment()) == set(range(PARTITIONS)))
ok = wait_until(coop_split)
kept = f.assignment()
revoked_f = set()
for ev in f.snapshot():
    if ev["event"] == "revoked":
        revoked_f |= set(ev["partitions"])
tap.ok(ok and all(ev.get("protocol") == "cooperative" for ev in f.snapshot()
                  if ev["event"] in ("assigned", "revoked")),
       "cooperative-sticky: a second member joins and the two split the partitions "
       "(incremental assignments)", (sorted(f.assignment()), sorted(g.assignment()), f.diag(),
                                     g.diag()))
tap.ok(ok and revoked_f and not (revoked_f & kept),
       "the first member gave up only the partitions that moved, it kept the others "
       "without a revocation", (sorted(revoked_f), sorted(kept)))
f.leave()
ok = wait_until(lambda: g.assignment() == set(range(PARTITIONS)), timeout=30)
tap.ok(ok and (f.closed() or {}).get("commit-errors") == 0,
       "when the first member leaves the second is assigned all 4 partitions", g.diag())
coop_a = [(m["partition"], m["offset"]) for m in f.messages()]
coop_b = [(m["partition"], m["offset"]) for m in g.messages()]
tap.ok(len(coop_a) + len(coop_b) == len(everything) and set(coop_a) | set(coop_b) == everything,
       "the two cooperative members read each message once",
       (len(coop_a), len(coop_b), len(everything)))
code_g = g.terminate()
closed_g = g.closed() or {}
tap.ok(code_g == 0 and closed_g.get("why") == "signal" and closed_g.get("commit-errors") == 0
       and closed_g.get("error") is None,
       "and the second member, sent SIGTERM, commits and leaves cleanly", (code_g, g.diag()))

# --- 6. a member that stops after N messages ----------------------------------------------------

GROUP = "count"
h = Consumer("h", "--count", "5")
try:
    code_h = h.proc.wait(60)
except subprocess.TimeoutExpired:
    code_h = h.leave()
closed_h = h.closed() or {}
commits_h = [ev for ev in h.snapshot() if ev["event"] == "commit"]
committed_h = next((ev for ev in h.snapshot() if ev["event"] == "committed"), {})
tap.ok(code_h == 0 and closed_h.get("why") == "count" and len(h.messages()) == 5
       and len(commits_h) == 5 and all(ev["error"] is None for ev in commits_h),
       "--count 5: a member reads 5 messages, commits after each one and stops by itself",
       (code_h, h.diag()))
read_h = {}
for m in h.messages():
    read_h[m["partition"]] = m["offset"] + 1
tap.ok(committed_h.get("error") is None
       and {ev["partition"]: ev["offset"] for ev in committed_h.get("partitions", [])
            if ev["partition"] in read_h} == read_h,
       "the coordinator has its group's offsets right after the 5 messages",
       (committed_h, read_h))

code = hub.stop()
tap.eq(code, 0, "sluiced stops cleanly after the restart")
tap.done()
