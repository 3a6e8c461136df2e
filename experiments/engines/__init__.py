"""Training engines: one thin adapter per engine, each returning the same EngineResult, chosen by name in
registry.py."""
