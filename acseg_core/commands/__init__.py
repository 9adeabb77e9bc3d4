"""One module per CLI verb: ``register(subparsers)`` adds the parser and its handler.

Handlers import torch and friends lazily so ``acseg-core --help`` stays instant.
"""
