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

Limits, from librdkafka's src/rdkafka_mock.c and rdkafka_mock_handlers.c (2.16), none settable:
- A partition keeps at most 5 MiB or 100,000 record batches; older batches are dropped, as retention
  would (a few minutes of dense music). A consumer whose position was dropped gets OFFSET_OUT_OF_RANGE
  and is reset by its ``auto_offset_reset`` (the worker's ``earliest``: it skips what was dropped).
- No CreateTopics (nor DeleteRecords): aiokafka refuses to send it. Create the topics here, before any
  client starts; Faust and produce-midi must then see them listed rather than try to create them
  (the worker's producer and produce-midi's ensure_topic each need a metadata look-up first).
  A topic first named in a metadata request or a produce is auto-created with 4 partitions.
- A fetch that finds nothing is answered when its wait ends, not when a record arrives (as Tansu).
- A fetch returns at most one record batch per partition: a backlog is read at ~1,500-3,000 batches/s.
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
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from brokers.embedded import serve_until_stopped  # noqa: E402
from harness.processes import stop_process  # noqa: E402

STARTUP_TIMEOUT = 15.0
RD_KAFKA_PRODUCER = 0


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
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, restype
    return lib


def serve(library: str, brokers: int, topics: Mapping[str, int]) -> None:
    """Start the cluster in this process, print its bootstrap servers, and keep it until stdin closes."""
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
    print(lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), flush=True)
    sys.stdin.read()  # until the parent closes the pipe, or dies


@contextmanager
def mock_cluster(brokers: int = 1, topics: Mapping[str, int] | None = None,
                 log_path: str = os.devnull) -> Iterator[str]:
    """Start a mock cluster of ``brokers`` brokers with ``topics`` ({name: partitions}) created;
    yields the ``kafka://`` URL clients use (every broker, ``;``-separated) and stops it on exit."""
    topic_args = [f"{name}:{partitions}" for name, partitions in (topics or {}).items()]
    library = find_librdkafka()  # here, so a missing librdkafka is said in one line
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", library, "--brokers", str(brokers),
             *(a for t in topic_args for a in ("--topic", t))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT)
        if not first_line or not first_line[0].strip():
            raise RuntimeError(f"mock cluster did not start within {STARTUP_TIMEOUT:.0f} s or exited (log: {log_path})")
        yield ";".join(f"kafka://{address}" for address in first_line[0].strip().split(","))
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
