"""Connecting to the brokers securely: the security settings (config/security.py) turned into Faust's
broker credentials and aiokafka's arguments (credentials.py), and a first connection that tells a TLS or
login refusal from a broker that is just not there, so a command names the setting to fix (login.py).

Uses config only; the commands, the app module and the adjustments import it, never the reverse.
"""
