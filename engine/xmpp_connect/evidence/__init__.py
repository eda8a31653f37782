"""Layer 5: facts -> classification -> evidence: the pipeline, observed records, timeline and assessment."""
