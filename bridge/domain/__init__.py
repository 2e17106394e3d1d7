"""The procurement domain: pure values and rules, no I/O."""
