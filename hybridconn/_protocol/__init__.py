"""The parts of :mod:`hybridconn.protocol`, one concern per module; import them from there."""
