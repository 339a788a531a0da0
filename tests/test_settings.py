"""settings.py: every setting's default, its environment variable, and errors that name the variable."""
from __future__ import annotations

import pytest

from config.settings import DEFAULT_VIRTUAL_PORT_NAME, OUTPUT_KINDS, KeyBy, PlaybackMode, Settings, SettingsError


def test_an_empty_environment_gives_the_documented_defaults():
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.broker_url == "kafka://localhost:9092"
    assert (settings.topic, settings.topic_partitions, settings.topic_replicas) == ("midi", 1, 1)
    assert settings.outputs == ("port",)
    assert (settings.output_port, settings.virtual_port) == (None, None)
    assert settings.fetch_wait_ms == 2
    assert (settings.catch_up_fetch_wait_ms, settings.idle_fetch_wait_ms, settings.idle_after) == (500, 100, 60.0)
    assert (settings.session_timeout, settings.rebalance_timeout, settings.status_interval) == (10.0, 10.0, 5.0)
    assert (settings.playback, settings.playout_delay, settings.max_lateness) == ("live", 0.2, None)
    assert settings.playout_clock_window == 15.0
    assert settings.key_by is KeyBy.SONG
    assert (settings.max_record_bytes, settings.song_idle_timeout) == (1024 * 1024, 30.0)
    assert settings.max_file_bytes == 16 * 1024 * 1024
    assert (settings.max_song_seconds, settings.max_song_events) == (4 * 3600.0, 1_000_000)
    assert settings.soundfont is None
    assert (settings.web_bind, settings.web_interval, settings.web_client_queue) == ("127.0.0.1", 0.1, 100)
    assert settings.lag_interval == 1.0
    assert settings.realtime_priority == 0


@pytest.mark.parametrize("env, fetch_wait_ms", [
    ({"MIDI_PLAYBACK": "buffered"}, 20),  # a tenth of the 0.2 s playout delay
    ({"MIDI_PLAYOUT_DELAY": "0.01"}, 2),  # never under the live wait
    ({"MIDI_PLAYOUT_DELAY": "2"}, 50),  # nor over 50 ms
    ({"MIDI_PLAYOUT_DELAY": "0.2", "MIDI_FETCH_WAIT_MS": "3"}, 3),  # and as set, when set
    ({"MIDI_PLAYBACK": "live", "MIDI_FETCH_WAIT_MS": "7"}, 7),
])
def test_buffered_playback_fetches_with_a_tenth_of_its_playout_delay_unless_told(env, fetch_wait_ms):
    assert Settings.from_env(env).fetch_wait_ms == fetch_wait_ms


def test_blank_values_count_as_unset():
    blank = {name: "  " for name in ("BROKER_URL", "MIDI_TOPIC", "MIDI_TOPIC_PARTITIONS", "MIDI_OUTPUT",
                                     "MIDI_OUTPUT_PORT", "MIDI_VIRTUAL_PORT", "MIDI_FETCH_WAIT_MS",
                                     "MIDI_PLAYOUT_DELAY", "MIDI_MAX_LATENESS", "MIDI_SOUNDFONT")}

    assert Settings.from_env(blank) == Settings()


@pytest.mark.parametrize("variable, value, attribute, expected", [
    ("BROKER_URL", "kafka://broker:9093", "broker_url", "kafka://broker:9093"),
    ("MIDI_TOPIC", "notes", "topic", "notes"),
    ("MIDI_TOPIC_PARTITIONS", "3", "topic_partitions", 3),
    ("MIDI_TOPIC_REPLICAS", "2", "topic_replicas", 2),
    ("MIDI_OUTPUT", "log", "outputs", ("log",)),
    ("MIDI_OUTPUT", " port , wav:/tmp/out.wav,mid:song.mid ", "outputs", ("port", "wav:/tmp/out.wav", "mid:song.mid")),
    ("MIDI_OUTPUT_PORT", " Synth ", "output_port", "Synth"),
    ("MIDI_VIRTUAL_PORT", "1", "virtual_port", DEFAULT_VIRTUAL_PORT_NAME),
    ("MIDI_VIRTUAL_PORT", "0", "virtual_port", None),
    ("MIDI_VIRTUAL_PORT", "kafka notes", "virtual_port", "kafka notes"),
    ("MIDI_FETCH_WAIT_MS", "1", "fetch_wait_ms", 1),
    ("MIDI_CATCH_UP_FETCH_WAIT_MS", "250", "catch_up_fetch_wait_ms", 250),
    ("MIDI_IDLE_FETCH_WAIT_MS", "50", "idle_fetch_wait_ms", 50),
    ("MIDI_IDLE_AFTER", "5", "idle_after", 5.0),
    ("MIDI_SESSION_TIMEOUT", "30", "session_timeout", 30.0),
    ("MIDI_REBALANCE_TIMEOUT", "2.5", "rebalance_timeout", 2.5),
    ("MIDI_STATUS_INTERVAL", "0.1", "status_interval", 0.1),
    ("MIDI_PLAYBACK", "buffered", "playback", PlaybackMode.BUFFERED),
    ("MIDI_PLAYOUT_DELAY", "0.5", "playout_delay", 0.5),
    ("MIDI_MAX_LATENESS", "0", "max_lateness", 0.0),
    ("MIDI_PLAYOUT_CLOCK_WINDOW", "2.5", "playout_clock_window", 2.5),
    ("MIDI_PLAYOUT_CLOCK_WINDOW", "0", "playout_clock_window", 0.0),
    ("MIDI_KEY_BY", "channel", "key_by", KeyBy.CHANNEL),
    ("MIDI_KEY_BY", " track ", "key_by", KeyBy.TRACK),
    ("MIDI_MAX_RECORD_BYTES", "4096", "max_record_bytes", 4096),
    ("MIDI_SONG_IDLE_TIMEOUT", "90", "song_idle_timeout", 90.0),
    ("MIDI_SONG_IDLE_TIMEOUT", "0", "song_idle_timeout", 0.0),
    ("MIDI_MAX_FILE_BYTES", "1000", "max_file_bytes", 1000),
    ("MIDI_MAX_SONG_SECONDS", "60", "max_song_seconds", 60.0),
    ("MIDI_MAX_SONG_EVENTS", "5", "max_song_events", 5),
    ("MIDI_SOUNDFONT", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "soundfont", "/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    ("MIDI_WEB_BIND", "0.0.0.0", "web_bind", "0.0.0.0"),
    ("MIDI_WEB_INTERVAL", "0.5", "web_interval", 0.5),
    ("MIDI_WEB_CLIENT_QUEUE", "10", "web_client_queue", 10),
    ("MIDI_LAG_INTERVAL", "5", "lag_interval", 5.0),
    ("MIDI_REALTIME_PRIORITY", "10", "realtime_priority", 10),
    ("MIDI_REALTIME_PRIORITY", "99", "realtime_priority", 99),
])
def test_each_variable_sets_its_setting(variable, value, attribute, expected):
    settings = Settings.from_env({variable: value})

    assert getattr(settings, attribute) == expected
    assert type(getattr(settings, attribute)) is type(expected)


def test_a_playout_delay_alone_selects_buffered_playback_and_an_explicit_mode_wins():
    assert Settings.from_env({"MIDI_PLAYOUT_DELAY": "0.3"}).playback == "buffered"
    assert Settings.from_env({"MIDI_PLAYOUT_DELAY": "0.3", "MIDI_PLAYBACK": "live"}).playback == "live"


def test_bootstrap_servers_is_the_plain_host_port_list_of_the_broker_url():
    assert Settings.from_env({}).bootstrap_servers == "localhost:9092"
    assert Settings(broker_url="kafka://a:1;kafka://b:2/").bootstrap_servers == "a:1,b:2"


@pytest.mark.parametrize("variable, value, reason", [
    ("MIDI_TOPIC_PARTITIONS", "two", "is not an integer"),
    ("MIDI_TOPIC_PARTITIONS", "1.5", "is not an integer"),
    ("MIDI_TOPIC_PARTITIONS", "0", "must be at least 1"),
    ("MIDI_TOPIC_REPLICAS", "-1", "must be at least 1"),
    ("MIDI_FETCH_WAIT_MS", "0", "must be at least 1"),
    ("MIDI_SESSION_TIMEOUT", "0.5", "must be at least 1"),
    ("MIDI_REBALANCE_TIMEOUT", "soon", "is not a number"),
    ("MIDI_STATUS_INTERVAL", "0", "must be at least 0.1"),
    ("MIDI_PLAYOUT_DELAY", "-0.1", "must be at least 0"),
    ("MIDI_MAX_LATENESS", "1s", "is not a number"),
    ("MIDI_MAX_RECORD_BYTES", "0", "must be at least 1"),
    ("MIDI_MAX_RECORD_BYTES", "1MiB", "is not an integer"),
    ("MIDI_SONG_IDLE_TIMEOUT", "-1", "must be at least 0"),
    ("MIDI_SONG_IDLE_TIMEOUT", "off", "is not a number"),
    ("MIDI_MAX_FILE_BYTES", "0", "must be at least 1"),
    ("MIDI_MAX_SONG_SECONDS", "0.5", "must be at least 1"),
    ("MIDI_MAX_SONG_EVENTS", "1e6", "is not an integer"),
    ("MIDI_PLAYBACK", "later", "choose live or buffered"),
    ("MIDI_KEY_BY", "instrument", "choose song, channel or track"),
    ("MIDI_PLAYOUT_CLOCK_WINDOW", "-1", "must be at least 0"),
    ("MIDI_OUTPUT", "speaker", f"unknown output 'speaker'; choose from {', '.join(OUTPUT_KINDS)}"),
    ("MIDI_OUTPUT", "port,wav", "write 'wav:PATH'"),
    ("MIDI_OUTPUT", "mid:", "write 'mid:PATH'"),
    ("MIDI_OUTPUT", "log:/tmp/x", "write 'log'"),
    ("MIDI_OUTPUT", " , ", "MIDI_OUTPUT is empty"),
    ("MIDI_REALTIME_PRIORITY", "-1", "must be at least 0"),
    ("MIDI_REALTIME_PRIORITY", "100", "choose 1-99 (SCHED_FIFO's range), or 0 for none"),
    ("MIDI_REALTIME_PRIORITY", "high", "is not an integer"),
])
def test_a_bad_value_is_refused_with_the_variable_and_the_reason(variable, value, reason):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})

    assert str(error.value).startswith(variable)
    assert reason in str(error.value)
    if value.strip(" ,"):
        assert repr(value) in str(error.value)


@pytest.mark.parametrize("variable", ["MIDI_SESSION_TIMEOUT", "MIDI_REBALANCE_TIMEOUT", "MIDI_STATUS_INTERVAL",
                                      "MIDI_PLAYOUT_DELAY", "MIDI_MAX_LATENESS", "MIDI_MAX_SONG_SECONDS",
                                      "MIDI_SONG_IDLE_TIMEOUT", "MIDI_PLAYOUT_CLOCK_WINDOW"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_number_that_is_not_finite_is_refused(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
