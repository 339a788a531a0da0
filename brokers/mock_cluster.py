"""librdkafka's mock Kafka cluster on loopback, for runs longer than the embedded Tansu broker allows.

The mock cluster ships inside librdkafka (in the ``confluent-kafka`` wheel); a child process loads it
with ctypes and keeps it alive until stopped. Tansu walks every record batch of a partition on each
fetch that finds data and never deletes any, so a live worker's latency grows for as long as it runs
(tttheme2.mid: note latency p50 3.0 ms in its first 10 s, 10.7 ms after 80 s). The mock walks a
partition's batches too, to find a fetch's offset (rd_kafka_mock_msgset_find, "FIXME: Maintain an
index"), but keeps each partition bounded, so latency grows only until the bound, then stays flat
(the same song on a full partition: p50 4.6-5.0 ms throughout).

    python -m brokers.mock_cluster [--brokers N] [--topic NAME[:PARTITIONS]]...   # until Ctrl-C; prints BROKER_URL

Without ``--topic`` it creates midi_app's notes topic and table changelog (MIDI_TOPIC, MIDI_TOPIC_PARTITIONS).
Each topic is replicated on up to 3 brokers, and with several brokers partition ``p`` is led by broker
``p % brokers + 1``, so the test or benchmark knows which broker serves which partition.

Faults, for tests of several brokers (``running_mock_cluster`` yields a MockCluster that calls these
in the cluster's process): a broker down or up again (``broker_down``/``broker_up``: connections cut
and refused; as in librdkafka, leadership does not move by itself), a broker made slow
(``broker_rtt``: every answer it gives delayed), a partition's leader moved (``move_leader``), the
group coordinator pinned to a broker (``pin_coordinator``), and the next requests of a kind failed
with given error codes (``fail_requests``).

Limits, from librdkafka's src/rdkafka_mock.c and rdkafka_mock_handlers.c (2.16), none settable:
- A partition keeps at most 5 MiB or 100,000 record batches; older batches are dropped, as retention
  would (a few minutes of dense music). A consumer whose position was dropped gets OFFSET_OUT_OF_RANGE
  and is reset by its ``auto_offset_reset`` (the worker's ``earliest``: it skips what was dropped).
- No CreateTopics (nor DeleteRecords): aiokafka refuses to send it. Create the topics here, before any
  client starts; Faust and produce-midi must then see them listed rather than try to create them
  (the worker's producer and produce-midi's ensure_topic each need a metadata look-up first).
  A topic first named in a metadata request or a produce is auto-created with 4 partitions.
- A fetch that finds nothing is answered when its wait ends, not when a record arrives (as Tansu).
- A fetch returns at most one record batch per partition: a backlog is read at ~1,500-3,000 batches/s,
  and a live record sent within 2 ms of the one before, in a batch of its own, waits for one more fetch
  (bench/soak.py, 2% of the live records: latency p50 +0.15-0.5 ms, p99 +0.7-1.4 ms; README, "Where a
  live note's time goes").
- All brokers share one thread; memory only; broker ports are chosen by the mock.

It needs librdkafka: ``pip install confluent-kafka`` in this interpreter's environment, or point
``RDKAFKA_LIBRARY`` at a librdkafka .so (2.x).
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import glob
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers.embedded import realtime_priority_at_start, serve_until_stopped  # noqa: E402
from harness.processes import stop_process  # noqa: E402

STARTUP_TIMEOUT = 15.0
RD_KAFKA_PRODUCER = 0
# How long a call to the running cluster may take to be answered.
CONTROL_TIMEOUT = 10.0

# The mock's controls a MockCluster may call, rd_kafka_mock_<name>(cluster, ...): argument and result
# types after the cluster (rdkafka_mock.h). Results are rd_kafka_resp_err_t (0: done), or nothing.
CONTROLS = {
    "broker_set_down": ([ctypes.c_int32], ctypes.c_int),
    "broker_set_up": ([ctypes.c_int32], ctypes.c_int),
    "broker_set_rtt": ([ctypes.c_int32, ctypes.c_int], ctypes.c_int),
    "partition_set_leader": ([ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32], ctypes.c_int),
    "coordinator_set": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int32], ctypes.c_int),
    "push_request_errors_array": ([ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)], None),
    "clear_request_errors": ([ctypes.c_int16], None),
}


def find_librdkafka() -> str:
    """The librdkafka to load: ``RDKAFKA_LIBRARY``, else the one in the confluent-kafka wheel, else
    the system's."""
    if os.environ.get("RDKAFKA_LIBRARY"):
        return os.environ["RDKAFKA_LIBRARY"]
    spec = importlib.util.find_spec("confluent_kafka")
    if spec and spec.origin:
        bundled = glob.glob(str(Path(spec.origin).parent.parent / "confluent_kafka.libs" / "librdkafka*.so*"))
        if bundled:
            return bundled[0]
    system = ctypes.util.find_library("rdkafka")
    if system:
        return system
    raise RuntimeError("librdkafka not found: pip install confluent-kafka, or set RDKAFKA_LIBRARY to a librdkafka .so")


def load_librdkafka(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    pointer, text = ctypes.c_void_p, ctypes.c_char_p
    signatures = {
        "rd_kafka_version_str": ([], text),
        "rd_kafka_conf_new": ([], pointer),
        "rd_kafka_conf_set": ([pointer, text, text, text, ctypes.c_size_t], ctypes.c_int),
        "rd_kafka_new": ([ctypes.c_int, pointer, text, ctypes.c_size_t], pointer),
        "rd_kafka_mock_cluster_new": ([pointer, ctypes.c_int], pointer),
        "rd_kafka_mock_cluster_bootstraps": ([pointer], text),
        "rd_kafka_mock_set_controller_id": ([pointer, ctypes.c_int32], ctypes.c_int),
        "rd_kafka_mock_topic_create": ([pointer, text, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        **{f"rd_kafka_mock_{name}": ([pointer, *argtypes], restype) for name, (argtypes, restype) in CONTROLS.items()},
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib


def call_control(lib: ctypes.CDLL, cluster: int, name: str, args: list) -> int:
    """rd_kafka_mock_<name>(cluster, *args); 0 when done, else librdkafka's error code."""
    if name not in CONTROLS:
        raise ValueError(f"no such control: {name}")
    if name == "push_request_errors_array":
        api_key, errors = args
        codes = (ctypes.c_int * len(errors))(*errors)
        args = [api_key, len(errors), codes]
    args = [arg.encode() if isinstance(arg, str) else arg for arg in args]
    return getattr(lib, f"rd_kafka_mock_{name}")(cluster, *args) or 0


def serve(library: str, brokers: int, topics: Mapping[str, int]) -> None:
    """Start the cluster in this process, print its bootstrap servers, then carry out each control call
    read from stdin (a JSON ``[name, args]`` a line; answered with librdkafka's error code, or the
    reason it could not be made) until stdin closes."""
    lib = load_librdkafka(library)
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    # The handle only hosts the cluster; keep its own (failing) connection attempts quiet.
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
    rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
    if not rk:
        raise SystemExit(f"rd_kafka_new: {errstr.value.decode()}")
    cluster = lib.rd_kafka_mock_cluster_new(rk, brokers)
    if not cluster:
        raise SystemExit("rd_kafka_mock_cluster_new failed")
    # Broker ids run from 1; the cluster otherwise names 0, no broker, as its controller.
    lib.rd_kafka_mock_set_controller_id(cluster, 1)
    for name, partitions in topics.items():
        err = lib.rd_kafka_mock_topic_create(cluster, name.encode(), partitions, min(3, brokers))
        if err:
            raise SystemExit(f"rd_kafka_mock_topic_create {name}: error {err}")
        for partition in range(partitions if brokers > 1 else 0):
            lib.rd_kafka_mock_partition_set_leader(cluster, name.encode(), partition, partition % brokers + 1)
    print(lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), flush=True)
    for line in sys.stdin:  # until the parent closes the pipe, or dies
        try:
            name, args = json.loads(line)
            answer = call_control(lib, cluster, name, args)
        except (ValueError, TypeError, ctypes.ArgumentError) as exc:
            answer = f"{type(exc).__name__}: {exc}"
        print(json.dumps(answer), flush=True)


class MockClusterError(RuntimeError):
    """A control call the mock cluster refused or could not make."""


class MockCluster:
    """A running mock cluster: ``url`` for clients, and its faults, each applied at once."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.url = ""
        self._lock = threading.Lock()
        # What the cluster's process prints: its bootstrap servers, then an answer per call.
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def started(self, log_path: str) -> "MockCluster":
        """Wait for the bootstrap servers the cluster prints once it listens; ``url`` is then set."""
        try:
            line = self._lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            line = ""
        if not line.strip():
            raise RuntimeError(f"mock cluster did not start within {STARTUP_TIMEOUT:.0f} s or exited (log: {log_path})")
        self.url = ";".join(f"kafka://{address}" for address in line.strip().split(","))
        return self

    def call(self, name: str, *args) -> None:
        """rd_kafka_mock_<name>(cluster, *args) in the cluster's process; raises MockClusterError unless
        it was done."""
        with self._lock:
            self.process.stdin.write(json.dumps([name, list(args)]) + "\n")
            self.process.stdin.flush()
            try:
                line = self._lines.get(timeout=CONTROL_TIMEOUT)
            except queue.Empty:
                line = ""
        if not line:
            raise MockClusterError(f"{name}{args}: no answer from the mock cluster within {CONTROL_TIMEOUT:.0f} s")
        answer = json.loads(line)
        if answer != 0:
            raise MockClusterError(f"{name}{args}: {answer if isinstance(answer, str) else f'error {answer}'}")

    def broker_down(self, broker: int) -> None:
        """Cut the broker's connections and refuse new ones; the partitions it leads stay led by it."""
        self.call("broker_set_down", broker)

    def broker_up(self, broker: int) -> None:
        self.call("broker_set_up", broker)

    def broker_rtt(self, broker: int, milliseconds: int) -> None:
        """Delay every answer of ``broker`` by ``milliseconds`` (0: no more)."""
        self.call("broker_set_rtt", broker, milliseconds)

    def move_leader(self, topic: str, partition: int, broker: int) -> None:
        self.call("partition_set_leader", topic, partition, broker)

    def pin_coordinator(self, group: str, broker: int) -> None:
        """Make ``broker`` the coordinator of consumer group ``group`` (else the mock hashes the id)."""
        self.call("coordinator_set", "group", group, broker)

    def fail_requests(self, api_key: int, *errors: int) -> None:
        """Fail the next ``len(errors)`` requests of Kafka API ``api_key`` (0 Produce, 1 Fetch...), on any
        broker, with these error codes in turn (-195, librdkafka's transport error, cuts the connection)."""
        self.call("push_request_errors_array", api_key, list(errors))


@contextmanager
def mock_cluster(brokers: int = 1, topics: Mapping[str, int] | None = None,
                 log_path: str = os.devnull, realtime_priority: int = 0) -> Iterator[str]:
    """Start a mock cluster of ``brokers`` brokers with ``topics`` ({name: partitions}) created;
    yields the ``kafka://`` URL clients use (every broker, ``;``-separated) and stops it on exit.
    ``realtime_priority`` as for the embedded broker (brokers/embedded.py): its one thread serves
    every fetch a live note waits for."""
    with running_mock_cluster(brokers, topics, log_path, realtime_priority) as cluster:
        yield cluster.url


@contextmanager
def running_mock_cluster(brokers: int = 1, topics: Mapping[str, int] | None = None,
                         log_path: str = os.devnull, realtime_priority: int = 0) -> Iterator[MockCluster]:
    """As ``mock_cluster``, yielding the MockCluster, whose faults can then be set."""
    topic_args = [f"{name}:{partitions}" for name, partitions in (topics or {}).items()]
    library = find_librdkafka()  # here, so a missing librdkafka is said in one line
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", library, "--brokers", str(brokers),
             *(a for t in topic_args for a in ("--topic", t))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            preexec_fn=realtime_priority_at_start(realtime_priority),
        )
    try:
        yield MockCluster(process).started(log_path)
    finally:
        process.stdin.close()
        stop_process(process)


def app_topics() -> dict[str, int]:
    """midi_app's notes topic and the changelog of its played_seqs table, as the worker declares them."""
    from config.settings import Settings
    settings = Settings.from_env()
    return {settings.topic: settings.topic_partitions, "midi_app-played_seqs-changelog": settings.topic_partitions}


def topic_arg(text: str) -> tuple[str, int]:
    name, _, partitions = text.partition(":")
    return name, int(partitions or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", type=int, default=1, help="number of brokers (default 1)")
    parser.add_argument("--topic", type=topic_arg, action="append", default=[], metavar="NAME[:PARTITIONS]",
                        help="a topic to create (repeatable; partitions default to 1)")
    parser.add_argument("--serve", metavar="LIBRARY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(args.serve, args.brokers, dict(args.topic))
        return
    try:
        with mock_cluster(args.brokers, dict(args.topic) or app_topics()) as url:
            serve_until_stopped("mock cluster", url)
    except RuntimeError as exc:
        raise SystemExit(f"mock_cluster: {exc}") from None


if __name__ == "__main__":
    main()
