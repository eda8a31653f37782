"""Layer 4: what a stanza means in context: correlation lookups, presence, markers, the fact builder."""
