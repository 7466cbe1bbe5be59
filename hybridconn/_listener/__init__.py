"""The listener's parts, one concern per module (see docs/architecture.rst).

Nothing here is public API: :class:`hybridconn.HybridConnectionListener`
composes these parts and is the only way in.
"""
