"""What the commands show a person at a terminal: a progress bar per song, and the table of how each
song was played; plain lines when the output is not a terminal."""
