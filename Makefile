# Two commands: `make run` plays the demo songs end to end; `make test` runs the tests.
# `make check` is the quick loop while editing: ruff and the tests that start no process.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long check bench system-deps real-songs clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(STAMP)
	$(BIN)/python -m harness.demo songs/

# JACK (for the real rtmidi path), real-world MIDI files written by others, FluidSynth with a
# General MIDI SoundFont (the synth and WAV outputs), and a headless browser with its driver (the web
# page's tests, through selenium), from Debian.
SYSTEM_PACKAGES := jackd2 openttd-openmsx libfluidsynth3 timgm6mb-soundfont chromium chromium-driver
system-deps:
	@command -v jackd >/dev/null && [ -d /usr/share/games/openttd/baseset/openmsx ] \
	  && ls /usr/lib/*/libfluidsynth.so.3 >/dev/null 2>&1 && [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] \
	  && [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else echo "make test needs: sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; fi; }

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m "not long" tests

# The integration tests marked long (several workers handing songs over, brokers slowed or moving
# leaders): about two minutes more than make test, which CI must finish within 20.
test-long: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m long tests

# Lint and the unit tests: every test not marked integration (tests/conftest.py marks those that start a
# broker, a worker or jackd), so no system packages are needed.
check: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/python -m pytest -q -m "not integration" tests

# The full benchmarks (minutes; run them on a quiet machine). CI runs their --smoke versions in make test.
bench: $(STAMP) system-deps
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/latency.py

# Real MIDI files by others for the benchmarks (bench/real_songs.py lists them and picks a set). Kept out of
# system-deps: installed, simutrans-data is 8 MB and python3-pyo 20 MB with its audio libraries (for one
# piano piece), planetblupi-music-midi 1.4 MB, playmidi 0.3 MB; music21's wheel is 20 MB.
REAL_SONG_PACKAGES := openttd-openmsx simutrans-data planetblupi-music-midi playmidi python3-pyo
real-songs: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(REAL_SONG_PACKAGES) >/dev/null; \
	else echo "real songs need: sudo apt-get install $(REAL_SONG_PACKAGES)"; exit 1; fi
	$(BIN)/pip install --quiet --no-deps -r requirements-bench.txt
	$(BIN)/python bench/real_songs.py --pick

clean:
	rm -rf $(VENV)
