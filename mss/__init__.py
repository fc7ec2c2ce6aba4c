"""mss: an MSSanté operator in one package.

See ../shared/DESIGN.md for the map: SMTP/IMAP/web front ends over one durable
store, the delivery pipeline enforcing the national rules in between.
"""

__version__ = "0.1.0"
