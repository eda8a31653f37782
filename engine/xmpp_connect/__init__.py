"""xmpp-connect: an XMPP channel adapter that reports graded evidence, never result satisfaction."""

__version__ = "0.1.0"
