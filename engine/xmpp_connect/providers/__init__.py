"""XMPP providers behind the §22 abstraction."""
