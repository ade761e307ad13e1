"""Reliability and security tests: fault matrix, cancellation, bad input, fuzzing, secrets, soak."""
