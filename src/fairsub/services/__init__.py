"""Use cases: one function per thing a person or a job does, each one transaction."""
