"""Layer 6: the §4.2 actions, templates, timers and the durable intake of sends."""
