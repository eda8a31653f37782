"""Layer 2: the records every stage shares: native events, outbound records, classifications, evidence."""
