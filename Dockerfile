# The app's image, for docker-compose.yml's cluster profile (its worker and producer services):
#   docker compose --profile cluster up -d --build
# No Docker engine runs where this project is tested: tests/test_compose.py checks the compose file's
# structure, not this image.
FROM python:3.11-slim-bookworm
# ALSA for python-rtmidi's ports, FluidSynth for MIDI_OUTPUT=synth and wav:PATH.
RUN apt-get update && apt-get install -y --no-install-recommends libasound2 libfluidsynth3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PYTHONUNBUFFERED=1
