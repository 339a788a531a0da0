"""The app's Faust classes: the app, its worker and its Kafka transport, assembled from the adjustments.

Each adjustment is a module of its own (its docstring says what Faust or aiokafka does, what changes,
why, and which private names it touches); here they are mixed into Faust's classes, and the worker
checks at start that every name they touch still exists (adjustments/tripwire.py).
"""
from __future__ import annotations

import logging
import sys
from typing import Callable, Mapping

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from adjustments import (changelog_pause, commits, fetch_wait, flow_control, page_at_root, patient_producer,
                         raw_table_keys, reachability, thread_close)
from logs.broker_log import BrokerOutageLog
from adjustments.tripwire import Adjustment, Touch, check
from config.security import BrokerSecurity
from playback.gc_pauses import freeze_what_exists
from playback.heap_trim import LARGE_BLOCK, large_blocks_mapped_alone, one_heap_for_all_threads
from playback.realtime import take_realtime_priority
from security.credentials import aiokafka_options
from security.login import check_login

# Faust's consumer runs in a thread of its own; with Python's default 5 ms GIL switch interval a
# note due now can wait that long behind it, ruining sub-millisecond scheduling.
GIL_SWITCH_INTERVAL = 0.0005

# Where this module plugs the adjustments into Faust.
ASSEMBLY = Adjustment("adjustments/app.py", "the app's transport classes", (
    Touch(faust.App, "_new_transport"),
    Touch(faust.App, "_new_producer_transport"),
    Touch(faust_aiokafka.Consumer, "_new_consumer_thread"),
))
ADJUSTMENTS = [ASSEMBLY, fetch_wait.ADJUSTMENT, changelog_pause.ADJUSTMENT, commits.ADJUSTMENT,
               thread_close.ADJUSTMENT, reachability.ADJUSTMENT, patient_producer.ADJUSTMENT, flow_control.ADJUSTMENT,
               page_at_root.ADJUSTMENT, raw_table_keys.ADJUSTMENT]


class ConsumerThread(fetch_wait.FetchWaitThread, changelog_pause.PausedInAiokafkaThread, commits.CommitsThread,
                     thread_close.ClosesDuringOutageThread, reachability.ReachabilityThread,
                     faust_aiokafka.AIOKafkaConsumerThread):
    pass


class Consumer(changelog_pause.PausingConsumer, faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Producer(reachability.ReachabilityProducer, patient_producer.PatientProducer, faust_aiokafka.Producer):
    pass


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer


class MidiWorker(faust.Worker):
    """Faust's worker: refuses to start when an adjustment would break or the brokers refuse its TLS or
    login (security/login.py), switches the GIL more often
    (here, for the worker command only: produce-midi leaves the interpreter as it is), takes real-time
    priority when asked and has its threads allocate from one heap, before any of them starts
    (playback/realtime.py, playback/heap_trim.py), freezes what it
    made while starting out of later garbage collections (playback/gc_pauses.py), and reports an
    unreachable broker through the app's outage log."""

    def __init__(self, app: "MidiFaustApp", *args, **kwargs) -> None:
        problem = check(ADJUSTMENTS) or app.refused_login()
        if problem:
            raise SystemExit(f"midi_app worker: {problem}")
        super().__init__(app, *args, **kwargs)
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        # Before any thread starts, as the realtime priority below (playback/heap_trim.py).
        self.one_heap = one_heap_for_all_threads()
        self.large_blocks_alone = large_blocks_mapped_alone()
        # Said once logging is set up (on_setup_root_logger).
        self.realtime_line: tuple[int, str] | None = None
        if app.realtime_priority:
            taken, line = take_realtime_priority(app.realtime_priority)
            self.realtime_line = (logging.INFO if taken else logging.WARNING, line)

    async def on_startup_finished(self) -> None:
        # Everything made while starting lives as long as the worker: out of every later collection.
        # Not collected first: Faust's recovery resumes the consumer before this, so a backlog's first
        # records may be playing already, and the full collection (~33 ms) stalled them: a worker
        # catching up on 108,000 events ran at 0.75x plain aiokafka in such rounds, 0.96-0.99x in the
        # others. The agent collected when it started (agents/stage.py), before any record came.
        freeze_what_exists(collect=False)
        await super().on_startup_finished()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # Faust replaces the root logger's handlers when the worker starts; these are the ones it uses.
        super().on_setup_root_logger(logger, level)
        self.app.broker_outage_log.install(logger.handlers)
        if self.realtime_line:
            logging.getLogger(__name__).log(*self.realtime_line)
        logging.getLogger(__name__).info(
            "every thread allocates from the main heap (glibc mallopt M_ARENA_MAX 1)" if self.one_heap else
            "threads keep heaps of their own: this C library has no mallopt M_ARENA_MAX")
        if self.large_blocks_alone:
            logging.getLogger(__name__).info("blocks of %d KiB or more are mapped on their own (glibc mallopt "
                                             "M_MMAP_THRESHOLD)", LARGE_BLOCK // 1024)


class MidiFaustApp(page_at_root.PageAtRootApp, faust.App):
    """A Faust app whose consumer's fetch wait follows ``fetch_waits`` (adjustments.fetch_wait), whose
    worker reports an unreachable broker in a few lines, whose commits the app can listen to, and whose
    web server leaves ``/`` to the app's page (adjustments.page_at_root)."""

    def __init__(self, *args, fetch_waits: fetch_wait.FetchWaits, security: BrokerSecurity | None = None,
                 realtime_priority: int = 0, **kwargs) -> None:
        self.fetch_waits = fetch_waits
        # SCHED_FIFO priority the worker's time-keeping threads take (0: none; MIDI_REALTIME_PRIORITY).
        self.realtime_priority = realtime_priority
        # The settings behind broker_credentials, for lines naming the one to fix.
        self.security = security or BrokerSecurity()
        # The consumer's, once its thread exists; counts the fetches by wait for the status line.
        self.fetch_wait: fetch_wait.AdaptiveFetchWait | None = None
        super().__init__(*args, Worker=MidiWorker, **kwargs)
        self.bootstrap_servers = ",".join(f"{url.host}:{url.port}" for url in self.conf.broker_consumer)
        self.broker_outage_log = BrokerOutageLog(self.bootstrap_servers)
        # Called with {partition: next offset to read} after each commit the broker accepted.
        self.commit_listeners: list[Callable[[Mapping[TP, int]], None]] = []
        # Called once the worker's options are known (--with-web/--without-web included) and before its
        # services start, so the web page (web/) sets up only a worker that serves it.
        self.on_configured: list[Callable[[], None]] = []

    def on_init_dependencies(self):
        # Once only: Faust may call this again when the app restarts.
        setups, self.on_configured = self.on_configured, []
        for setup in setups:
            setup()
        return super().on_init_dependencies()

    def refused_login(self) -> str | None:
        """The line naming the setting to fix when the brokers refuse this app's TLS or login; None when one
        accepts it, none answers, or there is nothing to check (PLAINTEXT)."""
        return check_login(self.bootstrap_servers, self.security, aiokafka_options(self.conf.broker_credentials))

    def tell_committed(self, offsets: Mapping[TP, int]) -> None:
        for listener in list(self.commit_listeners):
            listener(offsets)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return flow_control.KeepQueuedOnResume(loop=self.loop)

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Transport:
        return Transport(self.conf.broker_producer, self)
