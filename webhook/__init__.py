"""keyguard: a mutating admission webhook that keeps object-storage credentials out of Flyte task pods."""

__version__ = "0.1.0"
