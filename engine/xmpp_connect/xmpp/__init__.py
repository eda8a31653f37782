"""Layer 1: XMPP itself: safe stanza parsing, JIDs, redaction of stanzas and JIDs."""
