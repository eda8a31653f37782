"""Layer 7: composition (config -> store, policy, providers, API), the CLI and the process model."""
