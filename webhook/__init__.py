"""keyguard: a mutating admission webhook that keeps object-storage credentials out of Flyte task pods."""

from webhook.native import package_path

__version__ = "0.1.0"
__path__ = package_path(__name__, __path__)  # the mypyc build of the admission path, when fresh (webhook.native)
