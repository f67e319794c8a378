"""Reference learners from other libraries, to measure ours against (`agents.references.sb3`).

Their libraries are optional extras (``pip install -e '.[sb3]'``), imported inside the
functions that need them, so importing these modules needs only the base install and torch.
"""
