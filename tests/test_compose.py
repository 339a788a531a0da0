"""docker-compose.yml, read as Docker Compose reads it (YAML, anchors and merge keys resolved): one broker by
default; the `cluster` profile's three KRaft brokers form one quorum, replicate every topic three times with
two in sync, and the app's services there name all three and create the notes topic to match; the
`dashboard` profile is still there. No Docker engine runs here, so this is the file's structure, not a
running cluster."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def in_profile(services: dict[str, dict], profile: str | None) -> dict[str, dict]:
    """The services ``docker compose --profile PROFILE up`` adds; with None, those ``docker compose up`` starts."""
    return {name: service for name, service in services.items()
            if (profile in service.get("profiles", []) if profile else not service.get("profiles"))}


def brokers(services: dict[str, dict]) -> dict[str, dict]:
    return {name: service for name, service in in_profile(services, "cluster").items()
            if service.get("image", "").startswith("apache/kafka:")}


def listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``INTERNAL://kafka-1:9092,EXTERNAL://:19092`` as {name: (host, port)}."""
    named = {}
    for listener in spec.split(","):
        name, address = listener.split("://")
        host, port = address.rsplit(":", 1)
        named[name] = (host, int(port))
    return named


def test_by_default_one_broker_starts_alone(services):
    default = in_profile(services, None)

    assert list(default) == ["kafka"]
    assert default["kafka"]["ports"] == ["9092:9092"]
    assert Settings().broker_url == "kafka://localhost:9092"


def test_the_cluster_profile_has_three_kraft_brokers_in_one_quorum(services):
    cluster = brokers(services)
    assert sorted(cluster) == ["kafka-1", "kafka-2", "kafka-3"]
    environments = {name: service["environment"] for name, service in cluster.items()}

    node_ids = {name: int(env["KAFKA_NODE_ID"]) for name, env in environments.items()}
    assert len(set(node_ids.values())) == 3
    for name, env in environments.items():
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        # Every node names every node, by the id it runs with and the address its controller listens on.
        voters = dict(voter.split("@") for voter in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        controller_port = listeners(env["KAFKA_LISTENERS"])[env["KAFKA_CONTROLLER_LISTENER_NAMES"]][1]
        assert voters == {str(node_ids[other]): f"{other}:{controller_port}" for other in cluster}, name
    assert len({env["CLUSTER_ID"] for env in environments.values()}) == 1


def test_every_topic_is_on_all_three_brokers_and_a_write_needs_two(services):
    for name, service in brokers(services).items():
        env = service["environment"]
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3, name
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2, name
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3, name
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3, name
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2, name


def test_each_broker_is_reached_from_the_host_and_from_the_containers_where_it_says(services):
    published = set()
    for name, service in brokers(services).items():
        env = service["environment"]
        bound, advertised = listeners(env["KAFKA_LISTENERS"]), listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        # The other containers reach it by its service name, on the listener the brokers replicate over.
        assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == (name, bound["INTERNAL"][1])
        # The host reaches it on localhost at a port published to the same port in the container.
        host, port = advertised["EXTERNAL"]
        assert host == "localhost" and f"{port}:{bound['EXTERNAL'][1]}" in service["ports"]
        assert port != 9092  # the default broker's
        published.add(port)
    assert len(published) == 3


def test_the_apps_services_name_all_three_brokers_and_replicate_the_notes_on_them(services):
    cluster = brokers(services)
    internal = {"{}:{}".format(*listeners(service["environment"]["KAFKA_ADVERTISED_LISTENERS"])["INTERNAL"])
                for service in cluster.values()}
    apps = {name: service for name, service in in_profile(services, "cluster").items() if name not in cluster}
    assert sorted(apps) == ["producer", "worker"]
    commands = {name: service["command"] for name, service in apps.items()}
    assert commands["worker"][:4] == ["faust", "-A", "midi_app", "worker"]
    assert commands["producer"][:4] == ["faust", "-A", "midi_app", "produce-midi"]

    min_insync = {int(service["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]) for service in cluster.values()}
    for name, service in apps.items():
        # The app reads these as it would in the container (compose passes every value as a string).
        settings = Settings.from_env({key: str(value) for key, value in service["environment"].items()
                                      if not str(value).startswith("${")})
        assert set(settings.bootstrap_servers.split(",")) == internal, name
        assert settings.topic_replicas == len(cluster) == 3, name
        # One broker may stop and every partition still has enough replicas in sync to take writes.
        assert settings.topic_replicas - 1 >= max(min_insync), name
        assert settings.topic_partitions == 3, name
        assert set(service["depends_on"]) == set(cluster), name
        assert (ROOT / service["build"] / "Dockerfile").is_file()


def test_the_dashboard_profile_is_still_there(services):
    dashboard = in_profile(services, "dashboard")

    assert sorted(dashboard) == ["grafana", "prometheus"]
    assert dashboard["grafana"]["depends_on"] == ["prometheus"]
