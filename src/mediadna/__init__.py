"""mediadna: open-source media fingerprinting ("video DNA").

The domain package: decoding, visual and audio fingerprints, the library
store port with its embedded SQLite adapter, matching and alignment, and the
job steps as plain functions.  Nothing in here imports boto3.
"""

__version__ = "0.1.0"
