"""Kafka-compatible brokers to run on one machine: the embedded Tansu broker (embedded.py, for `make run`,
the tests and a laptop) and librdkafka's mock cluster (mock_cluster.py, for long runs). Both are commands
users run (`python -m brokers.embedded`, `python -m brokers.mock_cluster`).

Must not import the app's agents, playback, outputs or commands.
"""
